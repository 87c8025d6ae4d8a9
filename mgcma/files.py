"""File modes for what the library writes (checkpoints, banks): no torch, no model."""

from __future__ import annotations

import os
from pathlib import Path


def as_umask_allows(path: Path) -> None:
    """Give `path` (and what a directory holds) the modes a plain mkdir or open would: the
    staging directory of `tempfile.mkdtemp` is 0700, and safetensors writes its files 0600, so
    an app run by another user could not read a checkpoint written for it."""
    umask = os.umask(0)
    os.umask(umask)
    for item in [path, *path.rglob("*")] if path.is_dir() else [path]:
        item.chmod((0o777 if item.is_dir() else 0o666) & ~umask)
