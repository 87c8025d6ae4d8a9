"""`python -m train heldout --manifest M --groups G --out assets/heldout`: ship a fold's test clips.

Copies every utterance of the given groups (by default `ravdess-g1`: RAVDESS actors 01, 02, 11
and 12, whom the shipped checkpoints — fold g1's models — never heard) with a manifest in this
project's format. The tests score every shipped checkpoint on them through the app's own code
and compare with the held-out figures in the model card: a checkpoint that was exported, loaded
or run differently from how it was measured fails there, on 112 real clips rather than four.
Each line keeps its corpus's licence (RAVDESS: CC BY-NC-SA 4.0).
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

from train.manifest import ManifestError, load_manifest


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--manifest", required=True, help="e.g. data/ravdess/manifest.jsonl")
    parser.add_argument("--groups", default="ravdess-g1", help="comma-separated groups to copy")
    parser.add_argument("--out", required=True, help="output folder, e.g. assets/heldout")


def main(args: argparse.Namespace) -> int:
    groups = [g for g in args.groups.split(",") if g]
    rows = write_heldout(Path(args.manifest), Path(args.out), groups)
    print(f"wrote {len(rows)} clips of {', '.join(groups)} to {args.out}")
    return 0


def write_heldout(manifest: Path, out: Path, groups: list[str]) -> list[dict]:
    chosen = [u for u in load_manifest(manifest) if u.group in groups]
    if not chosen:
        raise ManifestError(f"{manifest}: no utterance of groups {groups}")
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for utterance in chosen:
        audio = f"{utterance.id}{utterance.audio.suffix}"
        shutil.copyfile(utterance.audio, out / audio)
        rows.append(
            {
                "id": utterance.id,
                "audio": audio,
                "text": utterance.text,
                "label": utterance.label,
                "speaker": utterance.speaker,
                "group": utterance.group,
                **utterance.extra,
            }
        )
    (out / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return rows
