"""The app's settings: one place reads the environment, the command line overrides it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from demo.settings import VARIABLES, Settings

DEMO = Path(__file__).resolve().parents[1] / "demo"
TOOLS = ("screenshots.py",)  # a script with its own flags (the benchmarks live in benchmarks/)


def test_defaults_then_environment_then_given_values():
    default = Settings()
    assert Settings.from_env({}) == default
    environment = {
        "MGCMA_CHECKPOINT": "/models/mine",
        "MGCMA_MAX_BATCH": "4",
        "MGCMA_QUEUE_SIZE": "1",
        "MGCMA_CONCURRENCY": "3",
        "GRADIO_SERVER_NAME": "0.0.0.0",
        "GRADIO_SERVER_PORT": "8080",
        "MGCMA_SHARE": "1",
    }
    settings = Settings.from_env(environment, whisper="base", checkpoint=None)
    assert (settings.checkpoint, settings.whisper, settings.bank) == (
        "/models/mine",  # None given: the environment's value stays
        "base",
        default.bank,
    )
    assert (settings.max_batch, settings.queue_size, settings.concurrency) == (4, 1, 3)
    assert (settings.host, settings.port, settings.share) == ("0.0.0.0", 8080, True)
    assert Settings.from_env({"MGCMA_SHARE": "0"}).share is False
    with pytest.raises(SystemExit, match="MGCMA_MAX_BATCH='many': expected a whole number"):
        Settings.from_env({"MGCMA_MAX_BATCH": "many"})
    assert set(VARIABLES) == {f for f in Settings.__dataclass_fields__}


def test_only_the_settings_module_reads_the_environment():
    readers = re.compile(r"os\.environ\.get|os\.environ\[|getenv")
    for path in DEMO.rglob("*.py"):
        if path.name not in TOOLS and path.name != "settings.py":
            assert not readers.search(path.read_text()), f"{path.name} reads the environment"
