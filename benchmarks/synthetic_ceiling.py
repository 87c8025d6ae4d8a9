"""What the synthetic corpus lets any model reach: its label read from the exact voice settings.

    python benchmarks/synthetic_ceiling.py [--manifest corpus/manifest.jsonl]

Every synthetic utterance records the espeak-ng settings it was voiced with (``prosody``: pitch,
pitch range, rate, volume; each the emotion's setting plus the speaker's fixed offset plus
per-utterance jitter, `train/synth.py`). A quadratic discriminant on those exact numbers, trained
on four voice groups and scored on the fifth (each in turn), reads how a clip was said about as
well as anything can from its prosody, for voices it never heard; with the words' true emotion
by the corpus's rule (the voice's emotion unless it is neutral, then the words'), that gives the
label's UA for a model whose ears were perfect and whose text side never erred. Rows leave out
the settings no clip-level model of an unheard voice can know: volume (a pure gain, gone once
every clip is heard at one level) and pitch level (relative to a voice's habit).

Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

from benchmarks.common import machine  # noqa: E402
from train.probe import label_by_rule  # noqa: E402

SETTINGS = ("pitch", "pitch_range", "rate", "volume")
ROWS = {
    "every setting": SETTINGS,
    "without volume": ("pitch", "pitch_range", "rate"),
    "pitch range and rate only": ("pitch_range", "rate"),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--manifest", default="corpus/manifest.jsonl")
    args = parser.parse_args()
    from sklearn.discriminant_analysis import QuadraticDiscriminantAnalysis
    from sklearn.metrics import balanced_accuracy_score

    rows = [json.loads(line) for line in Path(args.manifest).read_text().splitlines() if line]
    rows = [r for r in rows if "prosody" in r and "prosody_emotion" in r]
    if not rows:
        raise SystemExit(f"{args.manifest}: no utterance records its espeak-ng settings")
    settings = np.array([[r["prosody"][k] for k in SETTINGS] for r in rows], dtype=float)
    voice = np.array([r["prosody_emotion"] for r in rows])
    words = np.array([r["text_emotion"] for r in rows])
    label = np.array([r["label"] for r in rows])
    groups = np.array([r["group"] for r in rows])
    print(f"# {len(rows)} synthetic utterances of {args.manifest}, each voice group held out")
    print(machine())
    print("| settings read | how it was said: UA % | the label by the rule: UA % |")
    print("|---|---:|---:|")
    for name, keys in ROWS.items():
        columns = [SETTINGS.index(k) for k in keys]
        heard = np.empty_like(voice)
        for group in sorted(set(groups)):
            held = groups == group
            model = QuadraticDiscriminantAnalysis().fit(settings[~held][:, columns], voice[~held])
            heard[held] = model.predict(settings[held][:, columns])
        ruled = label_by_rule(heard, words)  # the corpus's own rule
        per = [
            (
                balanced_accuracy_score(voice[groups == g], heard[groups == g]),
                balanced_accuracy_score(label[groups == g], ruled[groups == g]),
            )
            for g in sorted(set(groups))
        ]
        said, by_rule = np.mean(per, axis=0)
        print(f"| {name} | {100 * said:.1f} | {100 * by_rule:.1f} |")


if __name__ == "__main__":
    main()
