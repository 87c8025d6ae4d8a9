"""Every setting of the app, in one place: its default and the environment variable that sets it.

A Hugging Face Space sets the environment (GRADIO_SERVER_NAME and GRADIO_SERVER_PORT among
others); `python demo/app.py --checkpoint … --whisper … --host … --port … --share` overrides it.
Nothing else in the app reads the environment.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ASSETS = ROOT / "assets"
SHIPPED_WHISPER = ASSETS / "backbones" / "whisper-tiny.en.pt"  # also the model's speech encoder

VARIABLES = {  # setting → the environment variable that sets it
    "checkpoint": "MGCMA_CHECKPOINT",
    "bank": "MGCMA_BANK",
    "examples": "MGCMA_EXAMPLES",
    "whisper": "MGCMA_WHISPER",
    "max_batch": "MGCMA_MAX_BATCH",
    "queue_size": "MGCMA_QUEUE_SIZE",
    "concurrency": "MGCMA_CONCURRENCY",
    "host": "GRADIO_SERVER_NAME",
    "port": "GRADIO_SERVER_PORT",
    "share": "MGCMA_SHARE",
}


@dataclass(frozen=True)
class Settings:
    checkpoint: str = str(ASSETS / "checkpoints" / "whisper_minilm")  # a directory or a Hub id
    bank: str = str(ASSETS / "bank")
    examples: str = str(ASSETS / "examples")
    whisper: str = str(SHIPPED_WHISPER)  # a Whisper name (tiny, base, small) or a .pt file
    max_batch: int = 16  # requests sharing one forward pass (demo/batcher.py)
    # waiting requests beyond queue_size are refused at once with HTTP 503 (Gradio's own text)
    queue_size: int = 32
    concurrency: int = 2  # analyses at once: one per core
    host: str = "127.0.0.1"
    port: int = 7860
    share: bool = False  # a public gradio.live link ("1" in the environment)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **given) -> Settings:
        """The defaults, then the environment, then `given` values that are not None."""
        environ = os.environ if environ is None else environ
        settings = cls()
        found = {}
        for name, variable in VARIABLES.items():
            if variable in environ:
                found[name] = _parse(environ[variable], getattr(settings, name), variable)
        return settings.override(**found).override(**given)

    def override(self, **given) -> Settings:
        """A copy with the `given` values that are not None."""
        return dataclasses.replace(self, **{k: v for k, v in given.items() if v is not None})


def _parse(raw: str, default, variable: str):
    """An environment value as the type of the setting's default."""
    if isinstance(default, bool):
        return raw == "1"
    if isinstance(default, int):
        try:
            return int(raw)
        except ValueError:
            raise SystemExit(f"{variable}={raw!r}: expected a whole number") from None
    return raw
