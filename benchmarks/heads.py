"""What each head of a trained model reads, and what the voice-first rule makes of them.

    python benchmarks/heads.py --checkpoint runs/cv/fold-g1/best [more] \\
        --manifest corpus/manifest.jsonl data/ravdess/manifest.jsonl --group g1

On the clips of the held-out fold (`--group`: every corpus's group of that fold), per corpus:
- the fused head against the label;
- the speech head against what the voice alone says (a manifest's ``prosody_emotion``, else
  the label) and the text head against what the words alone say (``text_emotion``, else the
  label);
- the voice-first rule on the two heads (the voice's emotion unless it is neutral, then the
  words': how the synthetic corpus labels a clip, and RAVDESS, whose words are neutral), from
  their argmax and from their probabilities (`mgcma.prior`), against the label;
- the rule with the speech head's reading and the words' *true* emotion: what a perfect text
  side would reach with this ear.
The heads say what each side says alone only when the model was trained with
``loss.modality_targets`` (else both learned the label, and the rule reads them out of place).
Where the rule on the heads scores below the fused head, deferring to one side cannot help this
model: its ear is the limit. UA is over the classes present (`train.metrics`).

Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

from benchmarks.common import command_line, machine  # noqa: E402
from mgcma.checkpoint import load_model  # noqa: E402
from mgcma.prior import voice_first_log_prior  # noqa: E402
from train.evaluate import evaluate  # noqa: E402
from train.manifest import fold_of, load_manifest  # noqa: E402
from train.metrics import emotion_metrics  # noqa: E402
from train.probe import label_by_rule  # noqa: E402


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", nargs="+", required=True, help="checkpoint directories")
    parser.add_argument("--manifest", nargs="+", required=True, help="manifests (any corpora)")
    parser.add_argument("--group", required=True, help="the held-out fold, e.g. g1")
    return parser.parse_args(argv)


def ua(targets: np.ndarray, predictions: np.ndarray, classes: int) -> float:
    return 100 * emotion_metrics(targets.tolist(), predictions.tolist(), classes)["ua"]


def readings(model, utterances) -> dict[str, dict[str, float]]:
    """Per corpus: the UA of each head and of the rule on them (see the module docstring)."""
    result = evaluate(model, utterances, with_logits=True)
    logits = result["logits"]
    emotions = model.emotions
    neutral, classes = emotions.index("neutral"), len(emotions)  # the prior defers on neutral

    def said(field: str) -> np.ndarray:
        return np.array([emotions.index((u.extra or {}).get(field, u.label)) for u in utterances])

    labels, voice, words = (
        np.asarray(result["labels"]),
        said("prosody_emotion"),
        said("text_emotion"),
    )
    speech, text = logits["speech"].argmax(1), logits["text"].argmax(1)
    prior = (
        voice_first_log_prior(
            torch.from_numpy(logits["speech"]), torch.from_numpy(logits["text"]), neutral
        )
        .argmax(1)
        .numpy()
    )
    names = np.array(emotions)

    def by_rule(heard: np.ndarray, written: np.ndarray) -> np.ndarray:
        """The corpus's label rule (train.probe) on (N,) emotion indices → (N,) indices."""
        return np.array([emotions.index(e) for e in label_by_rule(names[heard], names[written])])

    rows = {
        "fused": (labels, logits["fused"].argmax(1)),
        "speech head, the voice": (voice, speech),
        "text head, the words": (words, text),
        "rule on the heads": (labels, by_rule(speech, text)),
        "rule, probabilities": (labels, prior),
        "rule, true words": (labels, by_rule(speech, words)),
    }
    corpora = np.array([(u.extra or {}).get("corpus", "unnamed") for u in utterances])
    table: dict[str, dict[str, float]] = {}
    for corpus in sorted(set(corpora)):
        chosen = corpora == corpus
        table[corpus] = {
            name: ua(target[chosen], prediction[chosen], classes)
            for name, (target, prediction) in rows.items()
        }
    return table


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    utterances = [
        u for path in args.manifest for u in load_manifest(path) if fold_of(u.group) == args.group
    ]
    if not utterances:
        raise SystemExit(f"error: no clip of fold {args.group} in {', '.join(args.manifest)}")
    torch.set_grad_enabled(False)
    print(command_line(__file__, argv))
    print(machine())
    print(f"fold {args.group}: {len(utterances)} clips; UA % over the classes present")
    for checkpoint in args.checkpoint:
        model = load_model(checkpoint, device="cpu").eval()
        if model.speech_head is None:
            print(f"\n{checkpoint}: no auxiliary heads (a one-modality model), skipped")
            continue
        table = readings(model, utterances)
        names = list(next(iter(table.values())))
        taught = "what each side says alone" if model.config.loss.modality_targets else "the label"
        print(f"\n{checkpoint} (the heads learned {taught})")
        print("| corpus | " + " | ".join(names) + " |")
        print("|---|" + "---:|" * len(names))
        for corpus, row in table.items():
            print(f"| {corpus} | " + " | ".join(f"{row[n]:.1f}" for n in names) + " |")


if __name__ == "__main__":
    main()
