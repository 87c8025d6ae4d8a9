"""A human voice's temperatures, fitted on speakers no model heard.

Temperature scaling (`train.calibrate`) is fitted on each fold's validation split, which is drawn
from the training groups: the model heard every voice in it. On the RAVDESS actors of the test
folds, whom it never heard, the shipped setting was then more sure than right (README,
"Calibration on voices it never heard"). So where the model has a voice gate (`mgcma.voices`), a
cross-validation fits every fold a second temperature per head for human voices (fused and speech
heads), on the human test clips of its *other* folds, each scored by its own fold's model, and
stores it in the fold's checkpoint (``calibration.fused_human``, ``speech_human``). A clip's
temperature is then w · T + (1 − w) · T_human, w the gate's probability that the voice is
synthetic (`MGCMA.probabilities`): synthetic voices keep validation's T. A fold's own test
speakers never touch its temperatures, so its test ECE stays a measurement on unheard speakers.

`train.fit` writes each fold's human test logits to :data:`LOGITS_FILE`; a fold trained before
that is scored again here (without the feature cache).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import log_softmax, softmax

from mgcma.checkpoint import load_model, save_model
from train.calibrate import LOG_T_BOUNDS, expected_calibration_error, reliability_bins
from train.data import synthetic_voice

LOGITS_FILE = "test_human_logits.npz"
HEADS = ("fused", "speech")  # the heads that read the voice; the text head keeps validation's T


def save_human_logits(path: Path, scores: dict, human: np.ndarray, calibration) -> bool:
    """Write the human test clips' logits, what each head learned to say, the gate's logits and
    validation's temperatures to `path` (`scores`: `train.evaluate.evaluate` with logits;
    `human`: (N,) bool). Nothing without a voice gate or a human clip; returns whether written."""
    if "gate_logits" not in scores or not human.any():
        return False
    arrays = {"gate": scores["gate_logits"][human]}  # (H,)
    for head in HEADS:
        if head in scores["logits"]:
            arrays[head] = scores["logits"][head][human]  # (H, C)
            arrays[f"{head}_truth"] = scores["targets"][head][human]  # (H,)
            arrays[f"{head}_validation_t"] = np.float64(getattr(calibration, head))
    np.savez(path, **arrays)
    return True


def load_human_logits(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as data:
        return {key: data[key] for key in data.files}


def clip_temperatures(gate: np.ndarray, validation_t, human_t: float | None) -> np.ndarray:
    """(N, 1) each clip's temperature: w · T + (1 − w) · T_human, w = sigmoid(gate) (N,);
    `validation_t` a number or (N,) per clip; T alone without a human temperature."""
    base = np.broadcast_to(np.asarray(validation_t, dtype=np.float64), gate.shape)[:, None]
    if human_t is None:
        return base
    synthetic = 1.0 / (1.0 + np.exp(-gate.astype(np.float64)))[:, None]  # (N, 1)
    return synthetic * base + (1.0 - synthetic) * human_t


def fit_human_temperature(logits, truth, gate, validation_t) -> float:
    """The T_human that minimises the NLL of `truth` (N,) under softmax(logits (N, C) / T_clip)."""

    def loss(log_t: float) -> float:
        scaled = logits / clip_temperatures(gate, validation_t, float(np.exp(log_t)))
        return float(-log_softmax(scaled, axis=1)[np.arange(len(truth)), truth].mean())

    return float(np.exp(minimize_scalar(loss, bounds=LOG_T_BOUNDS, method="bounded").x))


def human_probs(clips: dict, head: str, human_t: float | None) -> np.ndarray:
    """(N, C) `head`'s probabilities on `clips` (`load_human_logits`) with validation's T, or
    with T_human mixed in by the gate."""
    t = clip_temperatures(clips["gate"], clips[f"{head}_validation_t"], human_t)
    return softmax(clips[head] / t, axis=1)


def human_ece(clips: dict, head: str, human_t: float | None) -> float:
    """ECE of `head` on `clips` with validation's T, or T_human mixed in."""
    return expected_calibration_error(human_probs(clips, head, human_t), clips[f"{head}_truth"])


def cross_fit(experiment, out: Path, groups: list[str]) -> dict[str, dict]:
    """Fit each fold's human temperatures on the other folds' human test clips; write them into
    ``fold-<group>/best`` and ``result.json`` (``calibration_human``). Returns group → report
    (per head: temperature, ECE and reliability bins on the fold's own human test clips before
    and after, count); empty when fewer than two folds have human test clips and a voice gate."""
    folds = {}
    for group in groups:
        path = Path(out) / f"fold-{group}" / LOGITS_FILE
        if path.is_file() or _score_again(experiment, Path(out) / f"fold-{group}", group):
            folds[group] = load_human_logits(path)
    if len(folds) < 2:
        return {}
    reports = {}
    for group, own in folds.items():
        others = [g for g in folds if g != group]
        fold = Path(out) / f"fold-{group}"
        model = load_model(fold / "best")
        calibration = model.config.calibration
        report = {}
        for head in HEADS:
            if head not in own or any(head not in folds[g] for g in others):
                continue
            t = round(fit_human_temperature(*_pooled(folds, others, head)), 4)
            setattr(calibration, f"{head}_human", t)
            report[head] = {
                "temperature": t,
                "validation_temperature": float(own[f"{head}_validation_t"]),
                "ece_before": round(human_ece(own, head, None), 4),
                "ece_after": round(human_ece(own, head, t), 4),
                "count": int(len(own["gate"])),
                "bins_before": reliability_bins(human_probs(own, head, None), own[f"{head}_truth"]),
                "bins_after": reliability_bins(human_probs(own, head, t), own[f"{head}_truth"]),
            }
        count = sum(len(folds[g]["gate"]) for g in others)
        calibration.fitted_on_human = (
            f"human voices of unheard speakers: the test clips of folds {', '.join(others)} "
            f"({count} clips), each scored by its own fold's model"
        )
        save_model(model, fold / "best")
        result = json.loads((fold / "result.json").read_text())
        result["calibration_human"] = report
        (fold / "result.json").write_text(json.dumps(result, indent=1))
        reports[group] = report
    return reports


def _pooled(folds: dict, groups: list[str], head: str) -> tuple[np.ndarray, ...]:
    """`groups`' human test clips together: `head`'s logits (N, C), what it learned to say (N,),
    the gate's logits (N,) and each clip's validation temperature (N,), its own fold's."""
    parts = [folds[g] for g in groups]
    return (
        np.concatenate([p[head] for p in parts]),
        np.concatenate([p[f"{head}_truth"] for p in parts]),
        np.concatenate([p["gate"] for p in parts]),
        np.concatenate([np.full(len(p["gate"]), float(p[f"{head}_validation_t"])) for p in parts]),
    )


def _score_again(experiment, fold: Path, group: str) -> bool:
    """Score a fold trained before :data:`LOGITS_FILE` existed on its human test clips."""
    from train.evaluate import evaluate
    from train.fit import split_data

    if not (fold / "best").is_dir():
        return False
    model = load_model(fold / "best")
    if model.voice_gate is None:
        return False
    human = [u for u in split_data(experiment, group)[2] if not synthetic_voice(u)]
    if not human:
        return False
    scores = evaluate(
        model,
        human,
        experiment.optim.batch_size,
        max_seconds=experiment.data.max_seconds,
        with_logits=True,
    )
    mask = np.ones(len(human), dtype=bool)
    return save_human_logits(fold / LOGITS_FILE, scores, mask, model.config.calibration)
