"""Several corpora in one experiment: their utterances, sampling weights and per-corpus scores.

An experiment's `data.manifests` maps each manifest to a weight (see `train.settings`); fold
names are shared across corpora (`train.manifest.fold_of`), so a fold holds out its speakers in
every corpus; results are scored per corpus (a manifest line's `corpus`) as well as overall, and
per cue where a line names one (the synthetic corpus's `cue`: which side carries the emotion).
"""

from __future__ import annotations

import numpy as np

from train.manifest import load_manifest
from train.metrics import emotion_metrics
from train.settings import Experiment


def load_utterances(experiment: Experiment) -> list:
    """Every manifest's utterances, ids made unique per manifest when several are mixed."""
    weights = experiment.manifest_weights()
    utterances = []
    for path in weights:
        utterances += load_manifest(path)
    ids = [u.id for u in utterances]
    if len(set(ids)) != len(ids):
        raise ValueError(
            "the experiment's manifests share utterance ids: give each corpus a prefix"
        )
    return utterances


def utterance_weights(experiment: Experiment, utterances) -> np.ndarray | None:
    """Per utterance, its manifest's sampling weight (None when every weight is 1)."""
    weights = experiment.manifest_weights()
    if set(weights.values()) == {1.0}:
        return None
    by_id = {}
    for path, weight in weights.items():
        by_id.update({u.id: weight for u in load_manifest(path, check_audio=False)})
    return np.array([by_id[u.id] for u in utterances])


def scores_by_corpus(utterances, predictions: list[dict], emotions) -> dict[str, dict]:
    """WA / UA / macro-F1 of each corpus (a manifest line's `corpus`) among the predictions."""
    corpus_of = {u.id: u.extra.get("corpus", "unnamed") for u in utterances}
    by_corpus: dict[str, list[dict]] = {}
    for row in predictions:
        by_corpus.setdefault(corpus_of[row["id"]], []).append(row)
    return {
        corpus: emotion_metrics(
            [r["label"] for r in rows], [r["prediction"] for r in rows], len(emotions)
        )
        for corpus, rows in sorted(by_corpus.items())
    }


AGREE_CUE = "both"  # train.synth.CUE_MIX: voice and words say the same emotion
DISAGREE = "disagree"  # every other cue pooled: one side neutral, or the two in conflict


def scores_by_cue(utterances, predictions: list[dict], emotions) -> dict[str, dict]:
    """WA / UA / macro-F1 per cue (a manifest line's `cue`) among the predictions, and over the
    clips whose voice and words do not agree (`disagree`: every cue but `both`); {} when no
    predicted utterance names a cue. UA is over the classes present: a neutral clip is always
    `both`, so the other cues hold happy, angry and sad only."""
    cue_of = {u.id: u.extra["cue"] for u in utterances if "cue" in u.extra}
    by_cue: dict[str, list[dict]] = {}
    for row in predictions:
        cue = cue_of.get(row["id"])
        if cue is None:
            continue
        by_cue.setdefault(cue, []).append(row)
        if cue != AGREE_CUE:
            by_cue.setdefault(DISAGREE, []).append(row)
    if AGREE_CUE not in by_cue:
        by_cue.pop(DISAGREE, None)  # no cue says "both": nothing to contrast
    return {
        cue: emotion_metrics(
            [r["label"] for r in rows], [r["prediction"] for r in rows], len(emotions)
        )
        for cue, rows in sorted(by_cue.items())
    }
