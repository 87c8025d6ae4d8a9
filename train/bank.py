"""`python -m train bank --checkpoint DIR --manifest M --out assets/bank`: build a reference bank.

Every utterance of the manifest goes through `mgcma.Analyzer`; the bank keeps its speech, text
and fused embeddings, Gaussians, matched-pair statistics and metadata, plus 2-D UMAP maps (the
speech and text embeddings share one map, since instance alignment puts them in one space; the
fused embeddings get their own) and the two principal axes of the Gaussian means. UMAP runs
here, once; the app places new utterances with `ReferenceBank.place` (nearest neighbours),
whose agreement with a real `UMAP.transform` is measured on held-out utterances and stored.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from mgcma.analysis import Analyzer
from mgcma.audio import load_audio
from mgcma.bank import STATISTICS, ReferenceBank
from mgcma.checkpoint import load_model
from train.manifest import load_manifest

UMAP_SETTINGS = dict(n_neighbors=15, min_dist=0.1, metric="cosine")


def _umap(count: int, seed: int):
    import umap

    # a tiny bank (tests) cannot have 15 neighbours per point
    neighbours = max(2, min(UMAP_SETTINGS["n_neighbors"], count - 1))
    return umap.UMAP(random_state=seed, **{**UMAP_SETTINGS, "n_neighbors": neighbours})


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", required=True, help="MGCMA checkpoint directory")
    parser.add_argument(
        "--manifest", required=True, nargs="+", help="manifest(s) of the bank's utterances"
    )
    parser.add_argument("--out", required=True, help="output directory, e.g. assets/bank")
    parser.add_argument(
        "--limit", type=int, default=0, help="use the first N utterances of each manifest"
    )
    parser.add_argument(
        "--real-sentences",
        choices=("keep", "drop"),
        default="drop",
        help="synthetic utterances that voice GoEmotions comments: the app shows the bank's "
        "texts as neighbours, and Reddit comments are unfiltered (about 5 %% of the voiced ones "
        "swear), so by default they stay out of the bank (they are trained on all the same)",
    )
    parser.add_argument("--seed", type=int, default=0, help="UMAP seed")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--quiet", action="store_true")


def main(args: argparse.Namespace) -> int:
    bank = build_bank(
        Path(args.checkpoint),
        [Path(m) for m in args.manifest],
        limit=args.limit,
        seed=args.seed,
        batch_size=args.batch_size,
        progress=not args.quiet,
        real_sentences=args.real_sentences == "keep",
    )
    bank.save(args.out)
    agreement = bank.meta["placement_agreement"]
    print(
        f"bank of {len(bank)} utterances written to {args.out}; nearest-neighbour placement vs "
        f"UMAP.transform on {agreement['held_out']} held-out utterances: median error "
        f"{agreement['median_error_percent']:.1f} % of the map's extent, same nearest-label "
        f"{agreement['label_agreement_percent']:.0f} %"
    )
    return 0


def embed(
    checkpoint: Path,
    manifests: list[Path],
    limit: int,
    batch_size: int,
    progress: bool,
    real_sentences: bool = True,
):
    """Analyse every utterance: (arrays dict of stacked values, utterances).

    real_sentences : False leaves out utterances voicing a GoEmotions comment
    """
    analyzer = Analyzer(load_model(checkpoint))
    if analyzer.model.config.modalities != "both" or not analyzer.model.config.alignment.instance:
        raise ValueError("a bank needs a model with both modalities and instance alignment")
    utterances = []
    for manifest in manifests:
        kept = [
            u
            for u in load_manifest(manifest)
            if real_sentences or u.extra.get("sentence_source") != "goemotions"
        ]
        utterances += kept[: limit or None]
    rows: dict[str, list] = {}
    for start in tqdm(range(0, len(utterances), batch_size), desc="bank", disable=not progress):
        chunk = utterances[start : start + batch_size]
        items = [(load_audio(u.audio), 16000, u.text) for u in chunk]
        for analysis in analyzer.analyze_many(items, batch_size=batch_size):
            values = {
                "speech": analysis.speech_embedding,
                "text": analysis.text_embedding,
                "fused": analysis.fused_embedding,
                "speech_mu": analysis.speech_mu,
                "text_mu": analysis.text_mu,
                "speech_sigma": analysis.speech_sigma,
                "text_sigma": analysis.text_sigma,
                **{name: getattr(analysis, name) for name in STATISTICS},
            }
            for name, value in values.items():
                rows.setdefault(name, []).append(value)
    return {name: np.asarray(values, dtype=np.float32) for name, values in rows.items()}, utterances


def fit_maps(arrays: dict, seed: int) -> dict[str, np.ndarray]:
    """UMAP coordinates: speech and text on one joint map, fused on its own."""
    count = len(arrays["speech"])
    joint = _umap(2 * count, seed).fit_transform(
        np.concatenate([arrays["speech"], arrays["text"]])
    )  # (2N, 2)
    fused = _umap(count, seed).fit_transform(arrays["fused"])
    return {"speech_xy": joint[:count], "text_xy": joint[count:], "fused_xy": fused}


def principal_axes(arrays: dict) -> dict[str, np.ndarray]:
    """The two principal axes of all Gaussian means (speech and text together), fitted with
    scikit-learn's PCA; the bank stores them and `ReferenceBank.projected_means` applies them."""
    from sklearn.decomposition import PCA

    means = np.concatenate([arrays["speech_mu"], arrays["text_mu"]])  # (2N, g)
    pca = PCA(n_components=2).fit(means)
    return {"pca_axes": pca.components_, "pca_center": pca.mean_}  # (2, g), (g,)


def placement_agreement(arrays: dict, labels: list[str], seed: int) -> dict:
    """Fit UMAP on 90 % of the fused embeddings; place the rest by neighbours and by transform."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(labels))
    held = order[: max(len(labels) // 10, 1)]
    kept = order[len(held) :]
    reducer = _umap(len(kept), seed).fit(arrays["fused"][kept])
    kept_xy = reducer.embedding_
    transformed = reducer.transform(arrays["fused"][held])  # (H, 2)
    partial = ReferenceBank(
        {
            **{k: v[kept] for k, v in arrays.items() if k not in ("pca_axes", "pca_center")},
            "speech_xy": np.zeros((len(kept), 2)),
            "text_xy": np.zeros((len(kept), 2)),
            "fused_xy": kept_xy,
            "pca_axes": arrays["pca_axes"],
            "pca_center": arrays["pca_center"],
        },
        {
            "ids": [str(i) for i in kept],
            "texts": [""] * len(kept),
            "labels": [labels[i] for i in kept],
        },
    )
    placed = np.array([partial.place(arrays["fused"][i], "fused") for i in held])  # (H, 2)
    extent = float(np.linalg.norm(kept_xy.max(0) - kept_xy.min(0)))
    errors = np.linalg.norm(placed - transformed, axis=1)

    def nearest_label(points):
        distance = ((points[:, None, :] - kept_xy[None, :, :]) ** 2).sum(-1)
        return [labels[kept[j]] for j in distance.argmin(1)]

    same = np.mean(np.array(nearest_label(placed)) == np.array(nearest_label(transformed)))
    return {
        "held_out": int(len(held)),
        "median_error_percent": float(100 * np.median(errors) / extent),
        "label_agreement_percent": float(100 * same),
    }


def build_bank(
    checkpoint: Path,
    manifest: Path | list[Path],
    limit: int = 0,
    seed: int = 0,
    batch_size: int = 16,
    progress: bool = True,
    real_sentences: bool = True,
) -> ReferenceBank:
    started = time.time()
    manifests = manifest if isinstance(manifest, list | tuple) else [manifest]
    arrays, utterances = embed(
        checkpoint, list(manifests), limit, batch_size, progress, real_sentences
    )
    arrays.update(principal_axes(arrays))
    labels = [u.label for u in utterances]
    agreement = placement_agreement(arrays, labels, seed)
    arrays.update(fit_maps(arrays, seed))
    meta = {
        "ids": [u.id for u in utterances],
        "texts": [u.text for u in utterances],
        "labels": labels,
        "speakers": [u.speaker for u in utterances],
        "groups": [u.group for u in utterances],
        "cues": [u.extra.get("cue", "") for u in utterances],
        "corpora": [u.extra.get("corpus", "") for u in utterances],
        "checkpoint": str(checkpoint),
        "manifest": [str(m) for m in manifests],
        "umap": {**UMAP_SETTINGS, "random_state": seed},
        "placement_agreement": agreement,
        "build_seconds": round(time.time() - started, 1),
    }
    return ReferenceBank(arrays, meta)
