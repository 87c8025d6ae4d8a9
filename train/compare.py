"""`python -m train compare BASELINE CANDIDATE`: two cross-validations, fold by fold.

Each argument is a `python -m train cv` run folder (its `report.json`). Prints, overall, per
corpus and per cue, each run's UA mean ± std over their shared folds and the candidate's UA minus
the baseline's fold by fold: the paired difference, which says more than two means ± std when
folds differ more from each other than the two settings do (some voice groups are harder for
every model). Nothing is trained or written.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from train.ablate import CUES, in_cue_order


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("baseline", type=Path, help="a `python -m train cv` run folder")
    parser.add_argument("candidate", type=Path, help="another, on the same folds")


def main(args: argparse.Namespace) -> int:
    print(compare(_report(args.baseline), _report(args.candidate), args.baseline, args.candidate))
    return 0


def _report(run: Path) -> dict:
    path = run / "report.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: run `python -m train cv ... --out {run}`")
    return json.loads(path.read_text())


def _scores(report: dict) -> dict[str, dict[str, float]]:
    """{row name: {fold group: UA}}: overall, each corpus, each cue."""
    rows: dict[str, dict[str, float]] = {"overall": {}}
    cues: dict[str, dict[str, float]] = {}
    for fold in report["folds"]:
        rows["overall"][fold["group"]] = fold["ua"]
        for name, figures in (fold.get("by_corpus") or {}).items():
            rows.setdefault(f"corpus {name}", {})[fold["group"]] = figures["ua"]
        for name, figures in (fold.get("by_cue") or {}).items():
            cues.setdefault(name, {})[fold["group"]] = figures["ua"]
    return rows | {f"cue: {CUES.get(name, name)}": cues[name] for name in in_cue_order(cues)}


def compare(baseline: dict, candidate: dict, base_name="baseline", cand_name="candidate") -> str:
    """The markdown table of `candidate` − `baseline`, paired on the folds both finished."""
    base, cand = _scores(baseline), _scores(candidate)
    shared = sorted(set(base["overall"]) & set(cand["overall"]))
    if not shared:
        raise ValueError("the two runs share no finished fold")
    lines = [
        f"Baseline `{base_name}`, candidate `{cand_name}`: UA % over folds {', '.join(shared)} "
        "(mean ± std), and candidate − baseline fold by fold (points; mean ± std, folds where "
        "the candidate is ahead).",
        "",
        "| measured on | baseline | candidate | candidate − baseline | per fold |",
        "|---|---:|---:|---:|---|",
    ]
    for row in base:
        folds = [g for g in shared if g in base[row] and g in cand.get(row, {})]
        if not folds:
            continue
        a = np.array([base[row][g] for g in folds])
        b = np.array([cand[row][g] for g in folds])
        gap = 100 * (b - a)
        ahead = f"(ahead in {int((gap > 0).sum())}/{len(folds)})"
        lines.append(
            f"| {row} | {100 * a.mean():.1f} ± {100 * a.std():.1f} | "
            f"{100 * b.mean():.1f} ± {100 * b.std():.1f} | "
            f"{_signed(gap.mean())} ± {gap.std():.1f} {ahead} | "
            + ", ".join(f"{g} {_signed(d)}" for g, d in zip(folds, gap, strict=True))
            + " |"
        )
    return "\n".join(lines) + "\n"


def _signed(points: float) -> str:
    """'+1.2' / '-0.3', and '+0.0' for a difference that rounds to nothing."""
    return f"{round(float(points), 1) + 0.0:+.1f}"
