"""A text corpus without audio in training: real sentences for the text side and its head.

Speech + text corpora are small and say few sentences (RAVDESS says two). GoEmotions has tens of
thousands written by people. With ``text_corpus.manifest`` set, every training step adds
``text_corpus.batch_size`` of its rows: they pass through the text encoder, the text
self-attention and the text-only head, and their cross-entropy is the ``text_corpus`` loss term
(weight ``loss.text_corpus_weight``). The fused classifier never sees them: it needs both sides.

Leakage: a sentence the synthetic corpus voices (its manifest line names the ``goemotions_id``) is
never a text-only row, whatever its fold, so no sentence of a held-out group is read in training;
only the ``train`` split is drawn from, and the ``test`` split scores the text head
(:func:`train.evaluate.evaluate_text_head`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np
import torch

from mgcma.batch import tokenize_texts
from train.data import _pad_rows
from train.goemotions import load_text_manifest


def voiced_ids(utterances) -> set[str]:
    """GoEmotions comment ids that speech manifests voice (their ``goemotions_id``)."""
    return {u.extra["goemotions_id"] for u in utterances if u.extra.get("goemotions_id")}


def text_rows(path, split: str, emotions: Sequence[str], exclude: set[str] = frozenset()):
    """``(texts, labels)`` of one split of a text manifest, ``exclude``'s ids left out."""
    index = {emotion: i for i, emotion in enumerate(emotions)}
    texts, labels = [], []
    for record in load_text_manifest(path):
        if record["split"] == split and record["id"] not in exclude:
            texts.append(record["text"])
            labels.append(index[record["label"]])
    if not texts:
        raise ValueError(f"text corpus {path}: no rows in split {split!r}")
    return texts, labels


class TextCorpus:
    """Text-only training rows, a fresh draw for every step.

    Parameters
    ----------
    texts, labels : the rows (labels are class indices)
    tokenizer, max_tokens : the model's tokenizer and truncation
    batch_size : rows per step
    balanced : draw every class equally often (else as often as it occurs)
    seed : with (epoch, step, rank), the only source of randomness
    features : a ``train.features.FeatureCache`` of the model's frozen text backbone, or None
    """

    def __init__(
        self,
        texts: Sequence[str],
        labels: Sequence[int],
        tokenizer,
        max_tokens: int,
        batch_size: int,
        balanced: bool = True,
        seed: int = 0,
        features=None,
    ) -> None:
        self.texts, self.labels = list(texts), np.asarray(labels)
        self.tokenizer, self.max_tokens = tokenizer, max_tokens
        self.batch_size, self.seed, self.features = batch_size, seed, features
        counts = Counter(self.labels.tolist())
        weights = np.array([1.0 / counts[y] if balanced else 1.0 for y in self.labels.tolist()])
        self.probabilities = weights / weights.sum()
        self._ids: list[list[int]] = []
        if features is not None:  # the ids `MGCMA.tokenize` gives, without padding
            self._ids = tokenizer(self.texts, truncation=True, max_length=max_tokens)["input_ids"]
            features.fill_texts(self._ids)  # a second run reads them back, computing nothing

    def __len__(self) -> int:
        return len(self.texts)

    def batch(self, epoch: int, step: int, rank: int = 0) -> tuple[dict, torch.Tensor]:
        """``(text_only inputs for MGCMA.forward, (B_x,) labels)`` of one step's draw."""
        rng = np.random.default_rng([self.seed, 11, epoch, step, rank])
        rows = rng.choice(len(self.texts), size=self.batch_size, p=self.probabilities)
        labels = torch.as_tensor(self.labels[rows], dtype=torch.long)  # (B_x,)
        encoded = tokenize_texts(self.tokenizer, [self.texts[r] for r in rows], self.max_tokens)
        inputs = {"input_ids": encoded["input_ids"], "text_mask": encoded["text_mask"]}
        if self.features is not None:
            states = [self.features.text(self._ids[r]) for r in rows]  # (T_x, D_t) each
            inputs["text_features"], _ = _pad_rows(states, encoded["input_ids"].shape[1])
        return inputs, labels
