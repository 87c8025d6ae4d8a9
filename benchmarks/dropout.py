"""What dropout costs a training step of the shipped default on the CPU; what mgcma.dropout saves.

    python benchmarks/dropout.py [--checkpoint assets/checkpoints/whisper_minilm] [--frames 288]
                                 [--tokens 24] [--batch-size 32] [--steps 8] [--rounds 4]

The checkpoint's MGCMA layers train on batches shaped like the default's cached ones (backbone
states of `--frames` Whisper frames at 50 Hz and `--tokens` MiniLM tokens, plus as many text-only
rows): forward, MGCMA losses and backward, three copies of the same model run in turn, round
after round: every dropout as torch's ``nn.Dropout``, as :class:`mgcma.dropout.Dropout` (the
model's own), and none at all (the floor). Prints milliseconds per step and the ratios; asserts
nothing.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import time
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

from benchmarks.common import DEFAULT_CHECKPOINT, command_line, machine
from mgcma.checkpoint import load_model
from mgcma.dropout import Dropout
from mgcma.losses import MGCMALoss


def with_torch_dropout(module: nn.Module) -> nn.Module:
    """`module` with every mgcma Dropout turned back into torch's own (same p)."""
    for name, child in list(module.named_children()):
        if isinstance(child, Dropout):
            setattr(module, name, nn.Dropout(child.p))
        else:
            with_torch_dropout(child)
    return module


def without_dropout(module: nn.Module, attention_only: bool = False) -> nn.Module:
    """`module` without dropout (or without it on attention weights only)."""
    for child in module.modules():
        if isinstance(child, nn.Dropout) and not attention_only:
            child.p = 0.0
        if isinstance(child, nn.MultiheadAttention):
            child.dropout = 0.0
    return module


def batches(model, args) -> list[dict]:
    generator = torch.Generator().manual_seed(0)
    speech_dim = model.speech_encoder.projection[0].in_features  # the backbone's width
    text_dim = model.text_encoder.projection[0].in_features
    made = []
    for _ in range(args.steps):
        b, t_s, t_t = args.batch_size, args.frames, args.tokens
        made.append(
            {
                "speech_features": torch.randn(b, t_s, speech_dim, generator=generator),
                "speech_feature_mask": torch.ones(b, t_s, dtype=torch.bool),
                "text_features": torch.randn(b, t_t, text_dim, generator=generator),
                "text_mask": torch.ones(b, t_t, dtype=torch.bool),
                "text_only": {
                    "text_features": torch.randn(b, t_t, text_dim, generator=generator),
                    "text_mask": torch.ones(b, t_t, dtype=torch.bool),
                },
                "labels": torch.randint(0, 4, (b,), generator=generator),
            }
        )
    return made


def step_ms(model, criterion, data: list[dict]) -> float:
    started = time.perf_counter()
    for batch in data:
        inputs = {k: v for k, v in batch.items() if k != "labels"}
        output = model(**inputs, return_attention=criterion.needs_attention)
        terms = criterion(output, batch["labels"], None, batch["labels"])
        terms["total"].backward()
        model.zero_grad(set_to_none=True)
    return (time.perf_counter() - started) / len(data) * 1000


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", default=str(DEFAULT_CHECKPOINT))
    parser.add_argument("--frames", type=int, default=288, help="Whisper frames (50 Hz)")
    parser.add_argument("--tokens", type=int, default=24)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--steps", type=int, default=8, help="steps per model per round")
    parser.add_argument("--rounds", type=int, default=4)
    args = parser.parse_args(argv)

    model = load_model(args.checkpoint).train()
    model.config.loss.token_guidance_weight = 0.0  # random batches know no word times
    criterion = MGCMALoss(model.config)
    models = {
        "torch nn.Dropout": with_torch_dropout(copy.deepcopy(model)),
        "mgcma.dropout": model,
        "no attention dropout": without_dropout(copy.deepcopy(model), attention_only=True),
        "no dropout": without_dropout(copy.deepcopy(model)),
    }
    data = batches(model, args)
    for candidate in models.values():
        step_ms(candidate, criterion, data[:2])  # warm-up
    times: dict[str, list[float]] = {name: [] for name in models}
    for _ in range(args.rounds):
        for name, candidate in models.items():
            times[name].append(step_ms(candidate, criterion, data))
    print(command_line(__file__, argv))
    print(f"{machine()}, torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(
        f"batch {args.batch_size}: {args.frames} frames, {args.tokens} tokens, "
        f"{args.batch_size} text-only rows; forward + losses + backward, median of {args.rounds}"
    )
    medians = {name: statistics.median(values) for name, values in times.items()}
    for name, value in medians.items():
        print(f"  {name:18s} {value:7.1f} ms/step   ({', '.join(f'{v:.0f}' for v in times[name])})")
    torch_ms, ours, _, floor = medians.values()
    print(
        f"torch / mgcma.dropout: {torch_ms / ours:.2f}x; dropout's share of a step: "
        f"torch {(torch_ms - floor) / torch_ms:.0%}, mgcma.dropout {(ours - floor) / ours:.0%}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
