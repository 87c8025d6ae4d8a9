"""Manifests: JSON Lines files that describe a corpus, one utterance per line.

Each line is an object with ``id``, ``audio`` (a path relative to the manifest's folder, or
absolute), ``text``, ``label`` (one of :data:`~mgcma.constants.EMOTIONS`), ``speaker`` and
``group`` (the cross-validation fold key), and optionally ``words``: a list of
``{"word", "start", "end"}`` in seconds. Any other key (``cue``, ``text_emotion``, ...) is kept in
:attr:`Utterance.extra` and written back by :func:`write_manifest`.

Loading validates every line and fails on the first bad one with the file name, the 1-based line
number and what is wrong; missing audio files are collected and reported together.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mgcma.constants import EMOTIONS

REQUIRED_KEYS = ("id", "audio", "text", "label", "speaker", "group")
MAX_LISTED_MISSING = 10  # a missing-audio error names this many files, then gives the count

Word = tuple[str, float, float]  # (word, start seconds, end seconds)


class ManifestError(ValueError):
    """A manifest that cannot be used; the message names the file, the line and the problem."""


@dataclass(frozen=True)
class Utterance:
    """One line of a manifest, with its audio path resolved.

    Attributes
    ----------
    id : str
        Unique within the manifest.
    audio : Path
        Absolute path of the audio file.
    text : str
        The transcript.
    label : str
        One of the manifest's labels (by default :data:`~mgcma.constants.EMOTIONS`).
    speaker, group : str
        Who speaks, and the cross-validation fold the utterance belongs to.
    words : tuple of (word, start, end) or None
        Word timings in seconds, when the corpus provides them.
    extra : dict
        Every other key of the line, kept as read.
    """

    id: str
    audio: Path
    text: str
    label: str
    speaker: str
    group: str
    words: tuple[Word, ...] | None = None
    extra: dict[str, Any] = field(default_factory=dict, hash=False)


# ----------------------------------------------------------------------------- validation


def _type_name(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def _check_fields(record: dict, labels: Sequence[str]) -> str | None:
    """What is wrong with the required keys of one line, or None."""
    missing = [key for key in REQUIRED_KEYS if key not in record]
    if missing:
        return f"missing key{'s' if len(missing) > 1 else ''} {', '.join(map(repr, missing))}"
    for key in REQUIRED_KEYS:
        if not isinstance(record[key], str):
            return f"{key!r} must be a string, got {_type_name(record[key])} {record[key]!r}"
    for key in ("id", "audio"):
        if not record[key].strip():
            return f"{key!r} is empty"
    if record["label"] not in labels:
        return f"label {record['label']!r} is not one of {', '.join(labels)}"
    return None


def _is_seconds(value: Any) -> bool:
    is_number = isinstance(value, int | float) and not isinstance(value, bool)
    return is_number and math.isfinite(value) and value >= 0


def _parse_words(words: Any) -> tuple[tuple[Word, ...] | None, str | None]:
    """``(words, None)`` when well-formed, else ``(None, what is wrong)``.

    Words must be objects with a string ``word`` and finite, non-negative ``start <= end``; their
    start and end times must never go backwards from one word to the next.
    """
    if words is None:
        return None, None
    if not isinstance(words, list):
        return None, f"'words' must be a list of {{word, start, end}}, got {_type_name(words)}"
    parsed: list[Word] = []
    for position, item in enumerate(words, start=1):
        where = f"word {position}"
        if not isinstance(item, dict) or not {"word", "start", "end"} <= item.keys():
            return None, f"{where} must be an object with 'word', 'start' and 'end', got {item!r}"
        word, start, end = item["word"], item["start"], item["end"]
        if not isinstance(word, str):
            return None, f"{where}: 'word' must be a string, got {_type_name(word)}"
        if not (_is_seconds(start) and _is_seconds(end)):
            return None, f"{where} ({word!r}): start and end must be seconds >= 0, got {item!r}"
        if start > end:
            return None, f"{where} ({word!r}) starts at {start} s, after its end {end} s"
        if parsed and (start < parsed[-1][1] or end < parsed[-1][2]):
            previous = parsed[-1]
            return None, (
                f"word times must increase: {where} ({word!r}, {start}-{end} s) comes before "
                f"word {position - 1} ({previous[0]!r}, {previous[1]}-{previous[2]} s)"
            )
        parsed.append((word, float(start), float(end)))
    return tuple(parsed), None


def _parse_line(line: str, base: Path, labels: Sequence[str]) -> tuple[Utterance | None, str]:
    """``(utterance, "")`` for a good line, ``(None, what is wrong)`` for a bad one."""
    try:
        record = json.loads(line)
    except json.JSONDecodeError as error:
        return None, f"not valid JSON ({error.msg} at column {error.colno})"
    if not isinstance(record, dict):
        return None, f"expected a JSON object, got {_type_name(record)}"
    problem = _check_fields(record, labels)
    if problem:
        return None, problem
    words, problem = _parse_words(record.get("words"))
    if problem:
        return None, problem
    extra = {key: value for key, value in record.items() if key not in (*REQUIRED_KEYS, "words")}
    audio = Path(os.path.expanduser(record["audio"]))
    utterance = Utterance(
        id=record["id"],
        audio=audio if audio.is_absolute() else (base / audio).resolve(),
        text=record["text"],
        label=record["label"],
        speaker=record["speaker"],
        group=record["group"],
        words=words,
        extra=extra,
    )
    return utterance, ""


# ----------------------------------------------------------------------------- reading, writing


def load_manifest(
    path: str | os.PathLike, *, check_audio: bool = True, labels: Sequence[str] = EMOTIONS
) -> list[Utterance]:
    """Read and validate a manifest.

    Parameters
    ----------
    path : path of the ``.jsonl`` file; relative ``audio`` paths resolve against its folder
    check_audio : also check that every audio file exists (all missing ones are reported at once)
    labels : the allowed labels

    Returns
    -------
    list[Utterance]
        In file order; blank lines are skipped.

    Raises
    ------
    ManifestError
        ``"<file> line <n>: <problem>"`` for the first bad line; one error listing the missing
        audio files; or when the file is missing or holds no utterance.
    """
    path = Path(path)
    if not path.is_file():
        raise ManifestError(f"manifest not found: '{path}'")
    base = path.resolve().parent
    utterances: list[Utterance] = []
    first_line: dict[str, int] = {}
    with open(path, encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            utterance, problem = _parse_line(line, base, labels)
            if utterance is not None and utterance.id in first_line:
                problem = f"id {utterance.id!r} repeats line {first_line[utterance.id]}"
            if problem:
                raise ManifestError(f"{path} line {number}: {problem}")
            first_line[utterance.id] = number
            utterances.append(utterance)
    if not utterances:
        raise ManifestError(f"{path}: no utterances (the file is empty)")
    if check_audio:
        _check_audio_exists(path, utterances, first_line)
    return utterances


def _check_audio_exists(path: Path, utterances: list[Utterance], lines: dict[str, int]) -> None:
    missing = [u for u in utterances if not u.audio.is_file()]
    if not missing:
        return
    listed = "\n".join(f"  line {lines[u.id]}: {u.audio}" for u in missing[:MAX_LISTED_MISSING])
    more = len(missing) - MAX_LISTED_MISSING
    tail = f"\n  ... and {more} more" if more > 0 else ""
    raise ManifestError(
        f"{path}: {len(missing)} of {len(utterances)} audio files are missing "
        f"(relative paths resolve against {path.resolve().parent}):\n{listed}{tail}"
    )


def _relative_audio(audio: str | os.PathLike, base: Path) -> str:
    """Audio path as written to a manifest in ``base``: absolute paths become relative."""
    audio_path = Path(audio)
    if not audio_path.is_absolute():
        return audio_path.as_posix()
    return Path(os.path.relpath(audio_path, base)).as_posix()


def _to_record(item: Utterance | Mapping[str, Any], base: Path) -> dict[str, Any]:
    if isinstance(item, Utterance):
        record: dict[str, Any] = {key: getattr(item, key) for key in REQUIRED_KEYS}
        if item.words is not None:
            record["words"] = [{"word": w, "start": s, "end": e} for w, s, e in item.words]
        record.update(item.extra)
    else:
        record = dict(item)
    record["audio"] = _relative_audio(record["audio"], base)
    return record


def write_manifest(items: Iterable[Utterance | Mapping[str, Any]], path: str | os.PathLike) -> Path:
    """Write utterances (or plain dicts with the manifest keys) as JSON Lines, atomically.

    Absolute ``audio`` paths (as :class:`Utterance` holds them) are written relative to the
    manifest's folder, so the corpus folder can be moved as a whole; relative paths in dicts are
    taken to be relative to the manifest already and written unchanged.

    Returns
    -------
    Path
        ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    base = path.resolve().parent
    partial = path.with_name(path.name + ".partial")
    try:
        with open(partial, "w", encoding="utf-8") as out:
            for item in items:
                out.write(json.dumps(_to_record(item, base), ensure_ascii=False) + "\n")
        os.replace(partial, path)  # readers never see a half-written manifest
    finally:
        partial.unlink(missing_ok=True)
    return path


# ----------------------------------------------------------------------------- splits


def groups(utterances: Iterable[Utterance]) -> list[str]:
    """The distinct groups (cross-validation folds), sorted."""
    return sorted({u.group for u in utterances})


def fold_of(group: str) -> str:
    """The cross-validation fold a group belongs to: its name after the corpus prefix.

    Several corpora are cross-validated together by naming their groups ``<corpus>-<fold>``:
    fold ``g1`` holds out the synthetic voices of ``g1`` and the RAVDESS actors of
    ``ravdess-g1`` at once, so no test speaker of any corpus is heard in training.
    """
    return group.rsplit("-", 1)[-1]


def folds(utterances: Sequence[Utterance]) -> list[str]:
    """The distinct folds of the utterances' groups, sorted."""
    return sorted({fold_of(u.group) for u in utterances})


def split_by_group(
    utterances: Sequence[Utterance], test_group: str
) -> tuple[list[Utterance], list[Utterance]]:
    """``(train, test)``: the test group held out, everything else for training, in order.

    `test_group` is a group, or a fold (see :func:`fold_of`) holding out its group in every corpus.
    """
    known = groups(utterances)
    held_out = {g for g in known if fold_of(g) == test_group} or {test_group} & set(known)
    if not held_out:
        raise ManifestError(
            f"test group {test_group!r} is not one of {', '.join(known)} "
            f"nor a fold of them ({', '.join(folds(utterances))})"
        )
    train = [u for u in utterances if u.group not in held_out]
    test = [u for u in utterances if u.group in held_out]
    return train, test


def validation_split(
    train_utterances: Sequence[Utterance], fraction: float = 0.1, seed: int = 0
) -> tuple[list[Utterance], list[Utterance]]:
    """Hold out a validation set from the training utterances, stratified by label.

    Each label gives ``round(fraction * count)`` utterances (at least one when ``fraction > 0``,
    so a small corpus still gets a validation set), drawn at random with ``seed``; every label
    keeps at least one training utterance. Only the utterances passed in are drawn
    from, so pass the training groups (never the test group) to keep model selection honest.

    Returns
    -------
    (train, validation)
        Both in the input order; the same seed gives the same split.
    """
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"fraction must be in [0, 1), got {fraction}")
    rng = np.random.default_rng(seed)
    held_out: set[int] = set()
    for label in sorted({u.label for u in train_utterances}):
        positions = [i for i, u in enumerate(train_utterances) if u.label == label]
        count = max(1, round(fraction * len(positions))) if fraction > 0 else 0
        count = min(count, len(positions) - 1)  # every label keeps a training example
        held_out.update(int(i) for i in rng.permutation(positions)[:count])
    train = [u for i, u in enumerate(train_utterances) if i not in held_out]
    validation = [u for i, u in enumerate(train_utterances) if i in held_out]
    return train, validation
