"""`python -m train cv CONFIG.yaml`: leave-one-group-out cross-validation.

Each group (an IEMOCAP session, a pair of synthetic voices) is the test set once; the model is
chosen on a validation split of the other groups. Writes RUN/fold-<group>/ per fold and
`report.json`, `report.md` and `report.html` with WA, UA and macro-F1 per fold and as mean ± std.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from train.calibrate import pool_bins, pooled_ece
from train.fit import fit
from train.manifest import folds as folds_of
from train.manifest import load_manifest
from train.mix import scores_by_cue
from train.report import write_reports
from train.settings import Experiment, load_experiment
from train.unheard import cross_fit


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", help="experiment YAML")
    parser.add_argument("--out", default=None, help="run directory (default runs/cv-<name>)")
    parser.add_argument("--folds", default="", help="comma-separated groups (default: all)")
    parser.add_argument("--resume", action="store_true", help="skip finished folds, resume one")
    parser.add_argument("--quiet", action="store_true")


def main(args: argparse.Namespace, overrides: list[str]) -> int:
    experiment = load_experiment(args.config, overrides)
    out = Path(args.out or Path("runs") / f"cv-{Path(args.config).stem}")
    folds = [f for f in args.folds.split(",") if f] or None
    report = cross_validate(experiment, out, folds, resume=args.resume, progress=not args.quiet)
    if report is not None:
        print((out / "report.md").read_text())
    return 0


def cross_validate(
    experiment: Experiment,
    out: Path,
    folds: list[str] | None = None,
    resume: bool = False,
    progress: bool = True,
) -> dict | None:
    """Run every fold and summarise; returns the report on the main process."""
    utterances, folds = fold_groups(experiment, folds)
    results = []
    for group in folds:
        fold_dir = Path(out) / f"fold-{group}"
        finished = fold_dir / "result.json"
        if resume and finished.is_file():
            results.append(json.loads(finished.read_text()))
            continue
        result = fit(experiment, fold_dir, test_group=group, resume=resume, progress=progress)
        if result is None:  # not the main process
            continue
        results.append(result)
    if not results:
        return None
    groups = [r["test_group"] for r in results]
    if cross_fit(experiment, Path(out), groups):  # a human voice's temperatures, on unheard ones
        results = [
            json.loads((Path(out) / f"fold-{g}" / "result.json").read_text()) for g in groups
        ]
    report = summarise(results, experiment, utterances)
    write_reports(report, Path(out))
    return report


def fold_groups(experiment: Experiment, folds: list[str] | None = None):
    """``(every utterance of the experiment's manifests, the folds to run)``: `folds`, checked
    against the manifests' groups, or all of them (fold g1 holds out g1 of every corpus)."""
    utterances = []
    for path in experiment.manifest_weights():
        utterances += load_manifest(path, check_audio=False)
    all_groups = folds_of(utterances)
    unknown = sorted(set(folds or []) - set(all_groups))
    if unknown:
        raise ValueError(f"unknown group(s) {unknown}; the manifest has {all_groups}")
    return utterances, list(folds or all_groups)


def summarise(results: list[dict], experiment: Experiment, utterances=None) -> dict:
    """Every fold's figures and their mean ± std, overall, per corpus and per cue (scored here
    from each fold's stored predictions against the manifests' `cue`, so folds trained before
    the cue scores existed are scored alike)."""
    if utterances is None:
        utterances = [
            u
            for path in experiment.manifest_weights()
            for u in load_manifest(path, check_audio=False)
        ]
    emotions = experiment.model_config().emotions
    folds = [
        {
            "group": r["test_group"],
            **{k: r["test"][k] for k in ("wa", "ua", "f1", "count")},
            "confusion": r["test"]["confusion"],
            "best_epoch": r["best_epoch"],
            "history": r["history"],
            "by_corpus": {
                corpus: {k: m[k] for k in ("wa", "ua", "f1", "count")}
                for corpus, m in (r.get("test_by_corpus") or {}).items()
            },
            "by_cue": {
                cue: {k: m[k] for k in ("wa", "ua", "f1", "count")}
                for cue, m in scores_by_cue(
                    utterances, r.get("predictions") or [], emotions
                ).items()
            },
            **_fold_extras(r),
        }
        for r in results
    ]
    summary = _mean_std(folds)
    corpora = sorted({c for f in folds for c in f["by_corpus"]})
    by_corpus = {
        c: _mean_std([f["by_corpus"][c] for f in folds if c in f["by_corpus"]]) for c in corpora
    }
    cues = sorted({c for f in folds for c in f["by_cue"]})
    by_cue = {c: _mean_std([f["by_cue"][c] for f in folds if c in f["by_cue"]]) for c in cues}
    confusion = np.sum([f["confusion"] for f in folds], axis=0).tolist()
    text_head = [f["text_corpus"] for f in folds if "text_corpus" in f]
    config = experiment.model_config()
    return {
        "variant": config.variant,
        "preset": experiment.preset,
        "emotions": list(config.emotions),
        "experiment": experiment.to_dict(),
        "folds": folds,
        "summary": summary,
        "summary_by_corpus": by_corpus if len(corpora) > 1 else {},
        "summary_by_cue": by_cue,
        "confusion": confusion,
        "text_corpus_summary": _mean_std(text_head) if text_head else {},
        "calibration_summary": _calibration_summary(folds),
        "calibration_human_summary": _human_summary(folds),
    }


def _fold_extras(result: dict) -> dict:
    """The text head's score on the text corpus's test split, and the fused head's ECE (on
    validation and the test group; on the test group's human voices with `train.unheard`'s
    temperature)."""
    extras = {}
    if result.get("text_corpus_test"):
        extras["text_corpus"] = {
            k: result["text_corpus_test"][k] for k in ("wa", "ua", "f1", "count")
        }
    if result.get("calibration") and "fused" in result["calibration"]:
        fused = result["calibration"]["fused"]
        test = (result.get("calibration_test") or {}).get("fused", {})
        extras["reliability"] = {"before": fused["bins_before"], "after": fused["bins_after"]}
        extras["calibration"] = {
            "temperature": fused["temperature"],
            "val_ece_before": fused["ece_before"],
            "val_ece_after": fused["ece_after"],
            "test_ece_before": test.get("ece_before"),
            "test_ece_after": test.get("ece_after"),
        }
    human = (result.get("calibration_human") or {}).get("fused")
    if human:
        extras["calibration_human"] = {
            k: human[k] for k in ("temperature", "ece_before", "ece_after", "count")
        }
        extras["reliability_human"] = {"before": human["bins_before"], "after": human["bins_after"]}
    return extras


def _calibration_summary(folds: list[dict], field: str = "calibration") -> dict:
    """Mean ± std over folds of each calibration figure (fused head) under `field`."""
    rows = [f[field] for f in folds if field in f]
    if not rows:
        return {}
    return {
        key: {
            "mean": float(np.mean([row[key] for row in rows])),
            "std": float(np.std([row[key] for row in rows])),
        }
        for key in rows[0]
        if all(row[key] is not None for row in rows)
    }


def _human_summary(folds: list[dict]) -> dict:
    """`train.unheard`'s figures (fused head) as mean ± std over folds, and the ECE of every
    fold's human test clips pooled (``pooled_ece_before`` / ``_after``): a fold's hundred-odd
    clips leave its own ECE noisy."""
    summary = _calibration_summary(folds, "calibration_human")
    bins = [f["reliability_human"] for f in folds if "reliability_human" in f]
    if summary and bins:
        for when in ("before", "after"):
            summary[f"pooled_ece_{when}"] = round(pooled_ece(pool_bins([b[when] for b in bins])), 4)
    return summary


def _mean_std(folds: list[dict]) -> dict:
    """{"wa": {"mean", "std"}, ...} over folds (population std: the folds are all there is)."""
    summary = {}
    for metric in ("wa", "ua", "f1"):
        values = np.array([f[metric] for f in folds])
        summary[metric] = {"mean": float(values.mean()), "std": float(values.std(ddof=0))}
    return summary
