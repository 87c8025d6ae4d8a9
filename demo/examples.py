"""The prepared example clips shipped beside the checkpoint (`examples.jsonl` and its clips)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Example:
    name: str
    audio: str
    text: str
    label: str
    cue: str = ""
    words: list = field(default_factory=list)
    note: str = ""
    licence: str = ""  # set for clips of a corpus whose licence travels with them (RAVDESS)


def load_examples(directory: str | Path) -> list[Example]:
    """Examples listed in `examples.jsonl` beside their clips (missing folder: none)."""
    index = Path(directory) / "examples.jsonl"
    if not index.is_file():
        return []
    examples = []
    for line in index.read_text().splitlines():
        if line.strip():
            row = json.loads(line)
            row["audio"] = str(Path(directory) / row["audio"])
            examples.append(
                Example(**{k: row[k] for k in Example.__dataclass_fields__ if k in row})
            )
    return examples


def find_example(examples: list[Example], audio) -> Example | None:
    """The shipped example `audio` is (matched by file name: Gradio keeps it), or None."""
    if not isinstance(audio, str):
        return None
    name = Path(audio).name
    return next((e for e in examples if Path(e.audio).name == name), None)
