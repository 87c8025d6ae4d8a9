"""Real sentences for the synthetic corpus: GoEmotions comments that espeak-ng can voice.

``python -m train synth --sentences goemotions.jsonl`` voices real sentences (written by people,
not by the templates of :mod:`train.lexicon`) under the corpus's cue mix. They come from the
``train`` and ``dev`` splits only: the ``test`` split stays unheard, for testing the text side.
Each comment is voiced at most once, so no sentence is heard in two cross-validation groups.

A comment is skipped, and counted by reason, when espeak-ng could not voice it sensibly:

- a link (``http``, ``www.``, ``.com``, ``/r/``, ``/u/``): read out character by character;
- a mask other than ``[NAME]`` (``[RELIGION]``): the release hid a word, nobody says "religion"
  in its place; ``[NAME]`` becomes a first name from :data:`NAMES`;
- mostly symbols: under :data:`MIN_LETTER_SHARE` of its visible characters are letters (emoji,
  ASCII art, ``!!!!``);
- too short or too long: under :data:`MIN_WORDS` words says nothing, over :data:`MAX_WORDS` runs
  past the 8-s training window at a sad, slow rate.

What is kept is cleaned for the synthesiser and for exact word timings: characters other than
letters, digits, apostrophes, hyphens and ``,.!?;:`` become spaces, tokens without a letter or
digit are dropped, the first letter is capitalised and the sentence ends in a full stop (as the
templates do: end punctuation never leaks how it was said into what was written).
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from mgcma.constants import EMOTIONS
from train.goemotions import load_text_manifest

SPLITS_USED = ("train", "dev")
NAMES = ("Alex", "Sam", "Maria", "John", "Emma", "David", "Sarah", "Chris", "Anna", "Tom")
MIN_WORDS = 3
MAX_WORDS = 16  # ≈ 7 s at the slowest (sad) rate, 138 words per minute
MIN_LETTER_SHARE = 0.75

SKIPPED_LINK = "a link"
SKIPPED_MASK = "a masked word other than [NAME]"
SKIPPED_SYMBOLS = f"under {MIN_LETTER_SHARE:.0%} letters"
SKIPPED_SHORT = f"under {MIN_WORDS} words"
SKIPPED_LONG = f"over {MAX_WORDS} words"

_LINK = re.compile(r"https?:|www\.|\.com\b|/r/|/u/", re.IGNORECASE)
_MASK = re.compile(r"\[[A-Z]+\]")
_NOT_SPOKEN = re.compile(r"[^A-Za-z0-9'.,!?;:\- ]")
_HAS_WORD = re.compile(r"[A-Za-z0-9]")
_EDGE = ".,!?;:-'"


def clean_sentence(text: str, rng: np.random.Generator) -> tuple[str | None, str]:
    """``(sentence, "")`` ready for espeak-ng, or ``(None, why it is skipped)``.

    ``rng`` picks the first name that replaces each ``[NAME]``.
    """
    if _LINK.search(text):
        return None, SKIPPED_LINK
    text = re.sub(r"\[NAME\]", lambda _: NAMES[int(rng.integers(len(NAMES)))], text)
    if _MASK.search(text):
        return None, SKIPPED_MASK
    visible = re.sub(r"\s", "", text)
    letters = sum(character.isascii() and character.isalpha() for character in visible)
    if not visible or letters / len(visible) < MIN_LETTER_SHARE:
        return None, SKIPPED_SYMBOLS
    tokens = []
    for token in _NOT_SPOKEN.sub(" ", text).split():
        token = token.lstrip(_EDGE)  # leading punctuation would shift the word's offset
        if _HAS_WORD.search(token):
            tokens.append(token)
    if len(tokens) < MIN_WORDS:
        return None, SKIPPED_SHORT
    if len(tokens) > MAX_WORDS:
        return None, SKIPPED_LONG
    sentence = " ".join(tokens).rstrip(_EDGE)
    return sentence[0].upper() + sentence[1:] + ".", ""


@dataclass
class RealSentences:
    """Cleaned GoEmotions sentences per class, drawn without replacement.

    Attributes
    ----------
    pools : emotion → ``[(comment id, sentence), ...]`` in a seeded random order
    skipped : reason → comments left out by :func:`clean_sentence`
    drawn : emotion → sentences handed out so far
    exhausted : emotion → draws that found the pool empty (the caller falls back to a template)
    """

    pools: dict[str, list[tuple[str, str]]]
    skipped: Counter = field(default_factory=Counter)
    drawn: Counter = field(default_factory=Counter)
    exhausted: Counter = field(default_factory=Counter)

    @classmethod
    def from_manifest(cls, path, seed: int) -> RealSentences:
        """Read a text manifest (``python -m train goemotions``); keep train/dev, cleaned."""
        rng = np.random.default_rng([seed, 7])
        pools: dict[str, list[tuple[str, str]]] = {emotion: [] for emotion in EMOTIONS}
        skipped: Counter = Counter()
        for record in load_text_manifest(path):
            if record["split"] not in SPLITS_USED:
                continue
            sentence, why = clean_sentence(record["text"], rng)
            if sentence is None:
                skipped[why] += 1
            else:
                pools[record["label"]].append((record["id"], sentence))
        for emotion, pool in pools.items():
            order = rng.permutation(len(pool))
            pools[emotion] = [pool[i] for i in order]
        return cls(pools, skipped)

    def draw(self, emotion: str) -> tuple[str, str] | None:
        """The next unused ``(comment id, sentence)`` of ``emotion``, or None when none is left."""
        pool = self.pools[emotion]
        if not pool:
            self.exhausted[emotion] += 1
            return None
        self.drawn[emotion] += 1
        return pool.pop()

    def summary(self) -> dict:
        """What ``corpus.json`` records about the real sentences."""
        return {
            "splits": list(SPLITS_USED),
            "skipped": dict(self.skipped),
            "voiced": dict(self.drawn),
            "pool_empty_template_used": dict(self.exhausted),
        }
