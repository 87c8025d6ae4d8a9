"""`python -m train examples --manifest M --out assets/examples`: pick the app's example clips.

For every emotion an utterance where speech and words agree, and for happy, angry and sad one
where only the voice carries the emotion, one where only the words do, and one where they
conflict (labelled by the voice, see train/synth.py) — short clips from the given voice groups,
copied with their transcript, label and true word timings into `examples.jsonl`.

`--real MANIFEST` adds one real acted clip per emotion (RAVDESS, strong intensity where there is
one, from the given groups — e.g. the held-out fold `ravdess-g1`), so the walkthrough has a
human voice too; each such example carries its corpus's licence and attribution.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

from mgcma.constants import EMOTIONS
from train.manifest import Utterance, load_manifest

CUES = ("both", "prosody", "words", "conflict")
NOTES = {
    "both": "Voice and words carry the same emotion.",
    "prosody": "Neutral words, emotional voice: only the speech carries the emotion.",
    "words": "Emotional words, flat voice: only the text carries the emotion.",
    "conflict": "The words say {text_emotion}, the voice says {label}; the label follows the "
    "voice.",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--manifest", required=True, help="a synthetic-corpus manifest")
    parser.add_argument("--out", required=True, help="output folder, e.g. assets/examples")
    parser.add_argument("--groups", default="g1", help="comma-separated voice groups to use")
    parser.add_argument("--max-seconds", type=float, default=4.0)
    parser.add_argument("--real", default=None, help="a RAVDESS manifest: one clip per emotion")
    parser.add_argument("--real-groups", default="ravdess-g1", help="its groups to draw from")


def main(args: argparse.Namespace) -> int:
    chosen = write_examples(
        Path(args.manifest),
        Path(args.out),
        [g for g in args.groups.split(",") if g],
        args.max_seconds,
        real=Path(args.real) if args.real else None,
        real_groups=[g for g in args.real_groups.split(",") if g],
    )
    print(f"wrote {len(chosen)} examples to {args.out}")
    return 0


def choose(utterances: list[Utterance], groups: list[str], max_seconds: float) -> list:
    pool = [
        u
        for u in utterances
        if u.group in groups
        and float(u.extra.get("duration", 0.0) or 0.0) <= max_seconds
        # templated sentences only: a classroom reads these aloud, and GoEmotions' Reddit
        # comments are unfiltered
        and u.extra.get("sentence_source", "template") == "template"
    ]
    chosen = []
    for emotion in EMOTIONS:
        for cue in CUES if emotion != "neutral" else ("both", "both"):
            candidates = [
                u
                for u in pool
                if u.label == emotion and u.extra.get("cue") == cue and u not in chosen
            ]
            if candidates:  # alternate speakers, so the examples are not all one voice
                speakers = sorted({u.speaker for u in candidates})
                speaker = speakers[len(chosen) % len(speakers)]
                chosen.append(next(u for u in candidates if u.speaker == speaker))
    return chosen


REAL_NOTE = (
    "A real actor ({speaker}) saying one of RAVDESS's two neutral sentences {label}: only the "
    "voice carries the emotion. RAVDESS, Livingstone & Russo 2018, CC BY-NC-SA 4.0."
)


def choose_real(utterances: list[Utterance], groups: list[str]) -> list[Utterance]:
    """One clip per emotion from `groups`, strong intensity first, alternating actors."""
    chosen: list[Utterance] = []
    for emotion in EMOTIONS:
        candidates = sorted(
            (u for u in utterances if u.group in groups and u.label == emotion),
            key=lambda u: (u.extra.get("intensity") != "strong", u.id),
        )
        used = {c.speaker for c in chosen}
        fresh = [u for u in candidates if u.speaker not in used] or candidates
        chosen += fresh[:1]
    return chosen


def _real_rows(utterances: list[Utterance], out: Path, first: int) -> list[dict]:
    rows = []
    for number, utterance in enumerate(utterances, first):
        name = f"{number:02d}-{utterance.label}-real"
        audio = f"{name}{utterance.audio.suffix}"
        shutil.copyfile(utterance.audio, out / audio)
        actor = utterance.speaker.removeprefix("ravdess-")
        rows.append(
            {
                "name": name,
                "audio": audio,
                "text": utterance.text,
                "label": utterance.label,
                "cue": "real",
                "text_emotion": "neutral",
                "speaker": utterance.speaker,
                "words": [],
                "licence": utterance.extra.get("licence", ""),
                "note": REAL_NOTE.format(speaker=actor.replace("-", " "), label=utterance.label),
            }
        )
    return rows


def write_examples(
    manifest: Path,
    out: Path,
    groups: list[str],
    max_seconds: float = 4.0,
    real: Path | None = None,
    real_groups: list[str] | None = None,
):
    chosen = choose(load_manifest(manifest), groups, max_seconds)
    if not chosen:
        raise ValueError(f"no utterances of groups {groups} shorter than {max_seconds} s")
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for number, utterance in enumerate(chosen, 1):
        cue = utterance.extra.get("cue", "")
        name = f"{number:02d}-{utterance.label}-{cue}"
        shutil.copyfile(utterance.audio, out / f"{name}.wav")
        rows.append(
            {
                "name": name,
                "audio": f"{name}.wav",
                "text": utterance.text,
                "label": utterance.label,
                "cue": cue,
                "text_emotion": utterance.extra.get("text_emotion", ""),
                "speaker": utterance.speaker,
                "words": [{"word": w, "start": s, "end": e} for w, s, e in utterance.words or ()],
                "note": NOTES.get(cue, "").format(
                    text_emotion=utterance.extra.get("text_emotion"), label=utterance.label
                ),
            }
        )
    if real is not None:
        picked = choose_real(load_manifest(real), real_groups or [])
        if not picked:
            raise ValueError(f"no utterances of groups {real_groups} in {real}")
        rows += _real_rows(picked, out, len(rows) + 1)
    (out / "examples.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return rows
