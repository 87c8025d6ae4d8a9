"""IEMOCAP → manifest, from the official release layout.

The release (licensed by USC SAIL, not redistributed here) is laid out as::

    ROOT/Session1..5/dialog/EmoEvaluation/<dialog>.txt      [6.2901 - 8.2357]\\t<utt>\\tneu\\t[...]
    ROOT/Session1..5/dialog/transcriptions/<dialog>.txt     <utt> [006.2901-008.2357]: Excuse me.
    ROOT/Session1..5/sentences/wav/<dialog>/<utt>.wav

The usual 4-class subset keeps neutral, happy and excited (merged into happy), angry and sad,
and drops frustrated, surprised, fearful, disgusted, other and ``xxx`` (no majority). The standard
count is 5,531 utterances; :func:`read_iemocap` compares what it finds with that, per class and
per session, so an incomplete copy is noticed before training. Transcripts are kept as written,
including markers such as ``[LAUGHTER]``. The group (cross-validation fold) is the session; the
speaker is the session and the gender of the utterance's speaker (``Ses01F_impro01_M003`` is
spoken by ``Ses01M``).

Command line: ``python -m train iemocap --root PATH --out manifest.jsonl``.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from mgcma.constants import EMOTIONS
from train.manifest import write_manifest

LABEL_MAP = {"neu": "neutral", "hap": "happy", "exc": "happy", "ang": "angry", "sad": "sad"}
SESSIONS = tuple(f"Session{number}" for number in range(1, 6))

# The standard 4-class subset, session × class (neutral, happy+excited, angry, sad), as used
# across the IEMOCAP literature: 5,531 utterances; neutral 1,708, happy 1,636, angry 1,103,
# sad 1,084.
STANDARD_COUNTS: dict[str, dict[str, int]] = {
    "Session1": {"neutral": 384, "happy": 278, "angry": 229, "sad": 194},
    "Session2": {"neutral": 362, "happy": 327, "angry": 137, "sad": 197},
    "Session3": {"neutral": 320, "happy": 286, "angry": 240, "sad": 305},
    "Session4": {"neutral": 258, "happy": 303, "angry": 327, "sad": 143},
    "Session5": {"neutral": 384, "happy": 442, "angry": 170, "sad": 245},
}
STANDARD_TOTAL = 5531
MAX_LISTED = 10  # missing files named in the report before "... and N more"

# `[6.2901 - 8.2357]	Ses01F_impro01_F000	neu	[2.5000, 2.5000, 2.5000]`
EVALUATION_LINE = re.compile(r"^\[\s*[\d.]+\s*-\s*[\d.]+\s*\]\s+(Ses\w+)\s+(\w+)\s+\[")
# `Ses01F_impro01_F000 [006.2901-008.2357]: Excuse me.`  (other lines, e.g. `M: [BREATHING]`,
# are not utterances)
TRANSCRIPT_LINE = re.compile(r"^(Ses\w+)\s*(?:\[[^\]]*\])?\s*:(.*)$")


class IemocapError(ValueError):
    """The folder is not an IEMOCAP release; the message says what was expected."""


@dataclass
class IemocapReport:
    """What :func:`read_iemocap` found, next to the standard 4-class subset.

    Attributes
    ----------
    found : Counter
        ``(session, label)`` → utterances written to the manifest.
    missing_audio, missing_text : list[str]
        Utterances of the four classes left out because their wav file or transcript is missing.
    dropped : Counter
        IEMOCAP label → utterances outside the four classes (``fru``, ``xxx``, ...).
    sessions : list[str]
        The session folders read.
    """

    found: Counter = field(default_factory=Counter)
    missing_audio: list[str] = field(default_factory=list)
    missing_text: list[str] = field(default_factory=list)
    dropped: Counter = field(default_factory=Counter)
    sessions: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(self.found.values())

    def class_counts(self) -> dict[str, int]:
        return {label: sum(self.found[s, label] for s in SESSIONS) for label in EMOTIONS}

    def session_counts(self) -> dict[str, int]:
        return {
            session: sum(self.found[session, label] for label in EMOTIONS) for session in SESSIONS
        }

    def differences(self) -> dict[str, int]:
        """Found minus expected, for every count that differs.

        Keys: ``"total"``, a class (``"happy"``), a session (``"Session2"``), or a cell
        (``"Session2/happy"``). Empty when the copy matches the standard subset.
        """
        expected = _expected_counts()
        found = {"total": self.total, **self.class_counts(), **self.session_counts()}
        found.update({f"{s}/{label}": self.found[s, label] for s in SESSIONS for label in EMOTIONS})
        return {key: found[key] - expected[key] for key in expected if found[key] != expected[key]}

    @property
    def matches_standard(self) -> bool:
        return not self.differences()

    def format(self) -> str:
        """A plain-text report: counts table, differences, and what was left out."""
        return "\n".join(_count_table(self) + _difference_lines(self) + _left_out_lines(self))


def _expected_counts() -> dict[str, int]:
    expected = {"total": STANDARD_TOTAL}
    expected.update({label: sum(STANDARD_COUNTS[s][label] for s in SESSIONS) for label in EMOTIONS})
    expected.update({s: sum(STANDARD_COUNTS[s].values()) for s in SESSIONS})
    expected.update(
        {f"{s}/{label}": STANDARD_COUNTS[s][label] for s in SESSIONS for label in EMOTIONS}
    )
    return expected


def _count_table(report: IemocapReport) -> list[str]:
    expected = _expected_counts()
    found = {"total": report.total, **report.class_counts(), **report.session_counts()}
    lines = [
        "IEMOCAP 4-class subset (excited merged into happy): found vs standard",
        f"{'':<10}{'expected':>10}{'found':>10}{'diff':>8}",
    ]
    for key in (*EMOTIONS, *SESSIONS, "total"):
        diff = found[key] - expected[key]
        lines.append(f"{key:<10}{expected[key]:>10,}{found[key]:>10,}{diff:>+8,}")
    return lines


def _difference_lines(report: IemocapReport) -> list[str]:
    differences = report.differences()
    if not differences:
        return ["matches the standard 5,531-utterance subset"]
    absent = [s for s in SESSIONS if s not in report.sessions]
    cells = {  # absent sessions are named once below rather than cell by cell
        key: value
        for key, value in differences.items()
        if "/" in key and key.split("/")[0] not in absent
    }
    lines = [f"differs from the standard subset by {report.total - STANDARD_TOTAL:+,} utterances"]
    if cells:
        lines.append("cells that differ: " + ", ".join(f"{k} {v:+,}" for k, v in cells.items()))
    if absent:
        lines.append(f"session folders not found: {', '.join(absent)}")
    return lines


def _listed(ids: list[str]) -> str:
    more = f", ... and {len(ids) - MAX_LISTED} more" if len(ids) > MAX_LISTED else ""
    return ", ".join(ids[:MAX_LISTED]) + more


def _left_out_lines(report: IemocapReport) -> list[str]:
    lines = []
    if report.missing_audio:
        lines.append(
            f"left out, wav file missing ({len(report.missing_audio)}): "
            f"{_listed(report.missing_audio)}"
        )
    if report.missing_text:
        lines.append(
            f"left out, transcript missing ({len(report.missing_text)}): "
            f"{_listed(report.missing_text)}"
        )
    if report.dropped:
        dropped = ", ".join(f"{label} {count:,}" for label, count in report.dropped.most_common())
        lines.append(f"other labels dropped: {dropped}")
    return lines


# ----------------------------------------------------------------------------- reading


def _text_files(folder: Path) -> list[Path]:
    """The ``*.txt`` files of a folder, without macOS ``._`` resource forks."""
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.glob("*.txt") if not p.name.startswith("._"))


def _read_lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8", errors="replace").splitlines()


def read_labels(session_dir: Path) -> dict[str, str]:
    """Utterance id → IEMOCAP label (``neu``, ``exc``, ``xxx``, ...) from ``EmoEvaluation``."""
    labels: dict[str, str] = {}
    for path in _text_files(session_dir / "dialog" / "EmoEvaluation"):
        for line in _read_lines(path):
            match = EVALUATION_LINE.match(line)
            if match:
                labels.setdefault(match.group(1), match.group(2))
    return labels


def read_transcripts(session_dir: Path) -> dict[str, str]:
    """Utterance id → transcript from ``dialog/transcriptions``."""
    transcripts: dict[str, str] = {}
    for path in _text_files(session_dir / "dialog" / "transcriptions"):
        for line in _read_lines(path):
            match = TRANSCRIPT_LINE.match(line.strip())
            if match:
                transcripts.setdefault(match.group(1), " ".join(match.group(2).split()))
    return transcripts


def speaker_of(utterance_id: str) -> str:
    """``Ses01F_impro01_M003`` → ``Ses01M``: the session and the gender of who speaks."""
    session_code = utterance_id[:5]  # "Ses01"
    gender = utterance_id.rsplit("_", 1)[-1][:1]  # "M003" -> "M"
    return session_code + gender


def _session_dirs(root: Path) -> list[Path]:
    """The Session1..5 folders under ``root``; IemocapError when there are none."""
    if not root.is_dir():
        raise IemocapError(f"IEMOCAP root not found: '{root}'")
    found = [root / name for name in SESSIONS if (root / name).is_dir()]
    if found:
        return found
    nested = sorted(p.parent for p in root.glob("*/Session1") if p.is_dir())
    hint = f"; did you mean '{nested[0]}'?" if nested else ""
    raise IemocapError(
        f"'{root}' holds no Session1..Session5 folders; pass the folder of the official release "
        f"(IEMOCAP_full_release), which contains Session1/dialog/EmoEvaluation{hint}"
    )


def _read_session(session_dir: Path, report: IemocapReport) -> list[dict]:
    session = session_dir.name
    transcripts = read_transcripts(session_dir)
    rows = []
    for utterance_id, raw_label in sorted(read_labels(session_dir).items()):
        label = LABEL_MAP.get(raw_label)
        if label is None:
            report.dropped[raw_label] += 1
            continue
        dialog = utterance_id.rsplit("_", 1)[0]
        audio = session_dir / "sentences" / "wav" / dialog / f"{utterance_id}.wav"
        if not audio.is_file():
            report.missing_audio.append(utterance_id)
            continue
        if utterance_id not in transcripts:  # an empty transcript line is kept as ""
            report.missing_text.append(utterance_id)
            continue
        report.found[session, label] += 1
        rows.append(
            {
                "id": utterance_id,
                "audio": audio.resolve(),
                "text": transcripts[utterance_id],
                "label": label,
                "speaker": speaker_of(utterance_id),
                "group": session,
                "iemocap_label": raw_label,
            }
        )
    return rows


def read_iemocap(root: str | Path) -> tuple[list[dict], IemocapReport]:
    """Read the 4-class IEMOCAP subset from the official release layout.

    Parameters
    ----------
    root : the release folder holding ``Session1`` ... ``Session5``

    Returns
    -------
    rows : list[dict]
        Manifest rows (``id``, ``audio`` as an absolute Path, ``text``, ``label``, ``speaker``,
        ``group`` and ``iemocap_label``, the original label), sorted by session and id.
        Write them with :func:`write_manifest`, which makes ``audio`` relative.
    report : IemocapReport
        Counts against the standard subset, and what was left out and why.

    Raises
    ------
    IemocapError
        When ``root`` has no session folders.
    """
    report = IemocapReport()
    rows: list[dict] = []
    for session_dir in _session_dirs(Path(root).expanduser()):
        report.sessions.append(session_dir.name)
        rows.extend(_read_session(session_dir, report))
    return rows, report


# ----------------------------------------------------------------------------- command line


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``python -m train iemocap``."""
    parser.add_argument(
        "--root", required=True, type=Path, help="IEMOCAP release folder (holds Session1..5)"
    )
    parser.add_argument(
        "--out", required=True, type=Path, help="manifest to write, e.g. data/iemocap.jsonl"
    )


def main(args: argparse.Namespace) -> int:
    """Write the manifest and print the count report; 2 when the root is not IEMOCAP."""
    try:
        rows, report = read_iemocap(args.root)
    except IemocapError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(report.format())
    if not rows:
        print("error: no utterance of the four classes was found; nothing written", file=sys.stderr)
        return 1
    write_manifest(rows, args.out)
    print(f"wrote {len(rows):,} utterances to {args.out}")
    return 0


__all__ = [
    "IemocapError",
    "IemocapReport",
    "add_arguments",
    "main",
    "read_iemocap",
    "write_manifest",
]
