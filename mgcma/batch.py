"""Turning lists of waveforms and transcripts into padded tensors with masks."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from mgcma.words import align_word_times, split_words, token_word_index


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


def tokenize_texts(
    tokenizer,
    texts: Sequence[str],
    max_tokens: int,
    words: Sequence[Sequence[tuple] | None] | None = None,
    with_offsets: bool = False,
) -> dict[str, torch.Tensor]:
    """Tokenise transcripts with the checkpoint's tokenizer.

    Returns a dict with `input_ids` (B, T_t) long and `text_mask` (B, T_t) bool. Transcripts longer
    than `max_tokens` sub-words are truncated (the encoders have a fixed position table). Given
    `words` (per text, its `(word, start, end)` timings or None), also `token_spans` (B, T_t, 2):
    the time span of each token's word in seconds, NaN where unknown. `with_offsets` adds
    `offset_mapping` (B, T_t, 2), the characters of the text each token covers, and
    `special_tokens_mask` (B, T_t) bool. Spans and offsets need a fast tokenizer.
    """
    needs_offsets = with_offsets or words is not None
    if needs_offsets and not getattr(tokenizer, "is_fast", False):
        raise ValueError("token time spans need a fast tokenizer (one that reports offsets)")
    encoded = tokenizer(
        list(texts),
        padding=True,
        truncation=True,
        max_length=max_tokens,
        return_offsets_mapping=needs_offsets,
        return_special_tokens_mask=needs_offsets,
        return_tensors="pt",
    )
    batch = {
        "input_ids": encoded["input_ids"],  # (B, T_t)
        "text_mask": encoded["attention_mask"].bool(),  # (B, T_t)
    }
    if words is not None:
        batch["token_spans"] = token_time_spans(encoded, texts, words)  # (B, T_t, 2)
    if with_offsets:
        batch["offset_mapping"] = encoded["offset_mapping"]  # (B, T_t, 2)
        batch["special_tokens_mask"] = encoded["special_tokens_mask"].bool()  # (B, T_t)
    return batch


def token_time_spans(encoded, texts: Sequence[str], words: Sequence) -> torch.Tensor:
    """(B, T_t, 2) float32 start and end of each token's word in seconds; NaN where unknown.

    Timings are matched to the transcript's whitespace words as the app does (punctuation and
    case ignored, in order); special and padding tokens get NaN.
    """
    ids = encoded["input_ids"]  # (B, T_t)
    spans = torch.full((*ids.shape, 2), float("nan"))  # (B, T_t, 2)
    for row, (text, timed) in enumerate(zip(texts, words, strict=True)):
        if not timed:
            continue
        text_words = split_words(text)
        times = align_word_times(
            [word for word, _, _ in text_words],
            [{"word": word, "start": start, "end": end} for word, start, end in timed],
        )
        special = (
            encoded["special_tokens_mask"][row].bool() | ~encoded["attention_mask"][row].bool()
        )
        token_word = token_word_index(
            encoded["offset_mapping"][row].tolist(), special.tolist(), text_words
        )
        for token, word in enumerate(token_word):
            if word >= 0 and times[word] is not None:
                spans[row, token] = torch.tensor(times[word])
    return spans
