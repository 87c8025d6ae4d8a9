"""How each fold's model reads its unheard speakers saying a sentence it never trained on.

    python benchmarks/new_sentence.py RUN [RUN ...] --manifest data/ravdess/dogs.jsonl

RAVDESS's actors say two sentences and the cross-validation tests them on those two, so it never
asks what a person saying something else gets. Train on one sentence's clips (a manifest with
only those lines), then score each fold's best checkpoint (``RUN/fold-gK/best``, as ``python -m
train cv`` or ``ablate`` leave it) on the clips of another manifest, the other sentence's, that
its fold held out: the groups of ``RUN/fold-gK/splits.json``'s test split, speakers it never
heard, now saying a sentence it never heard either. ``--manifest`` may be given more than once
(the trained sentence's clips beside the new one's, for the gap).

Prints, per run and manifest, the fused UA per fold, mean ± std, and over every fold's clips
the mean top probability beside the accuracy (how sure it is, and how often it is right) and
the ECE (15 bins) of the checkpoints' calibrated probabilities. Asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

from benchmarks.common import command_line, machine  # noqa: E402


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", type=Path, help="cross-validation folders (RUN/fold-*)")
    parser.add_argument(
        "--manifest", action="append", required=True, help="clips to score (repeatable)"
    )
    parser.add_argument("--max-seconds", type=float, default=8.0, help="as the training cut clips")
    return parser.parse_args(argv)


def held_out_clips(fold: Path, utterances: list) -> list:
    """The utterances of the groups `fold` (RUN/fold-gK) held out: its splits.json test groups."""
    splits = json.loads((fold / "splits.json").read_text())
    groups = set(splits["test"]["groups"])
    return [u for u in utterances if u.group in groups]


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)

    from mgcma import load_model
    from train.calibrate import expected_calibration_error
    from train.evaluate import evaluate
    from train.manifest import load_manifest

    print(command_line(__file__, argv))
    print(machine())
    manifests = {m: load_manifest(m) for m in args.manifest}
    folds_of = {run: sorted(p.parent for p in run.glob("fold-*/splits.json")) for run in args.runs}
    for run, folds in folds_of.items():
        if not folds:
            raise SystemExit(f"{run}: no fold-*/splits.json (a `python -m train cv` folder?)")
    names = sorted({f.name.removeprefix("fold-") for folds in folds_of.values() for f in folds})
    print(
        f"\n| run | clips | {' | '.join(names)} | UA % mean ± std | mean top p | accuracy | ECE |"
    )
    print("|---|---|" + "---:|" * (len(names) + 4))
    for run, folds in folds_of.items():
        scores = {m: {} for m in manifests}
        probs = {m: [] for m in manifests}  # (C,) per clip, every fold's
        labels = {m: [] for m in manifests}
        for fold in folds:
            model = load_model(fold / "best")
            for m, utterances in manifests.items():
                clips = held_out_clips(fold, utterances)
                if not clips:
                    continue
                result = evaluate(model, clips, max_seconds=args.max_seconds, with_predictions=True)
                scores[m][fold.name.removeprefix("fold-")] = 100 * result["ua"]
                probs[m] += [p["probs"] for p in result["predictions"]]
                labels[m] += [p["label"] for p in result["predictions"]]
        for m, per_fold in scores.items():
            if not per_fold:
                print(f"| {run} | {m} | " + " | ".join("–" for _ in names) + " | – | – | – | – |")
                continue
            cells = " | ".join(f"{per_fold[n]:.1f}" if n in per_fold else "–" for n in names)
            values = list(per_fold.values())
            p, y = np.array(probs[m]), np.array(labels[m])  # (N, C), (N,)
            print(
                f"| {run} | {m} | {cells} | **{np.mean(values):.1f}** ± {np.std(values):.1f} "
                f"| {p.max(1).mean():.2f} | {(p.argmax(1) == y).mean():.2f} "
                f"| {expected_calibration_error(p, y):.3f} |"
            )


if __name__ == "__main__":
    main()
