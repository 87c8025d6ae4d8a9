"""GoEmotions → text-only manifest, four classes, official splits kept.

The release (Demszky et al. 2020, ``goemotions/data/`` in google-research) is laid out as::

    ROOT/emotions.txt          one emotion per line; a label id is its line number from 0
    ROOT/ekman_mapping.json    Ekman group → fine emotions, e.g. {"joy": ["joy", "love", ...]}
    ROOT/train.tsv, dev.tsv, test.tsv
                               text <TAB> label ids, comma-separated <TAB> comment id

The four classes come from the mapping file's groups: ``neutral`` stays neutral, the ``joy``
group is happy, ``anger`` is angry and ``sadness`` is sad. With the official mapping that is:

- happy: joy, amusement, approval, excitement, gratitude, love, optimism, relief, pride,
  admiration, desire, caring
- angry: anger, annoyance, disapproval
- sad: sadness, disappointment, embarrassment, grief, remorse

and the ``disgust`` (disgust), ``fear`` (fear, nervousness) and ``surprise`` (surprise,
realization, confusion, curiosity) groups are outside the four classes.

Multi-label rule: a comment is kept only when every one of its labels maps to one of the four
classes and they all map to the same one (joy + love → happy, kept; joy + anger → dropped;
neutral + joy → dropped, since neutral is a class of its own; joy + surprise → dropped). A
comment carrying any label outside the four classes is dropped. No weaker rule is offered: a
text whose annotators disagree is not a clean example of one class.

There is no audio, so the output is not a speech manifest (:mod:`train.manifest` requires an
``audio`` file per line) but a *text manifest*: JSON Lines with ``id``
(``goemotions-<comment id>``), ``text`` (as written, ``[NAME]`` masks included), ``label``,
``split`` (``train``/``dev``/``test``, the official split, never reshuffled), ``speaker``
(``goemotions-<split>``: the release names no authors), ``group`` (the split), ``corpus`` and
``goemotions_labels`` (the fine emotions). Read it back with :func:`load_text_manifest`.

Command line: ``python -m train goemotions --root PATH --out manifest.jsonl``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from mgcma.constants import EMOTIONS

CORPUS = "goemotions"
SPLITS = ("train", "dev", "test")
NEUTRAL = "neutral"
EKMAN_TO_LABEL = {"joy": "happy", "anger": "angry", "sadness": "sad"}  # other groups: left out
TEXT_MANIFEST_KEYS = ("id", "text", "label", "split", "speaker", "group")
MAX_LISTED = 10  # malformed rows printed before "... and N more"

DROPPED_OTHER = "an emotion outside the four classes (disgust, fear or surprise group)"
DROPPED_DISAGREE = "labels of different classes (e.g. joy + anger, neutral + joy)"
DROPPED_MALFORMED = "malformed row"
DROPPED_REPEATED = "comment id seen before"


class GoEmotionsError(ValueError):
    """The folder is not a GoEmotions release, or its files disagree; the message says how."""


# ----------------------------------------------------------------------------- label mapping


def read_emotions(path: Path) -> list[str]:
    """The fine emotion names of ``emotions.txt``; a label id is an index into this list."""
    if not path.is_file():
        raise GoEmotionsError(f"'{path}' not found; the release folder holds emotions.txt")
    emotions = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
    if NEUTRAL not in emotions:
        raise GoEmotionsError(f"'{path}' has no '{NEUTRAL}' line")
    return emotions


def read_class_map(emotions: list[str], mapping_path: Path) -> dict[str, str | None]:
    """Fine emotion → one of the four classes, or None when its Ekman group is not one of them.

    Every emotion of ``emotions.txt`` but ``neutral`` must be in exactly one group of the
    mapping file, and the joy, anger and sadness groups must be there.
    """
    if not mapping_path.is_file():
        raise GoEmotionsError(f"'{mapping_path}' not found; the release holds ekman_mapping.json")
    try:
        groups = json.loads(mapping_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise GoEmotionsError(f"'{mapping_path}' is not valid JSON ({error.msg})") from None
    if not isinstance(groups, dict) or not all(isinstance(m, list) for m in groups.values()):
        raise GoEmotionsError(f"'{mapping_path}' must map each Ekman group to a list of emotions")
    missing_groups = [group for group in EKMAN_TO_LABEL if group not in groups]
    if missing_groups:
        raise GoEmotionsError(f"'{mapping_path}' lacks the group(s) {', '.join(missing_groups)}")
    class_map: dict[str, str | None] = {NEUTRAL: NEUTRAL}
    for group, members in groups.items():
        for emotion in members:
            if emotion not in emotions or emotion in class_map:
                why = "is not in emotions.txt" if emotion not in emotions else "is in two groups"
                raise GoEmotionsError(f"'{mapping_path}': {emotion!r} (group {group}) {why}")
            class_map[emotion] = EKMAN_TO_LABEL.get(group)
    unmapped = [emotion for emotion in emotions if emotion not in class_map]
    if unmapped:
        raise GoEmotionsError(f"'{mapping_path}' puts no group on {', '.join(unmapped)}")
    return class_map


def comment_label(
    fine_labels: list[str], class_map: dict[str, str | None]
) -> tuple[str | None, str]:
    """``(class, "")`` for a kept comment, ``(None, why it is dropped)`` otherwise.

    The multi-label rule of the module docstring: all labels in the four classes, all the same.
    """
    classes = {class_map[emotion] for emotion in fine_labels}
    if None in classes:
        return None, DROPPED_OTHER
    if len(classes) > 1:
        return None, DROPPED_DISAGREE
    return classes.pop(), ""


# ----------------------------------------------------------------------------- reading


@dataclass
class GoEmotionsReport:
    """What :func:`read_goemotions` kept and dropped.

    Attributes
    ----------
    kept : Counter
        ``(split, label)`` → comments written.
    multi_label_kept : int
        Kept comments with several (agreeing) labels.
    dropped : Counter
        ``(split, reason)`` → comments left out.
    malformed : list[str]
        ``"<file> line <n>: <what is wrong>"`` for each row that could not be read.
    """

    kept: Counter = field(default_factory=Counter)
    multi_label_kept: int = 0
    dropped: Counter = field(default_factory=Counter)
    malformed: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(self.kept.values())

    def format(self) -> str:
        """A plain-text summary: a split × label table, then the dropped counts by reason."""
        lines = ["GoEmotions, four classes (multi-label: all labels must agree)"]
        lines.append(f"{'':<8}" + "".join(f"{label:>9}" for label in (*EMOTIONS, "total")))
        for split in SPLITS:
            counts = [self.kept[split, label] for label in EMOTIONS]
            lines.append(f"{split:<8}" + "".join(f"{n:>9,}" for n in (*counts, sum(counts))))
        lines.append(f"kept {self.total:,}, of which {self.multi_label_kept:,} multi-label")
        reasons = Counter()
        for (_, reason), count in self.dropped.items():
            reasons[reason] += count
        for reason, count in reasons.most_common():
            per_split = ", ".join(f"{s} {self.dropped[s, reason]:,}" for s in SPLITS)
            lines.append(f"dropped, {reason}: {count:,} ({per_split})")
        lines += [f"  {problem}" for problem in self.malformed[:MAX_LISTED]]
        if len(self.malformed) > MAX_LISTED:
            lines.append(f"  ... and {len(self.malformed) - MAX_LISTED} more")
        return "\n".join(lines)


def _parse_row(line: str, emotions: list[str]) -> tuple[str, list[str], str]:
    """``(text, fine labels, comment id)`` of one TSV row; ValueError saying what is wrong."""
    fields = line.rstrip("\r\n").split("\t")
    if len(fields) != 3:
        raise ValueError(f"expected 3 tab-separated fields, got {len(fields)}")
    text, label_ids, comment_id = fields
    if not comment_id.strip():
        raise ValueError("empty comment id")
    try:
        indices = [int(part) for part in label_ids.split(",")]
    except ValueError:
        raise ValueError(f"label ids must be integers, got {label_ids!r}") from None
    if any(not 0 <= index < len(emotions) for index in indices):
        raise ValueError(f"label ids {label_ids!r} outside 0..{len(emotions) - 1}")
    return text, [emotions[index] for index in indices], comment_id.strip()


@dataclass
class _Labels:
    """What every split is read with: the label names, their classes, the comment ids seen."""

    emotions: list[str]
    class_map: dict[str, str | None]
    seen: set[str] = field(default_factory=set)


def _read_split(root: Path, split: str, labels: _Labels, report: GoEmotionsReport) -> list[dict]:
    path = root / f"{split}.tsv"
    if not path.is_file():
        raise GoEmotionsError(f"'{path}' not found; the release holds train, dev and test .tsv")
    rows = []
    with open(path, encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                text, fine_labels, comment_id = _parse_row(line, labels.emotions)
            except ValueError as problem:
                report.dropped[split, DROPPED_MALFORMED] += 1
                report.malformed.append(f"{path} line {number}: {problem}")
                continue
            label, reason = comment_label(fine_labels, labels.class_map)
            if label is not None and comment_id in labels.seen:
                label, reason = None, DROPPED_REPEATED
            if label is None:
                report.dropped[split, reason] += 1
                continue
            labels.seen.add(comment_id)
            report.kept[split, label] += 1
            report.multi_label_kept += len(fine_labels) > 1
            rows.append(_row(text, fine_labels, comment_id, label, split))
    return rows


def _row(text: str, fine_labels: list[str], comment_id: str, label: str, split: str) -> dict:
    return {
        "id": f"{CORPUS}-{comment_id}",
        "text": text,
        "label": label,
        "split": split,
        "speaker": f"{CORPUS}-{split}",
        "group": split,
        "corpus": CORPUS,
        "goemotions_labels": fine_labels,
    }


def read_goemotions(root: str | Path) -> tuple[list[dict], GoEmotionsReport]:
    """Read the four-class comments of every official split.

    Parameters
    ----------
    root : the release folder (``emotions.txt``, ``ekman_mapping.json``, ``train.tsv`` ...)

    Returns
    -------
    rows : list[dict]
        Text-manifest rows (see the module docstring), train then dev then test, in file order.
    report : GoEmotionsReport
        Counts per split and label, and what was dropped and why.

    Raises
    ------
    GoEmotionsError
        When a file of the release is missing or the mapping does not cover ``emotions.txt``.
    """
    root = Path(root).expanduser()
    if not root.is_dir():
        raise GoEmotionsError(f"GoEmotions root not found: '{root}'")
    emotions = read_emotions(root / "emotions.txt")
    labels = _Labels(emotions, read_class_map(emotions, root / "ekman_mapping.json"))
    report = GoEmotionsReport()
    rows = [row for split in SPLITS for row in _read_split(root, split, labels, report)]
    return rows, report


# ----------------------------------------------------------------------------- text manifests


def write_text_manifest(rows: list[dict], path: str | os.PathLike) -> Path:
    """Write text-manifest rows as JSON Lines, atomically; returns ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    try:
        with open(partial, "w", encoding="utf-8") as out:
            for row in rows:
                out.write(json.dumps(row, ensure_ascii=False) + "\n")
        os.replace(partial, path)  # readers never see a half-written manifest
    finally:
        partial.unlink(missing_ok=True)
    return path


def _text_line_problem(record: object) -> str | None:
    """What is wrong with one parsed line of a text manifest, or None."""
    if not isinstance(record, dict):
        return f"expected a JSON object, got {type(record).__name__}"
    missing = [key for key in TEXT_MANIFEST_KEYS if key not in record]
    if missing:
        return f"missing key(s) {', '.join(map(repr, missing))}"
    wrong = [key for key in TEXT_MANIFEST_KEYS if not isinstance(record[key], str)]
    if wrong:
        return f"{wrong[0]!r} must be a string, got {record[wrong[0]]!r}"
    if not record["id"].strip():
        return "'id' is empty"
    if record["label"] not in EMOTIONS:
        return f"label {record['label']!r} is not one of {', '.join(EMOTIONS)}"
    if record["split"] not in SPLITS:
        return f"split {record['split']!r} is not one of {', '.join(SPLITS)}"
    return None


def load_text_manifest(path: str | os.PathLike) -> list[dict]:
    """Read and validate a text manifest written by ``python -m train goemotions``.

    Returns
    -------
    list[dict]
        One dict per line, in file order; blank lines are skipped.

    Raises
    ------
    ValueError
        ``"<file> line <n>: <problem>"`` for the first bad line (bad JSON, a missing or
        non-string key, an unknown label or split, a repeated id); or when the file is missing
        or empty.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"text manifest not found: '{path}'")
    records: list[dict] = []
    first_line: dict[str, int] = {}
    with open(path, encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                raise ValueError(f"{path} line {number}: not valid JSON ({error.msg})") from None
            problem = _text_line_problem(record)
            if problem is None and record["id"] in first_line:
                problem = f"id {record['id']!r} repeats line {first_line[record['id']]}"
            if problem:
                raise ValueError(f"{path} line {number}: {problem}")
            first_line[record["id"]] = number
            records.append(record)
    if not records:
        raise ValueError(f"{path}: no lines (the file is empty)")
    return records


# ----------------------------------------------------------------------------- command line


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``python -m train goemotions``."""
    parser.add_argument(
        "--root", required=True, type=Path, help="GoEmotions data folder (holds train.tsv ...)"
    )
    parser.add_argument(
        "--out", required=True, type=Path, help="text manifest to write, e.g. data/goemotions.jsonl"
    )


def main(args: argparse.Namespace) -> int:
    """Write the text manifest and print the summary; 2 when the root is not GoEmotions."""
    try:
        rows, report = read_goemotions(args.root)
    except GoEmotionsError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(report.format())
    if not rows:
        print("error: no comment of the four classes was found; nothing written", file=sys.stderr)
        return 1
    write_text_manifest(rows, args.out)
    print(f"wrote {len(rows):,} comments to {args.out} (text only, no audio)")
    return 0


__all__ = [
    "GoEmotionsError",
    "GoEmotionsReport",
    "add_arguments",
    "comment_label",
    "load_text_manifest",
    "main",
    "read_goemotions",
    "write_text_manifest",
]
