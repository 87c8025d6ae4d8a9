"""The ablation's paired column over several runs of it (reruns or seeds), fold by fold.

    python benchmarks/ablation_runs.py assets/checkpoints/ablation.json runs/ablate-s1/ablation.json

Each file is an `ablation.json` that `python -m train ablate` writes. For every variant, fold and
corpus: the full model's UA minus the variant's in each run, then their mean over the runs
(the fold's paired difference with less of one training run's noise in it); printed as mean ±
std over the folds every run finished, with the folds where the full model is ahead, beside each
run's own figure. One run's paired column can flip sign with the seed alone; a granularity whose
mean over runs stays ahead in most folds carries something.

Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

from benchmarks.common import command_line  # noqa: E402

# overall, per corpus, and per cue of the synthetic corpus (train.mix.scores_by_cue): voice and
# words agree ("both"), or differ (only the voice, only the words, or a conflict)
SCOPES = ("overall", "ravdess", "synthetic", "cue both", "cue disagree")


def fold_ua(fold: dict, scope: str) -> float | None:
    if scope == "overall":
        return fold["ua"]
    field, name = ("by_cue", scope[4:]) if scope.startswith("cue ") else ("by_corpus", scope)
    scores = (fold.get(field) or {}).get(name)
    return None if scores is None else scores["ua"]


def paired(runs: list[dict], variant: str, scope: str) -> tuple[list[str], np.ndarray]:
    """The folds every run has for both models, and (runs, folds) full − variant in points."""
    folds = sorted(
        set.intersection(*(set(run["full"]["folds"]) & set(run[variant]["folds"]) for run in runs))
    )
    gaps = []
    for run in runs:
        row = []
        for fold in folds:
            full, other = (
                fold_ua(run["full"]["folds"][fold], scope),
                fold_ua(run[variant]["folds"][fold], scope),
            )
            row.append(np.nan if full is None or other is None else 100 * (full - other))
        gaps.append(row)
    return folds, np.array(gaps)  # (runs, folds)


def summary(gaps: np.ndarray) -> str:
    """`mean ± std (ahead in k/n)` over folds of a (folds,) row of differences."""
    values = np.round(gaps[~np.isnan(gaps)], 9)  # (n,) without float dust: 2 − 2 is 0
    if values.size == 0:
        return "–"
    mean = float(values.mean()) + 0.0  # −0.0 → 0.0
    return f"{mean:+.1f} ± {values.std():.1f} ({int((values > 0).sum())}/{values.size})"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("ablations", nargs="+", help="ablation.json files, one per run")
    args = parser.parse_args(argv)
    runs = [json.loads(Path(path).read_text()) for path in args.ablations]
    print(command_line(__file__, argv))
    variants = [v for v in runs[0] if v != "full" and all(v in run for run in runs)]
    names = [f"run {k + 1}" for k in range(len(runs))] + ["mean of the runs"]
    for k, path in enumerate(args.ablations):
        print(f"run {k + 1}: {path}")
    for scope in SCOPES:
        print(f"\nfull − variant, UA points, {scope}: mean ± std over folds (full ahead in k/n)")
        print("| variant | folds | " + " | ".join(names) + " |")
        print("|---|---|" + "---:|" * len(names))
        for variant in variants:
            folds, gaps = paired(runs, variant, scope)
            if not folds or np.isnan(gaps).all():
                continue
            cells = [summary(row) for row in gaps] + [summary(np.nanmean(gaps, axis=0))]
            print(f"| {variant} | {', '.join(folds)} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
