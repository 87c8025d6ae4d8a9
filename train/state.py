"""Resumable training state, written atomically.

`RUN/last/` holds `model/` (an ordinary MGCMA checkpoint), `optimizer.pt` (optimizer and
scheduler state plus the Python, NumPy and torch RNG states), and `progress.json` (epoch, step,
best metric, history). The directory is staged next to its final place and renamed, so a run
killed at any moment leaves either the previous state or the new one, never a half-written one.

`optimizer.pt` is read with `accelerate.utils.load`: `torch.load(weights_only=True)` with NumPy
arrays allowed (NumPy's RNG state is one), so nothing but tensors, numbers and arrays is
unpickled. Accelerate's own `save_state`/`load_state` are not used: they would copy the frozen
backbones into every state, and they skip RNG states they cannot restore without saying so.
"""

from __future__ import annotations

import json
import pickle
import random
import shutil
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from accelerate.utils import load

from mgcma.checkpoint import CheckpointError, load_model, replace_directory, save_model
from mgcma.model import MGCMA

# what a truncated, tampered or foreign state raises while it is read (UnpicklingError: a global
# that weights_only=True does not allow)
DAMAGED = (OSError, RuntimeError, ValueError, TypeError, KeyError, pickle.UnpicklingError)


@dataclass
class Progress:
    epoch: int = 0  # the epoch in progress (0-based)
    batch_in_epoch: int = 0  # batches of that epoch already trained
    step: int = 0  # optimiser steps so far
    best_metric: float = -1.0
    best_epoch: int = -1
    history: list = field(default_factory=list)  # one dict per finished epoch


def save_state(
    directory: Path, model: MGCMA, optimizer, scheduler, progress: Progress, average=None
) -> None:
    """Write model, optimiser, scheduler, RNG states and progress as one atomic directory
    (and the weight average, `train.average.WeightAverage`, when the run keeps one)."""
    directory.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{directory.name}.tmp-", dir=directory.parent))
    try:
        save_model(model, staging / "model")
        torch.save(
            {
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "torch_rng": torch.get_rng_state(),
                "numpy_rng": np.random.get_state(),
                "python_rng": random.getstate(),
                **({"average": average.state_dict()} if average is not None else {}),
            },
            staging / "optimizer.pt",
        )
        (staging / "progress.json").write_text(json.dumps(asdict(progress), indent=1))
        replace_directory(staging, directory)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def load_state(directory: Path, device: torch.device) -> tuple[MGCMA, dict, Progress]:
    """Read a state written by `save_state`; refuse a damaged one with CheckpointError."""
    if not (directory / "progress.json").is_file():
        raise CheckpointError(f"{directory} holds no training state to resume from")
    model = load_model(directory / "model", device=device)
    try:
        # our own file, and weights_only=True refuses anything but tensors, arrays and numbers
        trainer = load(directory / "optimizer.pt", map_location="cpu", weights_only=True)
        if not isinstance(trainer, dict) or not isinstance(trainer.get("numpy_rng"), tuple):
            # an earlier trainer packed the RNG states differently: refused, not resumed inexactly
            raise ValueError("optimizer.pt is not in this trainer's layout; start the run again")
        progress = Progress(**json.loads((directory / "progress.json").read_text()))
    except DAMAGED as error:
        raise CheckpointError(f"{directory}: the training state is damaged: {error}") from error
    return model, trainer, progress


def restore_rng(trainer: dict) -> None:
    torch.set_rng_state(trainer["torch_rng"])
    np.random.set_state(trainer["numpy_rng"])
    random.setstate(trainer["python_rng"])
