"""`python -m train token-score --checkpoint DIR --manifest M`: is token attention on the words?

For each word with a known true time span, the share of its text→speech cross-attention mass
(mean over heads) that falls on speech frames inside the span, averaged over words; beside it, the
share uniform attention would give (the span's fraction of the clip's frames). A ratio well above
1 means the token-level alignment found where each word was spoken.
"""

from __future__ import annotations

import argparse
import json

import numpy as np
from tqdm import tqdm

from mgcma.analysis import Analysis, Analyzer
from mgcma.audio import load_audio
from mgcma.checkpoint import load_model
from train.manifest import load_manifest


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--manifest", required=True, help="utterances with word timings")
    parser.add_argument("--groups", default="", help="comma-separated groups (default: all)")
    parser.add_argument("--limit", type=int, default=0, help="first N utterances")
    parser.add_argument("--json", default="", help="also write the figures to this file")
    parser.add_argument("--quiet", action="store_true")


def word_scores(analysis: Analysis) -> list[tuple[float, float]]:
    """(attention share inside the span, uniform share) for each word with a known span."""
    attention = analysis.attention_text_to_speech_mean  # (W, T_s)
    if attention is None or not analysis.word_times:
        return []
    times = analysis.frame_times  # (T_s,)
    scores = []
    for row, span in enumerate(analysis.word_times):
        if span is None or row >= attention.shape[0]:
            continue
        inside = (times >= span[0]) & (times < span[1])  # (T_s,)
        if not inside.any():
            continue
        scores.append((float(attention[row, inside].sum()), float(inside.mean())))
    return scores


def token_score(checkpoint: str, manifest: str, groups=None, limit=0, progress=True) -> dict:
    analyzer = Analyzer(load_model(checkpoint))
    if analyzer.model.config.modalities != "both" or not analyzer.model.config.alignment.token:
        raise ValueError("this checkpoint has no token-level cross-attention to score")
    utterances = [
        u for u in load_manifest(manifest) if u.words and (not groups or u.group in groups)
    ]
    utterances = utterances[:limit] if limit else utterances
    pairs = []
    for utterance in tqdm(utterances, desc="token score", disable=not progress):
        words = [{"word": w, "start": s, "end": e} for w, s, e in utterance.words]
        analysis = analyzer.analyze(load_audio(utterance.audio), text=utterance.text, words=words)
        pairs += word_scores(analysis)
    if not pairs:
        raise ValueError("no word with a known time span was found")
    inside, uniform = np.array(pairs).T
    return {
        "words": len(pairs),
        "utterances": len(utterances),
        "attention_inside": float(inside.mean()),
        "uniform_inside": float(uniform.mean()),
        "ratio": float(inside.mean() / uniform.mean()),
    }


def main(args: argparse.Namespace) -> int:
    groups = [g for g in args.groups.split(",") if g] or None
    result = token_score(args.checkpoint, args.manifest, groups, args.limit, not args.quiet)
    print(
        f"{result['words']} words in {result['utterances']} utterances: "
        f"{100 * result['attention_inside']:.1f} % of each word's attention falls inside its "
        f"spoken span, against {100 * result['uniform_inside']:.1f} % for uniform attention "
        f"(ratio {result['ratio']:.2f})"
    )
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(result, handle, indent=1)
    return 0
