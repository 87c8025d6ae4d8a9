"""Resumable training state, written atomically.

`RUN/last/` holds `model/` (an ordinary MGCMA checkpoint), `optimizer.pt` (optimizer and
scheduler state plus RNG states: tensors and numbers only, read back with
`torch.load(weights_only=True)`), and `progress.json` (epoch, step, best metric, history). The
directory is staged next to its final place and renamed, so a run killed at any moment leaves
either the previous state or the new one, never a half-written one.
"""

from __future__ import annotations

import json
import random
import shutil
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from mgcma.checkpoint import CheckpointError, load_model, replace_directory, save_model
from mgcma.model import MGCMA


@dataclass
class Progress:
    epoch: int = 0  # the epoch in progress (0-based)
    batch_in_epoch: int = 0  # batches of that epoch already trained
    step: int = 0  # optimiser steps so far
    best_metric: float = -1.0
    best_epoch: int = -1
    history: list = field(default_factory=list)  # one dict per finished epoch


def save_state(directory: Path, model: MGCMA, optimizer, scheduler, progress: Progress) -> None:
    """Write model, optimiser, scheduler, RNG states and progress as one atomic directory."""
    directory.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{directory.name}.tmp-", dir=directory.parent))
    try:
        save_model(model, staging / "model")
        torch.save(
            {
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "torch_rng": torch.get_rng_state(),
                "numpy_rng": _numpy_state(),
                "python_rng": _python_state(),
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
        # our own file, and weights_only=True refuses anything but tensors and plain values
        trainer = torch.load(directory / "optimizer.pt", map_location="cpu", weights_only=True)
        progress = Progress(**json.loads((directory / "progress.json").read_text()))
    except (OSError, RuntimeError, ValueError, TypeError, KeyError) as error:
        raise CheckpointError(f"{directory}: the training state is damaged: {error}") from error
    return model, trainer, progress


def restore_rng(trainer: dict) -> None:
    torch.set_rng_state(trainer["torch_rng"])
    np.random.set_state(_numpy_unpack(trainer["numpy_rng"]))
    random.setstate(_python_unpack(trainer["python_rng"]))


def _numpy_state() -> dict:
    name, keys, position, has_gauss, cached = np.random.get_state()
    return {
        "keys": torch.from_numpy(keys.astype(np.int64)),
        "position": int(position),
        "has_gauss": int(has_gauss),
        "cached": float(cached),
        "name": name,
    }


def _numpy_unpack(state: dict) -> tuple:
    keys = state["keys"].numpy().astype(np.uint32)
    return (state["name"], keys, state["position"], state["has_gauss"], state["cached"])


def _python_state() -> dict:
    version, internal, gauss = random.getstate()
    return {
        "version": version,
        "internal": torch.tensor(internal, dtype=torch.int64),
        "gauss": gauss,
    }


def _python_unpack(state: dict) -> tuple:
    return (state["version"], tuple(int(v) for v in state["internal"].tolist()), state["gauss"])
