"""Waveform augmentation for robustness to unheard voices and recording conditions.

Pure functions of (samples, rng): speed perturbation by resampling (tempo and pitch move
together, as in Kaldi's 3-way speed perturbation), loudness, white or pink noise at a given SNR,
a synthetic room (an exponentially decaying noise tail, the standard statistical model of late
reverberation) and a telephone channel (8 kHz, 300–3,400 Hz, 8-bit μ-law). The benchmark
`benchmarks/robustness.py` degrades unheard clips with the same functions.
"""

from __future__ import annotations

import numpy as np
import torch
import torchaudio

from train.settings import AugmentSettings


class Augmenter:
    """Callable `augment(samples, rng) -> samples` for float32 16 kHz mono waveforms."""

    def __init__(self, settings: AugmentSettings) -> None:
        for name in ("probability", "reverb", "telephone"):
            if not 0.0 <= getattr(settings, name) <= 1.0:
                raise ValueError(f"augment.{name} is a probability, got {getattr(settings, name)}")
        if settings.reverb > 0 and settings.reverb_rt60 < 0.2:
            raise ValueError(
                f"augment.reverb_rt60 must be at least 0.2 s, got {settings.reverb_rt60}"
            )
        self.settings = settings

    def __call__(self, samples: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        s = self.settings
        if not s.enabled or rng.random() >= s.probability:
            return samples
        if s.speed > 0:
            samples = speed_perturb(samples, 1.0 + rng.uniform(-s.speed, s.speed))
        if s.gain_db > 0:
            samples = samples * 10 ** (rng.uniform(-s.gain_db, s.gain_db) / 20)
        if s.reverb > 0 and rng.random() < s.reverb:  # no draw when off: old runs unchanged
            rt60 = rng.uniform(0.2, s.reverb_rt60)
            samples = reverberate(samples, rt60, rng.uniform(0.0, 10.0), rng)
        if s.noise_snr_db > 0 and rng.random() < 0.5:
            snr = rng.uniform(s.noise_snr_db, s.noise_snr_db + 20)
            colour = "pink" if s.pink_noise and rng.random() < 0.5 else "white"
            samples = add_noise(samples, snr, rng, colour)
        if s.telephone > 0 and rng.random() < s.telephone:
            samples = telephone(samples)
        peak = float(np.abs(samples).max(initial=0.0))
        return (samples / peak if peak > 1.0 else samples).astype(np.float32)


def speed_perturb(samples: np.ndarray, factor: float) -> np.ndarray:
    """Play `factor` times faster: resample from 16 kHz·factor to 16 kHz (factor to 2 decimals)."""
    source = int(round(100 * factor))
    if source == 100:
        return samples
    waveform = torch.from_numpy(np.ascontiguousarray(samples, dtype=np.float32))
    return torchaudio.functional.resample(waveform, source, 100).numpy()


def add_noise(
    samples: np.ndarray, snr_db: float, rng: np.random.Generator, colour: str = "white"
) -> np.ndarray:
    """Noise at `snr_db` below the signal's power: "white" (flat) or "pink" (power ∝ 1/f,
    like most room and fan noise: its energy sits where speech's does)."""
    power = float(np.mean(samples.astype(np.float64) ** 2))
    if power == 0.0:
        return samples
    if colour not in ("white", "pink"):
        raise ValueError(f"noise colour must be 'white' or 'pink', got {colour!r}")
    noise = rng.standard_normal(samples.shape)  # unit power: white noise as it always was
    if colour == "pink":
        spectrum = np.fft.rfft(noise)
        frequencies = np.arange(len(spectrum), dtype=np.float64)
        spectrum /= np.sqrt(np.maximum(frequencies, 1.0))  # amplitude ∝ f^-1/2, DC kept finite
        noise = np.fft.irfft(spectrum, n=len(samples))
        noise /= np.sqrt(max(float(np.mean(noise**2)), 1e-20))
    noise = noise * np.sqrt(power / 10 ** (snr_db / 10))
    return samples + noise.astype(np.float32)  # in float32, exactly as before pink existed


def room_impulse(
    rt60: float, direct_to_reverberant_db: float, rng: np.random.Generator, rate: int = 16000
) -> np.ndarray:
    """A room's impulse response (L,): the direct path (1.0 at t = 0), then Gaussian noise
    whose level falls 60 dB in `rt60` seconds, starting 2.5 ms later (the first reflections),
    scaled so the direct sound is `direct_to_reverberant_db` above the tail's energy (0 dB: a
    laptop's microphone a metre or two away in a classroom)."""
    if rt60 <= 0:
        raise ValueError(f"rt60 must be positive, got {rt60}")
    length = int(rate * rt60)  # the tail is 60 dB down by then
    times = np.arange(length) / rate
    tail = rng.standard_normal(length) * np.exp(-np.log(1000.0) * times / rt60)
    tail[: int(0.0025 * rate)] = 0.0
    tail *= np.sqrt(10 ** (-direct_to_reverberant_db / 10) / float(np.sum(tail**2)))
    tail[0] = 1.0
    return tail


def reverberate(
    samples: np.ndarray, rt60: float, direct_to_reverberant_db: float, rng: np.random.Generator
) -> np.ndarray:
    """`samples` played in a room (`room_impulse`), cut to their own length and brought back
    to their own power (reverberation, not loudness, is what changes)."""
    impulse = room_impulse(rt60, direct_to_reverberant_db, rng)
    waveform = torch.from_numpy(np.ascontiguousarray(samples, dtype=np.float32))
    wet = torchaudio.functional.fftconvolve(waveform, torch.from_numpy(impulse).float())
    wet = wet[: len(samples)].numpy().astype(np.float64)
    power, wet_power = float(np.mean(samples.astype(np.float64) ** 2)), float(np.mean(wet**2))
    if wet_power > 0:
        wet *= np.sqrt(power / wet_power)
    return wet.astype(np.float32)


def telephone(samples: np.ndarray) -> np.ndarray:
    """A narrow-band telephone channel: 8 kHz, 300–3,400 Hz, 8-bit μ-law, back at 16 kHz."""
    waveform = torch.from_numpy(np.ascontiguousarray(samples, dtype=np.float32))
    narrow = torchaudio.functional.resample(waveform, 16000, 8000)
    narrow = torchaudio.functional.highpass_biquad(narrow, 8000, 300.0)
    narrow = torchaudio.functional.lowpass_biquad(narrow, 8000, 3400.0)
    peak = float(narrow.abs().max()) if narrow.numel() else 0.0
    scale = peak if peak > 1.0 else 1.0
    coded = torchaudio.functional.mu_law_encoding(narrow / scale, 256)
    narrow = torchaudio.functional.mu_law_decoding(coded, 256) * scale
    return torchaudio.functional.resample(narrow, 8000, 16000)[: len(samples)].numpy()
