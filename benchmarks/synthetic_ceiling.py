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
every clip is heard at one level) and pitch level (relative to a voice's habit). Columns split
the label's UA by sentence: templated wording, or a real GoEmotions comment.

``--words RUN`` replaces the words' true emotion by what a trained model named for each clip when
its fold was held out (``RUN/fold-*/result.json``; with a text-only ablation, e.g.
``runs/ablate/text_only``, how the text side alone reads them): perfect ears, real reading.
``--model RUN`` adds a row with that run's own UA on the same clips, split the same way.

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


def held_out_words(run: Path) -> dict[str, str]:
    """Clip id → the emotion a trained model named for it when its fold was held out
    (RUN/fold-*/result.json, as `python -m train cv` or `ablate` leaves them)."""
    from mgcma.constants import EMOTIONS

    named = {}
    for result in sorted(run.glob("fold-*/result.json")):
        for p in json.loads(result.read_text())["predictions"]:
            named[p["id"]] = EMOTIONS[p["prediction"]]
    if not named:
        raise SystemExit(f"{run}: no fold-*/result.json with predictions")
    return named


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--manifest", default="corpus/manifest.jsonl")
    parser.add_argument(
        "--words",
        metavar="RUN",
        type=Path,
        help="also read each clip's words as a trained model read them on held-out folds "
        "(e.g. runs/ablate/text_only), instead of by their true emotion",
    )
    parser.add_argument(
        "--model",
        metavar="RUN",
        type=Path,
        action="append",
        default=[],
        help="also print a trained model's own held-out UA on the same clips (repeatable)",
    )
    args = parser.parse_args()
    from sklearn.discriminant_analysis import QuadraticDiscriminantAnalysis
    from sklearn.metrics import balanced_accuracy_score

    rows = [json.loads(line) for line in Path(args.manifest).read_text().splitlines() if line]
    rows = [r for r in rows if "prosody" in r and "prosody_emotion" in r]
    if not rows:
        raise SystemExit(f"{args.manifest}: no utterance records its espeak-ng settings")
    read = None
    if args.words is not None:
        named = held_out_words(args.words)
        rows = [r for r in rows if r["id"] in named]
        if not rows:
            raise SystemExit(f"{args.words}: no prediction for any clip of {args.manifest}")
        read = np.array([named[r["id"]] for r in rows])
    models = {run: held_out_words(run) for run in args.model}
    for run, named in models.items():
        rows = [r for r in rows if r["id"] in named]
        if not rows:
            raise SystemExit(f"{run}: no prediction for any clip of {args.manifest}")
    settings = np.array([[r["prosody"][k] for k in SETTINGS] for r in rows], dtype=float)
    voice = np.array([r["prosody_emotion"] for r in rows])
    words = np.array([r["text_emotion"] for r in rows])
    label = np.array([r["label"] for r in rows])
    groups = np.array([r["group"] for r in rows])
    real = np.array([r.get("sentence_source") == "goemotions" for r in rows])
    print(f"# {len(rows)} synthetic utterances of {args.manifest}, each voice group held out")
    print(machine())
    header = ["settings read", "how it was said: UA %", "the label by the rule: UA %"]
    header += ["templates", "real sentences"]
    if read is not None:
        header += [f"words as {args.words} read them: UA %", "templates", "real sentences"]
    print("| " + " | ".join(header) + " |")
    print("|---|" + "---:|" * (len(header) - 1))

    def ua(truth, guess, keep):
        """Mean over voice groups of the UA on the clips in `keep` (nan if none)."""
        per = [
            balanced_accuracy_score(truth[keep & (groups == g)], guess[keep & (groups == g)])
            for g in sorted(set(groups))
            if (keep & (groups == g)).any()
        ]
        return 100 * float(np.mean(per)) if per else float("nan")

    every = np.ones(len(rows), dtype=bool)
    for name, keys in ROWS.items():
        columns = [SETTINGS.index(k) for k in keys]
        heard = np.empty_like(voice)
        for group in sorted(set(groups)):
            held = groups == group
            model = QuadraticDiscriminantAnalysis().fit(settings[~held][:, columns], voice[~held])
            heard[held] = model.predict(settings[held][:, columns])
        cells = [ua(voice, heard, every)]
        for words_read in [words] + ([read] if read is not None else []):
            ruled = label_by_rule(heard, words_read)  # the corpus's own rule
            cells += [ua(label, ruled, keep) for keep in (every, ~real, real)]
        print(f"| {name} | " + " | ".join(f"{c:.1f}" for c in cells) + " |")
    for run, named in models.items():  # the model itself, not a ceiling
        said = np.array([named[r["id"]] for r in rows])
        cells = [ua(label, said, keep) for keep in (every, ~real, real)]
        blank = " – |" * (len(header) - 5)
        print(f"| {run} itself | – | " + " | ".join(f"{c:.1f}" for c in cells) + " |" + blank)


if __name__ == "__main__":
    main()
