"""Which side a trained model follows when the voice and the words say different things.

    python benchmarks/which_side.py runs/ablate [--manifest corpus/manifest.jsonl]

Reads each model's held-out predictions (RUN/<variant>/fold-*/result.json, as `python -m train
ablate` or `cv` leaves them) and the manifest's cues (`train/synth.py`: voice and words agree,
only the voice carries the emotion, only the words, or the two conflict; the label is the
voice's unless it is neutral, then the words'). Per model and cue, over every fold's test clips:
how many it gets right, and what its errors name: the voice's emotion, the words' emotion, or
neither. A model that follows the words where the rule says the voice prints a large "words"
share on voice-only and conflicting clips; one deaf to the words names them in about a third
of its errors there (one of the three wrong classes).

Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

from mgcma.constants import EMOTIONS  # noqa: E402
from train.manifest import load_manifest  # noqa: E402

CUES = ("both", "prosody", "words", "conflict")


def tally(run: Path, variant: str, sides: dict[str, tuple[str, str, str]]) -> dict:
    """Per cue: clips, right, and errors naming the voice's / the words' emotion / neither."""
    counts: dict[str, Counter] = {cue: Counter() for cue in CUES}
    for result in sorted((run / variant).glob("fold-*/result.json")):
        for row in json.loads(result.read_text())["predictions"]:
            if row["id"] not in sides:
                continue  # another corpus's clip, or one without a cue
            cue, voice, words = sides[row["id"]]
            said = EMOTIONS[row["prediction"]]
            count = counts.setdefault(cue, Counter())
            count["clips"] += 1
            if row["prediction"] == row["label"]:
                count["right"] += 1
            elif said == words:
                count["words"] += 1
            elif said == voice:
                count["voice"] += 1
            else:
                count["neither"] += 1
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("run", type=Path, help="an ablation's --out folder (or one cv run's)")
    parser.add_argument("--manifest", type=Path, default=Path("corpus/manifest.jsonl"))
    args = parser.parse_args()
    sides = {
        u.id: (u.extra["cue"], u.extra["prosody_emotion"], u.extra["text_emotion"])
        for u in load_manifest(args.manifest, check_audio=False)
        if {"cue", "prosody_emotion", "text_emotion"} <= set(u.extra)
    }
    if not sides:
        raise SystemExit(f"{args.manifest} names no cue: it is not a synthetic corpus manifest")
    if list(args.run.glob("fold-*/result.json")):  # one cross-validation
        runs = [(args.run.parent, args.run.name)]
    else:  # an ablation: one cross-validation per variant
        found = sorted(p for p in args.run.iterdir() if list(p.glob("fold-*/result.json")))
        runs = [(args.run, p.name) for p in found]
    if not runs:
        raise SystemExit(f"no fold-*/result.json under {args.run}")
    print(f"{args.run}: held-out predictions of every fold; errors by the emotion they name\n")
    print("| model | cue | clips | right % | errors: the words' % | the voice's % | neither % |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for run, variant in runs:
        for cue, count in tally(run, variant, sides).items():
            if not count["clips"]:
                continue
            errors = count["clips"] - count["right"]
            shares = [
                "–" if cue == "both" or not errors else f"{100 * count[k] / errors:.0f}"
                for k in ("words", "voice", "neither")
            ]  # on agreeing clips both sides name the label: an error names neither
            print(
                f"| {variant} | {cue} | {count['clips']} | "
                f"{100 * count['right'] / count['clips']:.1f} | " + " | ".join(shares) + " |"
            )


if __name__ == "__main__":
    main()
