"""`python -m train probe --whisper FILE --manifest M`: what each Whisper layer knows, by a probe.

For every layer of a frozen Whisper audio encoder (0: the embeddings, k: after block k, ``last``:
after the final LayerNorm, what ``speech.hidden_layer: -1`` reads), each clip's states are
mean-pooled over its frames and a linear probe (standardised features, L2-regularised logistic
regression) is trained and scored leave-one-group-out: the UA (balanced accuracy) on each held-out
group of speakers, then the mean. It says which layer to read before a model is trained on it
(``speech.hidden_layer``), not what a trained model reaches: a probe is not MGCMA.

``--label-field`` picks what is probed: ``label`` (the emotion), or any field of the manifest,
e.g. the synthetic corpus's ``prosody_emotion`` (how a clip was said, whatever its words say).
``--pooling mean+std`` pools each layer's frames by their mean and standard deviation (how much
the voice moves, not only where it sits); the row ``all`` probes every layer at once.

``--with-words FIELD`` asks what the voice side's reading is worth to a fused model whose text
side were perfect: with ``--label-field prosody_emotion --with-words text_emotion`` on the
synthetic corpus, the best row's held-out predictions of how each clip was said are combined
with the true emotion of its words by the corpus's own rule (the voice's emotion unless it is
neutral, then the words'), and the result is scored against the label: a ceiling for any model
that hears the voice through this encoder as well as the probe does.
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import balanced_accuracy_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from tqdm import tqdm

from mgcma import whisper_backbone
from mgcma.audio import load_audio
from mgcma.level import normalise_level
from train.manifest import Utterance, load_manifest


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--whisper", required=True, help="an openai-whisper .pt file")
    parser.add_argument("--manifest", required=True, action="append", help="repeat for several")
    parser.add_argument("--label-field", default="label", help="the manifest field to probe")
    parser.add_argument("--max-seconds", type=float, default=8.0, help="clips are cut to this")
    parser.add_argument("--limit", type=int, default=0, help="a seeded sample of N clips")
    parser.add_argument("--regularisation", type=float, default=0.1, help="the probe's C")
    parser.add_argument("--pooling", choices=("mean", "mean+std"), default="mean")
    parser.add_argument(
        "--with-words", default="", help="a field with the words' emotion: score the label rule"
    )
    parser.add_argument(
        "--input-level-dbfs",
        type=float,
        default=None,
        help="scale each clip to this active speech level first, as speech.input_level_dbfs does",
    )
    parser.add_argument("--json", default="", help="also write the figures to this file")


def pooled_layers(
    encoder: torch.nn.Module, samples: np.ndarray, pooling: str = "mean"
) -> np.ndarray:
    """(N,) 16-kHz samples → (L + 2, D_s) every layer's states mean-pooled over the clip, or
    (L + 2, 2·D_s) with ``pooling="mean+std"`` (mean, then standard deviation)."""
    mel = whisper_backbone.log_mel(torch.from_numpy(samples), encoder.conv1.in_channels)[None]
    with torch.no_grad():
        layers = whisper_backbone.encode_layers(encoder, mel)  # L + 2 × (1, T_s, D_s)
    pooled = [states.mean(dim=1) for states in layers]  # L + 2 × (1, D_s)
    if pooling == "mean+std":
        pooled = [
            torch.cat([mean, states.std(dim=1, correction=0)], dim=-1)
            for mean, states in zip(pooled, layers, strict=True)
        ]  # L + 2 × (1, 2·D_s)
    return torch.cat(pooled).numpy()


def held_out_predictions(
    features: np.ndarray, labels: np.ndarray, groups: np.ndarray, c: float
) -> np.ndarray:
    """Each clip's prediction by a linear probe trained without its group: (M, D) → (M,)."""
    predictions = np.empty(len(labels), dtype=labels.dtype)
    for group in sorted(set(groups)):
        train, test = groups != group, groups == group
        model = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=3000))
        model.fit(features[train], labels[train])
        predictions[test] = model.predict(features[test])
    return predictions


def held_out_ua(features, targets, folds, c, weights=None, score=None) -> list[float]:
    """UA % per fold of a probe trained on the other folds' rows, weighted (`weights`, 0 leaves
    a row out), scored on this fold's rows where `score` is True. `features` is (M, K + 1, D):
    every copy of a training row is trained on, copy 0 of a test row is scored
    (`benchmarks/voice_probe.py`)."""
    weights = np.ones(len(targets)) if weights is None else weights
    score = np.ones(len(targets), bool) if score is None else score
    copies = features.shape[1]
    result = []
    for fold in sorted(set(folds)):
        train = (folds != fold) & (weights > 0)
        test = (folds == fold) & score
        model = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=3000))
        model.fit(
            features[train].reshape(-1, features.shape[-1]),
            np.repeat(targets[train], copies),
            logisticregression__sample_weight=np.repeat(weights[train], copies),
        )
        predicted = model.predict(features[test, 0])
        result.append(100 * balanced_accuracy_score(targets[test], predicted))
    return result


def held_out_sentence_ua(features, targets, folds, sentences, c, same: bool) -> list[float]:
    """UA % per fold, the mean over sentences: each sentence's clips of the fold's unheard
    speakers scored by a probe fitted on the other folds' clips of that sentence only (`same`)
    or of every other sentence only (a sentence it never heard). `features` as in
    :func:`held_out_ua`."""
    per_sentence = [
        held_out_ua(features, targets, folds, c, ((sentences == s) == same) * 1.0, sentences == s)
        for s in sorted(set(sentences))
    ]  # (S, folds)
    return list(np.mean(per_sentence, axis=0))


def per_group_ua(labels: np.ndarray, predictions: np.ndarray, groups: np.ndarray) -> list[float]:
    """UA (balanced accuracy) within each group: one figure per group, sorted by name."""
    return [
        float(balanced_accuracy_score(labels[groups == g], predictions[groups == g]))
        for g in sorted(set(groups))
    ]


def label_by_rule(voice: np.ndarray, words: np.ndarray, neutral: str = "neutral") -> np.ndarray:
    """The synthetic corpus's label rule: the voice's emotion unless it is neutral, then the
    words' (:mod:`train.synth`, "Cues and the label")."""
    return np.where(voice != neutral, voice, words)


def layer_names(num_blocks: int) -> list[str]:
    return [str(k) for k in range(num_blocks + 1)] + ["last"]


def run(args: argparse.Namespace) -> dict:
    utterances: list[Utterance] = [u for path in args.manifest for u in load_manifest(path)]
    if args.limit and args.limit < len(utterances):
        chosen = np.random.default_rng(0).choice(len(utterances), args.limit, replace=False)
        utterances = [utterances[i] for i in sorted(chosen)]
    labels = np.array([_field(u, args.label_field) for u in utterances])
    groups = np.array([u.group for u in utterances])
    if len(set(groups)) < 2:
        raise ValueError("the probe needs at least two groups of speakers to hold one out")
    encoder = whisper_backbone.load_whisper(args.whisper).encoder
    level = getattr(args, "input_level_dbfs", None)

    def samples(utterance: Utterance) -> np.ndarray:
        clip = load_audio(utterance.audio, max_seconds=args.max_seconds).samples  # (N,)
        if level is None:
            return clip
        wave = torch.from_numpy(clip)[None]  # (1, N)
        return normalise_level(wave, torch.tensor([clip.size]), level)[0].numpy()

    pooled = np.stack(
        [
            pooled_layers(encoder, samples(u), args.pooling)
            for u in tqdm(utterances, desc="Whisper layers", leave=False)
        ]
    )  # (M, L + 2, D) with D = D_s, or 2·D_s for mean+std
    rows = {name: pooled[:, i] for i, name in enumerate(layer_names(len(encoder.blocks)))}
    rows["all"] = pooled.reshape(len(utterances), -1)  # (M, (L + 2)·D)
    table, predictions = {}, {}
    for name, features in rows.items():
        predictions[name] = held_out_predictions(features, labels, groups, args.regularisation)
        per_group = per_group_ua(labels, predictions[name], groups)
        table[name] = {"mean_ua": float(np.mean(per_group)), "per_group": per_group}
    result = {
        "clips": len(utterances),
        "label_field": args.label_field,
        "pooling": args.pooling,
        "input_level_dbfs": level,
        "layers": table,
    }
    if args.with_words:
        best = max(table, key=lambda name: table[name]["mean_ua"])
        words = np.array([_field(u, args.with_words) for u in utterances])
        truth = np.array([u.label for u in utterances])
        per_group = per_group_ua(truth, label_by_rule(predictions[best], words), groups)
        result["rule"] = {
            "voice_from": best,
            "words_from": args.with_words,
            "mean_ua": float(np.mean(per_group)),
            "per_group": per_group,
        }
    return result


def _field(utterance: Utterance, name: str) -> str:
    value = getattr(utterance, name, None)
    if value is None:
        value = (utterance.extra or {}).get(name)
    if value is None:
        raise ValueError(f"utterance {utterance.id} has no field {name!r} to probe")
    return str(value)


def main(args: argparse.Namespace) -> None:
    result = run(args)
    print(
        f"linear probe on {result['clips']} clips, {result['label_field']}, "
        f"{result['pooling']} pooling, leave-one-group-out"
        + ("" if result["input_level_dbfs"] is None else f", at {result['input_level_dbfs']} dBFS")
    )
    print("layer  mean UA  per held-out group")
    for name, row in result["layers"].items():
        groups = " ".join(f"{v:.2f}" for v in row["per_group"])
        print(f"{name:>5}  {row['mean_ua']:.3f}    {groups}")
    if "rule" in result:
        rule = result["rule"]
        groups = " ".join(f"{v:.2f}" for v in rule["per_group"])
        print(
            f"label by the rule, the voice as layer {rule['voice_from']} hears it and the words' "
            f"true emotion ({rule['words_from']}): UA {rule['mean_ua']:.3f}    {groups}"
        )
    if args.json:
        with open(args.json, "w") as file:
            json.dump(result, file, indent=1)
