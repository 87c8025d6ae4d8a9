"""How much the alignment modules and the analysis cost next to the encoders.

    python benchmarks/analysis.py [--checkpoint assets/checkpoints/whisper_minilm] [--runs 10]
                                  [--compact-runs 30] [--threads N] [--clip FILE]

Prints, from one run on a 5-s clip:
1. the shipped default (a checkpoint of the whisper_minilm preset, real weights): the bare
   frozen encoders (Whisper tiny.en's audio encoder on the clip's own length + MiniLM) against
   the full `Analyzer.analyze()`, medians measured interleaved, and their ratio;
2. paper-size architecture (wav2vec2-base + BERT-base shapes, random weights: speed does not
   depend on them): the bare encoder forward passes, a plain late-fusion baseline of the same
   encoders (mean-pool, concatenate, linear), and the full `analyze()`;
3. the compact preset's `analyze()` median;
4. a k-nearest search and a map placement in a reference bank of 50,000 random entries;
and, with `--clip`, Whisper transcribing that file. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

from benchmarks.common import command_line, machine, random_model, timed
from mgcma.analysis import Analyzer
from mgcma.batch import pad_waveforms
from mgcma.checkpoint import load_model
from mgcma.constants import SAMPLE_RATE
from mgcma.model import MGCMA
from mgcma.tokenizer import train_tokenizer

TRANSCRIPT = "I can't believe you would say something like that to me after everything"
CLIP_SECONDS = 5.0


class LateFusion(nn.Module):
    """The baseline: both encoders, mean-pooled, concatenated, one linear layer."""

    def __init__(self, model: MGCMA) -> None:
        super().__init__()
        self.speech = model.speech_encoder.backbone
        self.text = model.text_encoder.backbone
        width = self.speech.config.hidden_size + self.text.config.hidden_size
        self.head = nn.Linear(width, len(model.emotions))

    def forward(self, speech, speech_mask, input_ids, text_mask) -> torch.Tensor:
        speech_hidden = self.speech(input_values=speech, attention_mask=speech_mask.long())
        speech_hidden = speech_hidden.last_hidden_state  # (B, T_s, D_s)
        text_hidden = self.text(input_ids=input_ids, attention_mask=text_mask.long())
        text_hidden = text_hidden.last_hidden_state  # (B, T_t, D_t)
        pooled = torch.cat([speech_hidden.mean(1), text_hidden.mean(1)], dim=-1)
        return self.head(pooled)  # (B, C)


def measure_paper(tokenizer, waveform: np.ndarray, runs: int) -> dict[str, float]:
    torch.manual_seed(0)
    model = random_model("paper", tokenizer).eval()
    baseline = LateFusion(model).eval()
    analyzer = Analyzer(model, device="cpu")
    speech, speech_mask = pad_waveforms([waveform])
    text = model.tokenize([TRANSCRIPT])

    @torch.inference_mode()
    def encoders():
        model.speech_encoder.backbone(input_values=speech, attention_mask=speech_mask.long())
        model.text_encoder.backbone(
            input_ids=text["input_ids"], attention_mask=text["text_mask"].long()
        )

    @torch.inference_mode()
    def late_fusion():
        baseline(speech, speech_mask, **text)

    def analyze():
        analyzer.analyze(waveform, SAMPLE_RATE, TRANSCRIPT)

    for function in (encoders, late_fusion, analyze):
        function()  # warm-up
    times: dict[str, list[float]] = {"encoders": [], "late_fusion": [], "analyze": []}
    for _ in range(runs):  # interleaved, so drift on a shared machine hits all three alike
        times["encoders"] += timed(encoders, 1)
        times["late_fusion"] += timed(late_fusion, 1)
        times["analyze"] += timed(analyze, 1)
    return {name: statistics.median(values) for name, values in times.items()}


def measure_default(checkpoint: str, waveform: np.ndarray, runs: int) -> dict:
    """analyze() of a shipped-default checkpoint against its bare frozen encoders: seconds per
    run of each, and the Whisper file the model hears with (under "whisper")."""
    model = load_model(checkpoint, device="cpu")
    analyzer = Analyzer(model, device="cpu")
    speech, speech_mask = pad_waveforms([waveform])
    text = model.tokenize([TRANSCRIPT])

    def encoders():
        model.speech_encoder.backbone_states(speech, speech_mask)
        model.text_encoder.backbone_states(text["input_ids"], text["text_mask"])

    def analyze():
        analyzer.analyze(waveform, SAMPLE_RATE, TRANSCRIPT)

    with torch.inference_mode():
        encoders()
    analyze()
    times: dict[str, list[float]] = {"encoders": [], "analyze": []}
    for _ in range(runs):  # interleaved
        with torch.inference_mode():
            times["encoders"] += timed(encoders, 1)
        times["analyze"] += timed(analyze, 1)
    return {**times, "whisper": model.config.speech.backbone}


def measure_transcription(whisper_path: str, clip: str, runs: int) -> list[float]:
    """Seconds Whisper takes to transcribe `clip` (word timestamps on), after one warm-up."""
    from mgcma.asr import Transcriber
    from mgcma.audio import load_audio

    samples = load_audio(clip).samples
    transcriber = Transcriber(whisper_path, device="cpu").load()
    transcriber.transcribe(samples, language="en")
    return timed(lambda: transcriber.transcribe(samples, language="en"), runs)


def measure_compact(tokenizer, waveform: np.ndarray, runs: int) -> list[float]:
    torch.manual_seed(0)
    model = random_model("compact", tokenizer).eval()
    analyzer = Analyzer(model, device="cpu")
    analyzer.analyze(waveform, SAMPLE_RATE, TRANSCRIPT)
    return timed(lambda: analyzer.analyze(waveform, SAMPLE_RATE, TRANSCRIPT), runs)


def measure_bank(entries: int, runs: int = 50) -> dict[str, float]:
    """Median ms of a k-nearest search and of a map placement in a bank of `entries`."""
    from mgcma.bank import ReferenceBank

    rng = np.random.default_rng(0)
    widths = {
        "speech": 64,
        "text": 64,
        "fused": 128,
        "speech_mu": 32,
        "text_mu": 32,
        "speech_sigma": 32,
        "text_sigma": 32,
    }
    arrays = {
        name: rng.standard_normal((entries, width)).astype(np.float32)
        for name, width in widths.items()
    }
    arrays.update(
        {f"{kind}_xy": rng.standard_normal((entries, 2)) for kind in ("speech", "text", "fused")}
    )
    arrays.update(pca_axes=np.eye(2, 32), pca_center=np.zeros(32))
    meta = {key: [str(i) for i in range(entries)] for key in ("ids", "texts", "labels")}
    bank = ReferenceBank(arrays, meta)
    query = rng.standard_normal(128).astype(np.float32)
    nearest = timed(lambda: bank.nearest(query, "fused", 8), runs)
    place = timed(lambda: bank.place(query[:64], "speech"), runs)
    return {"nearest": statistics.median(nearest), "place": statistics.median(place)}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=10, help="paper-size repetitions")
    parser.add_argument("--compact-runs", type=int, default=30, help="compact repetitions (≥ 20)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument(
        "--checkpoint",
        default="assets/checkpoints/whisper_minilm",
        help="a whisper_minilm checkpoint ('' skips part 1)",
    )
    parser.add_argument("--clip", default="", help="also time Whisper transcribing this file")
    parser.add_argument(
        "--bank-entries", type=int, default=50_000, help="reference-bank size (0 skips it)"
    )
    return parser.parse_args(argv)


def report_default(args, waveform: np.ndarray) -> None:
    runs = max(args.compact_runs, 20)
    default = measure_default(args.checkpoint, waveform, runs)
    encoders, analyze = (statistics.median(default[k]) for k in ("encoders", "analyze"))
    print(f"\nshipped default ({args.checkpoint}), median of {runs}:")
    print(f"  frozen encoders alone    {encoders * 1000:8.1f} ms  (the floor)")
    print(
        f"  full MGCMA analyze()     {analyze * 1000:8.1f} ms, p90 "
        f"{np.percentile(default['analyze'], 90) * 1000:.1f} ms  (target median ≤ 100 ms)"
    )
    print(f"  analyze / encoders      {analyze / encoders:8.3f} ×  (goal ≤ 1.15)")
    if args.clip:
        seconds = measure_transcription(default["whisper"], args.clip, 7)
        print(
            f"  transcription of {args.clip} with {default['whisper']}, 7 runs: median "
            f"{statistics.median(seconds):.2f} s  (target ≤ 1 s for a 4-s clip)"
        )


def report_paper(args, tokenizer, waveform: np.ndarray) -> None:
    paper = measure_paper(tokenizer, waveform, args.runs)
    print(f"\npaper-size architecture (wav2vec2-base + BERT-base shapes), median of {args.runs}:")
    for name, label in (
        ("encoders", "bare encoder forward"),
        ("late_fusion", "late-fusion baseline"),
        ("analyze", "full MGCMA analyze()"),
    ):
        print(f"  {label:<24} {paper[name] * 1000:8.1f} ms")
    print(
        f"  analyze / encoders      {paper['analyze'] / paper['encoders']:8.3f} ×  (target ≤ 1.15)"
    )
    print(
        f"  analyze / late fusion   {paper['analyze'] / paper['late_fusion']:8.3f} ×  "
        "(target ≤ 1.10)"
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    waveform = (rng.standard_normal(int(CLIP_SECONDS * SAMPLE_RATE)) * 0.1).astype(np.float32)
    tokenizer = train_tokenizer([TRANSCRIPT.lower()] * 4, vocab_size=200)
    print(f"command: {command_line(__file__, argv)}")
    print(
        f"machine: {machine()}; torch threads {torch.get_num_threads()}, torch "
        f"{torch.__version__}; clip {CLIP_SECONDS:.0f} s, transcript {len(TRANSCRIPT.split())} "
        "words"
    )
    if args.checkpoint:
        report_default(args, waveform)
    report_paper(args, tokenizer, waveform)
    compact = measure_compact(tokenizer, waveform, max(args.compact_runs, 20))
    print(
        f"\ncompact preset analyze(), {len(compact)} runs: median "
        f"{statistics.median(compact) * 1000:.1f} ms, p90 "
        f"{np.percentile(compact, 90) * 1000:.1f} ms  (target median ≤ 100 ms)"
    )
    if args.bank_entries:
        bank = measure_bank(args.bank_entries)
        print(
            f"\nreference bank of {args.bank_entries:,} entries, median of 50: 8 nearest "
            f"{bank['nearest'] * 1000:.1f} ms, map placement {bank['place'] * 1000:.1f} ms  "
            "(target ≤ 20 ms)"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
