"""RAVDESS (speech) → manifest, from the official file names.

Every clip is named ``MM-CC-EE-II-SS-RR-AA`` (``.wav`` in the 48-kHz official release, ``.flac``
in resampled copies; both are read)::

    ROOT/Actor_01/03-01-05-02-01-02-01.wav     audio-only, speech, angry, strong, "Kids ...", rep 2

Fields: modality (``03`` audio-only; ``01``/``02`` are video and are skipped), vocal channel
(``01`` speech; ``02`` song is skipped), emotion (``01`` neutral, ``02`` calm, ``03`` happy,
``04`` sad, ``05`` angry; ``06``-``08`` fearful, disgust and surprised are outside the four
classes and skipped), intensity (``01`` normal, ``02`` strong), statement (``01`` "Kids are
talking by the door", ``02`` "Dogs are sitting by the door", the utterance's text), repetition,
and actor (odd numbers are male, even female). Calm is left out by default (``--calm drop``) or
merged into neutral (``--calm neutral``); each line keeps ``ravdess_emotion`` and ``intensity``,
so experiments can tell calm-as-neutral and strong from normal clips apart, and says what each
modality carries alone: ``prosody_emotion`` is the label, ``text_emotion`` neutral (the two
statements are emotionally neutral by design; the actors put the emotion in their voices).

Why drop: measured with `train/configs/whisper_minilm.yaml` on folds g1–g3, scored on the same
four-class clips of the unheard actors, calm-as-neutral gave RAVDESS UA 69.5 / 56.2 / 64.1 %
against 76.6 / 51.6 / 69.5 % with calm left out (full − neutral: +2.6 ± 5.0 points, ahead in 2
of 3 folds); the model does learn calm as neutral (84–100 % of held-out calm clips), but 160
more neutral-labelled clips of expressive actors blur the neutral class it is scored on.

Groups (cross-validation folds) are actor-disjoint and balanced by sex: the actors found are
sorted by number, male actors first and then female ones, and dealt in turn into ``--groups``
groups, ``ravdess-g1`` onwards. With actors 01-20 and 5 groups that gives::

    ravdess-g1: 01 11 02 12    ravdess-g2: 03 13 04 14    ravdess-g3: 05 15 06 16
    ravdess-g4: 07 17 08 18    ravdess-g5: 09 19 10 20

two male and two female actors per group. The assignment is printed with every run.

The corpus is CC BY-NC-SA 4.0 (Livingstone & Russo 2018); every line says so in ``licence``,
since a model trained on it inherits those terms.

Command line: ``python -m train ravdess --root PATH --out manifest.jsonl [--calm drop|neutral]``.
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

CORPUS = "ravdess"
LICENCE = "CC BY-NC-SA 4.0"
AUDIO_SUFFIXES = (".wav", ".flac")
AUDIO_ONLY, SPEECH = "03", "01"  # modality and vocal-channel codes that are read
EMOTION_NAMES = {
    "01": "neutral",
    "02": "calm",
    "03": "happy",
    "04": "sad",
    "05": "angry",
    "06": "fearful",
    "07": "disgust",
    "08": "surprised",
}
LABEL_MAP = {"neutral": "neutral", "happy": "happy", "sad": "sad", "angry": "angry"}
INTENSITIES = {"01": "normal", "02": "strong"}
STATEMENTS = {"01": "Kids are talking by the door", "02": "Dogs are sitting by the door"}
REPETITIONS = ("01", "02")
CALM_CHOICES = ("drop", "neutral")
DEFAULT_GROUPS = 5
MAX_LISTED = 10  # malformed names printed before "... and N more"

FILE_NAME = re.compile(r"^(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)$")
ACTOR_FOLDER = re.compile(r"^Actor_(\d\d)$")


class RavdessError(ValueError):
    """The folder holds no RAVDESS clips; the message says what was expected."""


@dataclass(frozen=True)
class ClipName:
    """The seven fields of a RAVDESS file name, as their two-digit codes."""

    modality: str
    channel: str
    emotion: str
    intensity: str
    statement: str
    repetition: str
    actor: str

    @property
    def is_male(self) -> bool:
        return int(self.actor) % 2 == 1


def parse_clip_name(path: Path) -> ClipName:
    """The fields of ``MM-CC-EE-II-SS-RR-AA.wav``; ValueError saying what is wrong otherwise.

    The actor field must agree with an ``Actor_XX`` folder holding the file, when there is one.
    """
    match = FILE_NAME.match(path.stem)
    if match is None:
        raise ValueError("expected seven two-digit fields, MM-CC-EE-II-SS-RR-AA")
    name = ClipName(*match.groups())
    codes = (
        ("emotion", name.emotion, EMOTION_NAMES),
        ("intensity", name.intensity, INTENSITIES),
        ("statement", name.statement, STATEMENTS),
        ("repetition", name.repetition, REPETITIONS),
    )
    for field_name, code, known in codes:
        if code not in known:
            raise ValueError(f"{field_name} {code} is not one of {', '.join(known)}")
    if name.actor == "00":
        raise ValueError("actor 00 does not exist (actors are numbered from 01)")
    folder = ACTOR_FOLDER.match(path.parent.name)
    if folder and folder.group(1) != name.actor:
        raise ValueError(f"actor {name.actor} in the name, but the folder is {path.parent.name}")
    return name


def actor_groups(actors: list[str], n_groups: int = DEFAULT_GROUPS) -> dict[str, str]:
    """Actor code → group name: male actors then female ones, by number, dealt in turn.

    Every group gets actors of both sexes as evenly as the counts allow, and each actor is in
    exactly one group. RavdessError when there are fewer actors than groups.
    """
    if n_groups < 1:
        raise RavdessError(f"--groups must be at least 1, got {n_groups}")
    unique = sorted(set(actors), key=int)
    if len(unique) < n_groups:
        raise RavdessError(f"{len(unique)} actors found, too few for {n_groups} actor groups")
    males = [actor for actor in unique if int(actor) % 2 == 1]
    females = [actor for actor in unique if int(actor) % 2 == 0]
    return {actor: f"{CORPUS}-g{i % n_groups + 1}" for i, actor in enumerate(males + females)}


@dataclass
class RavdessReport:
    """What :func:`read_ravdess` found and what it left out.

    Attributes
    ----------
    labels, groups : Counter
        Manifest label → clips, and group → clips written.
    group_actors : dict[str, list[str]]
        Group → actor codes, in the order they were dealt.
    skipped : Counter
        Reason → clips left out (video, song, fearful/disgust/surprised, calm, malformed name).
    malformed : list[str]
        ``"<path>: <what is wrong>"`` for each file name that could not be read.
    """

    labels: Counter = field(default_factory=Counter)
    groups: Counter = field(default_factory=Counter)
    group_actors: dict[str, list[str]] = field(default_factory=dict)
    skipped: Counter = field(default_factory=Counter)
    malformed: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(self.labels.values())

    def format(self) -> str:
        """A plain-text summary: clips per label, per group (with its actors), and skipped."""
        lines = ["RAVDESS speech, four classes: clips per label"]
        lines += [f"  {label:<10}{self.labels[label]:>6,}" for label in EMOTIONS]
        lines.append("clips per group (actor-disjoint; odd actors male, even female)")
        for group, actors in self.group_actors.items():
            lines.append(f"  {group:<12}{self.groups[group]:>6,}   actors {' '.join(actors)}")
        lines.append(f"total {self.total:,}")
        for reason, count in self.skipped.most_common():
            lines.append(f"skipped, {reason}: {count:,}")
        for problem in self.malformed[:MAX_LISTED]:
            lines.append(f"  malformed name: {problem}")
        if len(self.malformed) > MAX_LISTED:
            lines.append(f"  ... and {len(self.malformed) - MAX_LISTED} more")
        return "\n".join(lines)


# ----------------------------------------------------------------------------- reading


def _audio_files(root: Path) -> list[Path]:
    """The ``.wav``/``.flac`` files under ``root``, any depth, without macOS ``._`` forks."""
    if not root.is_dir():
        raise RavdessError(f"RAVDESS root not found: '{root}'")
    files = [
        path
        for path in root.rglob("*")
        if path.suffix.lower() in AUDIO_SUFFIXES and not path.name.startswith("._")
    ]
    if not files:
        raise RavdessError(
            f"'{root}' holds no .wav or .flac files; pass the folder that contains Actor_01 ..."
        )
    return sorted(files)


def _speech_clips(root: Path, report: RavdessReport) -> list[tuple[Path, ClipName]]:
    """Audio-only speech clips with well-formed names; everything else counted in the report."""
    clips: list[tuple[Path, ClipName]] = []
    seen: set[str] = set()
    for path in _audio_files(root):
        try:
            name = parse_clip_name(path)
        except ValueError as problem:
            report.skipped["malformed file name"] += 1
            report.malformed.append(f"{path}: {problem}")
            continue
        if name.modality != AUDIO_ONLY:
            report.skipped[f"not audio-only (modality {name.modality})"] += 1
        elif name.channel != SPEECH:
            report.skipped["song, not speech (vocal channel 02)"] += 1
        elif path.stem in seen:  # the same clip as .wav and .flac: the first is kept
            report.skipped["same clip twice (.wav and .flac)"] += 1
        else:
            seen.add(path.stem)
            clips.append((path, name))
    return clips


def _row(path: Path, name: ClipName, label: str, group: str) -> dict:
    return {
        "id": f"{CORPUS}-{path.stem}",
        "audio": path.resolve(),
        "text": STATEMENTS[name.statement],
        "label": label,
        "speaker": f"{CORPUS}-actor-{name.actor}",
        "group": group,
        "corpus": CORPUS,
        "licence": LICENCE,
        "ravdess_emotion": EMOTION_NAMES[name.emotion],
        # the emotion is all in the voice: both statements are neutral by design, said in
        # every emotion (what `loss.modality_targets` teaches each auxiliary head)
        "prosody_emotion": label,
        "text_emotion": "neutral",
        "intensity": INTENSITIES[name.intensity],
        "gender": "male" if name.is_male else "female",
    }


def read_ravdess(
    root: str | Path, calm: str = "drop", n_groups: int = DEFAULT_GROUPS
) -> tuple[list[dict], RavdessReport]:
    """Read the RAVDESS speech clips of the four classes.

    Parameters
    ----------
    root : folder holding the ``Actor_XX`` folders (searched at any depth)
    calm : ``"drop"`` leaves calm out; ``"neutral"`` labels it neutral
    n_groups : number of actor-disjoint, sex-balanced groups (see the module docstring)

    Returns
    -------
    rows : list[dict]
        Manifest rows (``id``, ``audio`` as an absolute Path, ``text``, ``label``, ``speaker``,
        ``group``, ``corpus``, ``licence``, ``ravdess_emotion``, ``intensity``, ``gender``),
        sorted by path. Write them with :func:`write_manifest`, which makes ``audio`` relative.
    report : RavdessReport
        Counts per label and group, the group assignment, and what was skipped and why.

    Raises
    ------
    RavdessError
        When ``root`` is missing, holds no audio, no well-formed speech clip, or too few actors.
    """
    if calm not in CALM_CHOICES:
        raise RavdessError(f"calm must be one of {', '.join(CALM_CHOICES)}, got {calm!r}")
    root = Path(root).expanduser()
    report = RavdessReport()
    clips = _speech_clips(root, report)
    if not clips:
        raise RavdessError(f"'{root}' holds no audio-only speech clip named MM-CC-EE-II-SS-RR-AA")
    groups = actor_groups([name.actor for _, name in clips], n_groups)
    report.group_actors = {f"{CORPUS}-g{number}": [] for number in range(1, n_groups + 1)}
    for actor, group in groups.items():
        report.group_actors[group].append(actor)
    rows = []
    for path, name in clips:
        emotion = EMOTION_NAMES[name.emotion]
        label = "neutral" if emotion == "calm" and calm == "neutral" else LABEL_MAP.get(emotion)
        if label is None:
            why = "--calm drop" if emotion == "calm" else "not one of the four classes"
            report.skipped[f"{emotion} ({why})"] += 1
            continue
        report.labels[label] += 1
        report.groups[groups[name.actor]] += 1
        rows.append(_row(path, name, label, groups[name.actor]))
    return rows, report


# ----------------------------------------------------------------------------- command line


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``python -m train ravdess``."""
    parser.add_argument(
        "--root", required=True, type=Path, help="RAVDESS speech folder (holds Actor_01 ...)"
    )
    parser.add_argument(
        "--out", required=True, type=Path, help="manifest to write, e.g. data/ravdess.jsonl"
    )
    parser.add_argument(
        "--calm",
        choices=CALM_CHOICES,
        default="drop",
        help="leave calm clips out (default) or label them neutral",
    )
    parser.add_argument(
        "--groups",
        type=int,
        default=DEFAULT_GROUPS,
        help="number of actor-disjoint, sex-balanced groups (default 5)",
    )


def main(args: argparse.Namespace) -> int:
    """Write the manifest and print the summary; 2 when the root holds no RAVDESS clips."""
    try:
        rows, report = read_ravdess(args.root, calm=args.calm, n_groups=args.groups)
    except RavdessError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(report.format())
    if not rows:
        print("error: no clip of the four classes was found; nothing written", file=sys.stderr)
        return 1
    write_manifest(rows, args.out)
    print(f"wrote {len(rows):,} utterances to {args.out} (calm: {args.calm})")
    return 0


__all__ = [
    "RavdessError",
    "RavdessReport",
    "actor_groups",
    "add_arguments",
    "main",
    "parse_clip_name",
    "read_ravdess",
]
