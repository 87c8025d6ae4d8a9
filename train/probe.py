"""`python -m train probe --whisper FILE --manifest M`: what each Whisper layer knows, by a probe.

For every layer of a frozen Whisper audio encoder (0: the embeddings, k: after block k, ``last``:
after the final LayerNorm, what ``speech.hidden_layer: -1`` reads), each clip's states are
mean-pooled over its frames and a linear probe (standardised features, L2-regularised logistic
regression) is trained and scored leave-one-group-out: the UA (balanced accuracy) on each held-out
group of speakers, then the mean. It says which layer to read before a model is trained on it
(``speech.hidden_layer``), not what a trained model reaches: a probe is not MGCMA.

``--label-field`` picks what is probed: ``label`` (the emotion), or any field of the manifest,
e.g. the synthetic corpus's ``prosody_emotion`` (how a clip was said, whatever its words say).
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
from train.manifest import Utterance, load_manifest


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--whisper", required=True, help="an openai-whisper .pt file")
    parser.add_argument("--manifest", required=True, action="append", help="repeat for several")
    parser.add_argument("--label-field", default="label", help="the manifest field to probe")
    parser.add_argument("--max-seconds", type=float, default=8.0, help="clips are cut to this")
    parser.add_argument("--limit", type=int, default=0, help="a seeded sample of N clips")
    parser.add_argument("--regularisation", type=float, default=0.1, help="the probe's C")
    parser.add_argument("--json", default="", help="also write the figures to this file")


def pooled_layers(encoder: torch.nn.Module, samples: np.ndarray) -> np.ndarray:
    """(N,) 16-kHz samples → (L + 2, D_s): every layer's states mean-pooled over the clip."""
    mel = whisper_backbone.log_mel(torch.from_numpy(samples), encoder.conv1.in_channels)[None]
    with torch.no_grad():
        layers = whisper_backbone.encode_layers(encoder, mel)  # L + 2 × (1, T_s, D_s)
    return torch.cat([states.mean(dim=1) for states in layers]).numpy()


def probe(features: np.ndarray, labels: np.ndarray, groups: np.ndarray, c: float) -> list[float]:
    """UA of a linear probe on each held-out group: (M, D), (M,), (M,) → one UA per group."""
    scores = []
    for group in sorted(set(groups)):
        train, test = groups != group, groups == group
        model = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=3000))
        model.fit(features[train], labels[train])
        scores.append(float(balanced_accuracy_score(labels[test], model.predict(features[test]))))
    return scores


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
    pooled = np.stack(
        [
            pooled_layers(encoder, load_audio(u.audio, max_seconds=args.max_seconds).samples)
            for u in tqdm(utterances, desc="Whisper layers", leave=False)
        ]
    )  # (M, L + 2, D_s)
    names = layer_names(len(encoder.blocks))
    table = {}
    for index, name in enumerate(names):
        per_group = probe(pooled[:, index], labels, groups, args.regularisation)
        table[name] = {"mean_ua": float(np.mean(per_group)), "per_group": per_group}
    return {"clips": len(utterances), "label_field": args.label_field, "layers": table}


def _field(utterance: Utterance, name: str) -> str:
    value = getattr(utterance, name, None)
    if value is None:
        value = (utterance.extra or {}).get(name)
    if value is None:
        raise ValueError(f"utterance {utterance.id} has no field {name!r} to probe")
    return str(value)


def main(args: argparse.Namespace) -> None:
    result = run(args)
    print(f"linear probe on {result['clips']} clips, {result['label_field']}, leave-one-group-out")
    print("layer  mean UA  per held-out group")
    for name, row in result["layers"].items():
        groups = " ".join(f"{v:.2f}" for v in row["per_group"])
        print(f"{name:>5}  {row['mean_ua']:.3f}    {groups}")
    if args.json:
        with open(args.json, "w") as file:
            json.dump(result, file, indent=1)
