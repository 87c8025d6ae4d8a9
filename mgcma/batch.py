"""Turning lists of waveforms and transcripts into padded tensors with masks."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch


def pad_waveforms(
    waveforms: Sequence[np.ndarray | torch.Tensor],
) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad 16 kHz mono waveforms with zeros.

    Returns
    -------
    speech : (B, N) float32, N the longest length
    speech_mask : (B, N) bool, True on real samples
    """
    if len(waveforms) == 0:
        raise ValueError("pad_waveforms needs at least one waveform")
    tensors = [torch.as_tensor(np.asarray(w, dtype=np.float32)).reshape(-1) for w in waveforms]
    longest = max(t.numel() for t in tensors)
    speech = torch.zeros(len(tensors), longest)  # (B, N)
    speech_mask = torch.zeros(len(tensors), longest, dtype=torch.bool)  # (B, N)
    for row, samples in enumerate(tensors):
        speech[row, : samples.numel()] = samples
        speech_mask[row, : samples.numel()] = True
    return speech, speech_mask


def tokenize_texts(tokenizer, texts: Sequence[str], max_tokens: int) -> dict[str, torch.Tensor]:
    """Tokenise transcripts with the checkpoint's tokenizer.

    Returns a dict with `input_ids` (B, T_t) long and `text_mask` (B, T_t) bool. Transcripts longer
    than `max_tokens` sub-words are truncated (the encoders have a fixed position table).
    """
    encoded = tokenizer(
        list(texts),
        padding=True,
        truncation=True,
        max_length=max_tokens,
        return_tensors="pt",
    )
    return {
        "input_ids": encoded["input_ids"],  # (B, T_t)
        "text_mask": encoded["attention_mask"].bool(),  # (B, T_t)
    }
