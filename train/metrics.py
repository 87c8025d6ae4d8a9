"""The emotion-recognition metrics of the IEMOCAP literature, from scikit-learn.

WA (weighted accuracy) is overall accuracy; UA (unweighted accuracy) is the mean per-class
recall, which does not reward predicting the majority class.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score


def emotion_metrics(labels: Sequence[int], predictions: Sequence[int], num_classes: int) -> dict:
    """{"wa", "ua", "f1" (macro), "confusion" (rows: truth, columns: prediction), "count"}."""
    labels, predictions = np.asarray(labels), np.asarray(predictions)
    if labels.size == 0:
        raise ValueError("no utterances to score")
    classes = list(range(num_classes))
    present = np.unique(labels)
    confusion = confusion_matrix(labels, predictions, labels=classes)  # (C, C)
    recall = np.diag(confusion)[present] / confusion[present].sum(axis=1)  # (present,)
    return {
        "wa": float(accuracy_score(labels, predictions)),
        # UA: the mean recall over the classes that occur, so a fold (or a cue) missing a class
        # is not scored as 0 on it, whatever the predictions name
        "ua": float(recall.mean()),
        "f1": float(
            f1_score(labels, predictions, labels=present, average="macro", zero_division=0)
        ),
        "confusion": confusion.tolist(),
        "count": int(labels.size),
    }
