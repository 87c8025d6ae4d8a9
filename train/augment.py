"""Waveform augmentation for robustness to unheard voices and recording conditions.

Pure functions of (samples, rng): speed perturbation by resampling (tempo and pitch move
together, as in Kaldi's 3-way speed perturbation), loudness, and white noise at a random SNR.
"""

from __future__ import annotations

import numpy as np
import torch
import torchaudio

from train.settings import AugmentSettings


class Augmenter:
    """Callable `augment(samples, rng) -> samples` for float32 16 kHz mono waveforms."""

    def __init__(self, settings: AugmentSettings) -> None:
        self.settings = settings

    def __call__(self, samples: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        s = self.settings
        if not s.enabled or rng.random() >= s.probability:
            return samples
        if s.speed > 0:
            samples = speed_perturb(samples, 1.0 + rng.uniform(-s.speed, s.speed))
        if s.gain_db > 0:
            samples = samples * 10 ** (rng.uniform(-s.gain_db, s.gain_db) / 20)
        if s.noise_snr_db > 0 and rng.random() < 0.5:
            samples = add_noise(samples, rng.uniform(s.noise_snr_db, s.noise_snr_db + 20), rng)
        peak = float(np.abs(samples).max(initial=0.0))
        return (samples / peak if peak > 1.0 else samples).astype(np.float32)


def speed_perturb(samples: np.ndarray, factor: float) -> np.ndarray:
    """Play `factor` times faster: resample from 16 kHz·factor to 16 kHz (factor to 2 decimals)."""
    source = int(round(100 * factor))
    if source == 100:
        return samples
    waveform = torch.from_numpy(np.ascontiguousarray(samples, dtype=np.float32))
    return torchaudio.functional.resample(waveform, source, 100).numpy()


def add_noise(samples: np.ndarray, snr_db: float, rng: np.random.Generator) -> np.ndarray:
    """White noise at `snr_db` below the signal's power."""
    power = float(np.mean(samples.astype(np.float64) ** 2))
    if power == 0.0:
        return samples
    noise = rng.standard_normal(samples.shape) * np.sqrt(power / 10 ** (snr_db / 10))
    return samples + noise.astype(np.float32)
