"""Training throughput and where a step's time goes.

    python benchmarks/training.py [--presets compact,paper] [--batch-size 8] [--seconds 3]
                                  [--steps 5] [--device auto] [--mixed-precision auto]

For the compact and the paper-size presets (random weights; speed does not depend on them) on
synthetic batches: utterances per second of a full training step (forward, MGCMA losses,
backward, AdamW), and the same step for the bare encoders alone (mean-pool + linear head), run
interleaved; the encoders' share of step time is their ratio, the rest is the alignment modules,
heads and losses. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

from benchmarks.common import command_line, random_model
from mgcma.losses import MGCMALoss
from mgcma.model import MGCMA
from mgcma.tokenizer import train_tokenizer
from train.data import model_inputs

SENTENCE = "i can not believe you would say something like that to me"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", default="compact,paper", help="comma-separated")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=3.0, help="clip length")
    parser.add_argument("--steps", type=int, default=5, help="timed steps per measurement")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda")
    parser.add_argument("--mixed-precision", default="auto", help="auto, no, bf16 or fp16")
    return parser.parse_args(argv)


class EncodersOnly(nn.Module):
    """The same encoders with the smallest possible head: the baseline of the share."""

    def __init__(self, model: MGCMA) -> None:
        super().__init__()
        self.speech, self.text = model.speech_encoder, model.text_encoder
        self.head = nn.Linear(2 * model.config.alignment.dim, len(model.emotions))

    def forward(self, speech, speech_mask, input_ids, text_mask):
        frames, frame_mask = self.speech(speech, speech_mask)  # (B, T_s, d)
        tokens = self.text(input_ids, text_mask)  # (B, T_t, d)
        pooled = torch.cat([_mean(frames, frame_mask), _mean(tokens, text_mask)], dim=-1)
        return self.head(pooled)  # (B, C)


def _mean(states, mask):
    weights = mask.unsqueeze(-1).to(states.dtype)
    return (states * weights).sum(1) / weights.sum(1).clamp_min(1)


def measure(preset: str, args, device: torch.device, dtype) -> dict:
    torch.manual_seed(0)
    tokenizer = train_tokenizer([SENTENCE] * 4, vocab_size=200)
    model = random_model(preset, tokenizer).to(device).train()
    baseline = EncodersOnly(model).to(device).train()
    criterion = MGCMALoss(model.config)
    samples = int(args.seconds * 16000)
    batch = {
        "speech": torch.randn(args.batch_size, samples) * 0.1,
        "speech_mask": torch.ones(args.batch_size, samples, dtype=torch.bool),
        **model.tokenize([SENTENCE] * args.batch_size),
    }
    inputs = model_inputs(batch, device)
    # the baseline reads audio and token ids; the cached-feature inputs are None here
    raw = {k: inputs[k] for k in ("speech", "speech_mask", "input_ids", "text_mask")}
    labels = torch.arange(args.batch_size, device=device) % 4
    full_optimizer = torch.optim.AdamW(model.parameters(), 1e-4)
    base_optimizer = torch.optim.AdamW(baseline.parameters(), 1e-4)

    def full_step():
        with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
            loss = criterion(model(**inputs), labels)["total"]
        loss.backward()
        full_optimizer.step()
        full_optimizer.zero_grad()

    def encoder_step():
        with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
            loss = nn.functional.cross_entropy(baseline(**raw), labels)
        loss.backward()
        base_optimizer.step()
        base_optimizer.zero_grad()

    times = {"full": [], "encoders": []}
    for step in range(args.steps + 1):  # the first round warms up
        for name, function in (("full", full_step), ("encoders", encoder_step)):
            if device.type == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
            function()
            if device.type == "cuda":
                torch.cuda.synchronize()
            if step:
                times[name].append(time.perf_counter() - start)
    full, encoders = statistics.median(times["full"]), statistics.median(times["encoders"])
    return {"full": full, "encoders": encoders, "throughput": args.batch_size / full}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    device = torch.device(
        ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
    )
    precision = args.mixed_precision
    if precision == "auto":
        precision = "bf16" if device.type == "cuda" else "no"
    dtype = {"no": None, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]
    name = (
        torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else (f"CPU, {torch.get_num_threads()} threads")
    )
    print(f"command: {command_line(__file__, argv)}")
    print(
        f"device: {name}; mixed precision: {precision}; batch {args.batch_size} × "
        f"{args.seconds:.1f} s clips; median of {args.steps} steps after one warm-up"
    )
    print(f"{'preset':<8} {'utt/s':>8} {'step ms':>9} {'encoders ms':>12} {'encoder share':>14}")
    for preset in [p for p in args.presets.split(",") if p]:
        result = measure(preset, args, device, dtype)
        share = min(result["encoders"] / result["full"], 1.0)
        print(
            f"{preset:<8} {result['throughput']:8.1f} {result['full'] * 1000:9.0f} "
            f"{result['encoders'] * 1000:12.0f} {100 * share:13.0f} %"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
