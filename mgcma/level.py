"""The level a clip is heard at, made the same for every clip before the speech encoder.

Whisper's log-mel features move with the recording level: the same sentence 20 dB quieter is a
different input, and a model trained on studio clips peaking at −18 dBFS (RAVDESS) and on
synthetic ones peaking at −1.5 dBFS learns loudness as a cue that a microphone's gain sets at
random. ``speech.input_level_dbfs`` scales each clip so that its *active speech level* is that
many dBFS, in training and serving alike (wav2vec 2.0's ``normalize_input`` already removes the
level: each waveform is scaled to unit variance).

The active speech level is the RMS over the clip's 20-ms frames that are within
:data:`GATE_DB` of its loudest frame (pauses and silence left out, in the spirit of ITU-T P.56's
active speech level, without its hangover). The gain is capped at ±:data:`MAX_GAIN_DB`, so a
clip of room noise is not lifted to speech level; digital silence is left as it is.
"""

from __future__ import annotations

import torch

FRAME_SAMPLES = 320  # 20 ms at 16 kHz
GATE_DB = 40.0  # frames quieter than the loudest by more than this are pauses
FLOOR_DBFS = -100.0  # frames below this are digital silence, never speech
MAX_GAIN_DB = 40.0


def active_level_dbfs(samples: torch.Tensor) -> float:
    """Active speech level of one clip, in dBFS: (N,) → float; −inf for digital silence."""
    width = min(FRAME_SAMPLES, samples.shape[0])  # a clip shorter than a frame is one frame
    usable = samples.shape[0] // width * width
    frames = samples[:usable].double().reshape(-1, width)  # (F, 320)
    power = frames.pow(2).mean(dim=1)  # (F,)
    loudest = float(power.max())
    if loudest <= 10 ** (FLOOR_DBFS / 10):
        return float("-inf")
    active = power >= max(loudest * 10 ** (-GATE_DB / 10), 10 ** (FLOOR_DBFS / 10))  # (F,)
    return 10.0 * float(torch.log10(power[active].mean()))


def normalise_level(
    speech: torch.Tensor, lengths: torch.Tensor, target_dbfs: float
) -> torch.Tensor:
    """Scale each waveform's real samples to an active speech level of `target_dbfs`:
    (B, N) padded waveforms, (B,) lengths → (B, N); padding stays zero."""
    gains = []
    for samples, length in zip(speech, lengths.tolist(), strict=True):
        level = active_level_dbfs(samples[:length]) if length else float("-inf")
        gain_db = 0.0 if level == float("-inf") else target_dbfs - level
        gain_db = min(max(gain_db, -MAX_GAIN_DB), MAX_GAIN_DB)
        gains.append(10 ** (gain_db / 20))
    return speech * torch.tensor(gains, dtype=speech.dtype, device=speech.device)[:, None]
