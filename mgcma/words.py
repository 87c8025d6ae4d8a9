"""From sub-word tokens back to the words a person reads, and word timings onto those words."""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence

import numpy as np

_WORD = re.compile(r"\S+")
_NOT_ALNUM = re.compile(r"[^\w']+")


def split_words(text: str) -> list[tuple[str, int, int]]:
    """Whitespace words with their character spans: [(word, start, end), …]."""
    return [(m.group(), m.start(), m.end()) for m in _WORD.finditer(text)]


def token_word_index(
    offsets: Sequence[Sequence[int]], is_special: Sequence[bool], spans: Sequence[tuple]
) -> list[int]:
    """Index of the whitespace word each token falls in (by character offset); −1 for specials."""
    starts = [start for _, start, _ in spans]
    index = []
    for (start, end), special in zip(offsets, is_special, strict=True):
        if special or end <= start:
            index.append(-1)
            continue
        word = int(np.searchsorted(starts, start, side="right")) - 1
        index.append(max(word, 0))
    return index


def merge_attention(
    text_to_speech: np.ndarray,
    speech_to_text: np.ndarray,
    token_word: Sequence[int],
    num_words: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Token-level cross-attention → word level.

    Parameters
    ----------
    text_to_speech : (H, T_t, T_s) rows are distributions over frames
    speech_to_text : (H, T_s, T_t) rows are distributions over tokens
    token_word : (T_t,) word index per token, −1 for special tokens

    Returns
    -------
    (H, W, T_s) : a word's row is the mean of its tokens' rows (still a distribution)
    (H, T_s, W) : a word's column is the sum of its tokens' columns (mass on [CLS]/[SEP] is left
        out, so rows sum to at most 1)
    """
    heads, _, frames = text_to_speech.shape
    words_by_speech = np.zeros((heads, num_words, frames), dtype=np.float32)
    speech_by_words = np.zeros((heads, frames, num_words), dtype=np.float32)
    token_word = np.asarray(token_word)
    for word in range(num_words):
        members = np.flatnonzero(token_word == word)
        if members.size:
            words_by_speech[:, word] = text_to_speech[:, members].mean(axis=1)
            speech_by_words[:, :, word] = speech_to_text[:, :, members].sum(axis=2)
    return words_by_speech, speech_by_words


def _normal(word: str) -> str:
    return _NOT_ALNUM.sub("", word.lower())


def align_word_times(
    words: Sequence[str], timed: Sequence[dict]
) -> list[tuple[float, float] | None]:
    """Attach `[{"word", "start", "end"}, …]` timings to display words.

    Words are matched after lower-casing and removing punctuation, in order (difflib), so an
    edited transcript keeps the timings of the words that are still there; the rest get None.
    """
    target = [_normal(w) for w in words]
    source = [_normal(str(t.get("word", ""))) for t in timed]
    matcher = difflib.SequenceMatcher(a=target, b=source, autojunk=False)
    times: list[tuple[float, float] | None] = [None] * len(words)
    for block in matcher.get_matching_blocks():
        for offset in range(block.size):
            entry = timed[block.b + offset]
            times[block.a + offset] = (float(entry["start"]), float(entry["end"]))
    return times
