"""How well a linear probe on the experiment's own frozen speech features reads unheard voices.

    python benchmarks/voice_probe.py train/configs/whisper_minilm.yaml

The features are the ones the experiment trains on, read from its feature cache (filled where
missing): each clip's backbone states as the speech encoder reads them (for the default,
Whisper's last layer and block 1 at −25 dBFS), mean-pooled over the clip. A logistic regression
(standardised features, L2 with ``--c``) is trained on four folds of every corpus and scored on
the fifth, fold by fold, as the cross-validation holds speakers out. Rows:

- each corpus alone: the probe trained on that corpus, clean clips (copy 0) only;
- with the augmented copies: the cached copies 1…K of the training clips added to the clean ones
  (testing on clean clips, as the cross-validation does);
- a corpus of a few sentences (RAVDESS says two): the probe fitted on one sentence's clips and
  scored on the unheard speakers' clips of the same sentence, then of the other one: how much
  of what it reads is the sentence rather than the voice (a person at a microphone says
  neither of RAVDESS's two);
- RAVDESS beside the synthetic voices: one probe for both, the synthetic clips' target how they
  were said (``prosody_emotion``) and weighted ``w`` each, scored on RAVDESS's unheard actors.

What it says: how much of the voice's emotion is linearly in the frozen states, as a reference
for the trained speech side (`python -m train cv` reports it per corpus), and what one shared
readout for real and synthetic voices costs the real ones. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

from benchmarks.common import command_line, machine  # noqa: E402
from train.manifest import fold_of, load_manifest  # noqa: E402
from train.probe import held_out_sentence_ua, held_out_ua  # noqa: E402


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("experiment", help="an experiment YAML (its manifests, model and cache)")
    parser.add_argument("--c", type=float, default=0.1, help="inverse L2 strength (sklearn C)")
    parser.add_argument(
        "--synthetic-weights", default="0.25,1", help="weights of a synthetic clip, comma-separated"
    )
    return parser.parse_args(argv)


def pooled_features(experiment, utterances, copies: int) -> np.ndarray:
    """(M, copies + 1, D_read): each clip's cached backbone states, mean over its frames."""
    from train.augment import Augmenter
    from train.features import FeatureCache
    from train.fit import new_model

    model = new_model(experiment, utterances)
    cache = FeatureCache(
        experiment.resolve(experiment.data.feature_cache),
        model,
        max_seconds=experiment.data.max_seconds,
        augment=Augmenter(experiment.augment),
        copies=copies,
        seed=experiment.optim.seed,
        augment_settings=dataclasses.asdict(experiment.augment),
        memory_mb=0,
    )
    return np.stack(
        [
            [cache.speech(u, c)[0].float().mean(0).flatten().numpy() for c in range(copies + 1)]
            for u in utterances
        ]
    )  # (M, K + 1, D_read)


def row(name: str, per_fold: list[float]) -> str:
    cells = " | ".join(f"{v:.1f}" for v in per_fold)
    return f"| {name} | {cells} | **{np.mean(per_fold):.1f}** ± {np.std(per_fold):.1f} |"


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    from train.settings import load_experiment

    experiment = load_experiment(args.experiment)
    copies = experiment.augment.copies if experiment.augment.enabled else 0
    print(command_line(__file__, argv))
    print(machine())
    corpora = {}
    for path in experiment.data.manifests:
        utterances = load_manifest(experiment.resolve(path))
        name = (utterances[0].extra or {}).get("corpus", Path(path).stem)
        corpora[name] = utterances
    features = {name: pooled_features(experiment, us, copies) for name, us in corpora.items()}
    print(
        f"features: {next(iter(features.values())).shape[-1]} per clip, {copies} copies; C={args.c}"
    )
    folds = sorted({fold_of(u.group) for us in corpora.values() for u in us})
    print(f"\n| probe, UA % on unheard speakers | {' | '.join(folds)} | mean ± std |")
    print("|---|" + "---:|" * (len(folds) + 1))
    for name, utterances in corpora.items():
        voice = np.array([(u.extra or {}).get("prosody_emotion", u.label) for u in utterances])
        fold = np.array([fold_of(u.group) for u in utterances])
        clean = features[name][:, :1]
        print(row(f"{name} alone, how the voice says it", held_out_ua(clean, voice, fold, args.c)))
        if copies:
            print(
                row(
                    f"{name} alone, with the augmented copies",
                    held_out_ua(features[name], voice, fold, args.c),
                )
            )
        sentences = np.array([u.text for u in utterances])
        if not 2 <= len(set(sentences)) <= 4:  # a corpus of a few sentences said many ways
            continue
        for title, same in (
            ("the same sentence only", True),
            ("the other sentences only: a new sentence", False),
        ):
            per_fold = held_out_sentence_ua(features[name], voice, fold, sentences, args.c, same)
            print(row(f"{name}, probe fitted on {title}", per_fold))
    if {"ravdess", "synthetic"} <= set(corpora):
        real, synthetic = corpora["ravdess"], corpora["synthetic"]
        both = np.concatenate([features["ravdess"], features["synthetic"]])
        targets = np.array(
            [u.label for u in real]
            + [(u.extra or {}).get("prosody_emotion", u.label) for u in synthetic]
        )
        fold = np.array([fold_of(u.group) for u in real + synthetic])
        is_real = np.arange(len(targets)) < len(real)
        for w in (float(x) for x in args.synthetic_weights.split(",")):
            weights = np.where(is_real, 1.0, w)
            per_fold = held_out_ua(both, targets, fold, args.c, weights, score=is_real)
            print(row(f"ravdess, one probe with the synthetic voices (weight {w:g})", per_fold))


if __name__ == "__main__":
    main()
