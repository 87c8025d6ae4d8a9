"""`python -m train export --checkpoint RUN/best --out DIR`: write a checkpoint for shipping.

Loads the run's checkpoint (every file and tensor checked) and writes it again with its
floating-point weights stored in float16 (`--dtype float32` keeps them), atomically; the app
computes in float32 either way. Prints the size and how far the stored weights moved.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from mgcma.checkpoint import load_model, save_model

DTYPES = {"float16": torch.float16, "bfloat16": torch.bfloat16, "float32": torch.float32}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", required=True, help="a run's best/ (or any checkpoint)")
    parser.add_argument("--out", required=True, help="where to write, e.g. assets/checkpoints/X")
    parser.add_argument("--dtype", default="float16", choices=sorted(DTYPES))


def main(args: argparse.Namespace) -> int:
    model = load_model(args.checkpoint)
    out = save_model(model, args.out, dtype=DTYPES[args.dtype])
    shipped = load_model(out)
    moved = max(
        (a.float() - b.float()).abs().max().item()
        for a, b in zip(model.state_dict().values(), shipped.state_dict().values(), strict=True)
        if a.is_floating_point()
    )
    size = sum(f.stat().st_size for f in Path(out).iterdir() if f.is_file())
    print(f"wrote {out} ({size / 2**20:.1f} MiB, {args.dtype}); largest weight change {moved:.2e}")
    return 0
