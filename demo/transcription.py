"""Whisper in the app: the model menu, one shared Transcriber per model, and a status line.

When Whisper cannot run (not downloaded and offline, a bad file), nothing fails: the transcript
stays empty and the status says why, beside the transcript and in the header.
"""

from __future__ import annotations

import html
import logging
import threading
from pathlib import Path

from demo.notes import cause
from demo.settings import SHIPPED_WHISPER
from mgcma.asr import TYPE_INSTEAD, UNSURE_BELOW, Transcriber, TranscriberError, Transcript
from mgcma.audio import Audio, load_audio

WHISPER_CHOICES = ("tiny", "base", "small")  # downloaded by openai-whisper on first use
UNSURE_NOTE_CHARS = 120  # of an unread transcript, quoted in its note

log = logging.getLogger("mgcma.app")


def is_shipped_whisper(name: str) -> bool:
    """True when `name` is the Whisper file that ships in assets/ (present)."""
    return Path(name).is_file() and Path(name).resolve() == SHIPPED_WHISPER.resolve()


def whisper_choices(configured: str) -> list[tuple[str, str]]:
    """(label, value) pairs for the Whisper menu: the configured model first, then the named
    ones openai-whisper downloads on request."""
    label = configured
    if is_shipped_whisper(configured):
        label = "tiny.en (ships with the app, offline)"
    elif Path(configured).is_file():
        label = f"{Path(configured).name} (local file)"
    choices = [(label, configured)]
    return choices + [(name, name) for name in WHISPER_CHOICES if name != configured]


def unsure_note(transcript: Transcript, name: str) -> str:
    """Why a transcript Whisper was unsure of is not read (shown in the analysis's notes)."""
    heard = transcript.text
    if len(heard) > UNSURE_NOTE_CHARS:  # a decoding loop can run to hundreds of words
        heard = heard[:UNSURE_NOTE_CHARS].rsplit(" ", 1)[0] + " …"
    if transcript.confidence < UNSURE_BELOW:
        why = (
            f"was unsure of its words (mean word probability {transcript.confidence:.2f}, below "
            f"{UNSURE_BELOW}; speech in another language or unclear speech does this)"
        )
    else:
        why = "repeated its words in a loop (a decoding failure, not what was said)"
    return (
        f"Whisper {name} heard “{heard}” but {why}: the words were not read, so the voice "
        "decides. Type the transcript to have the words read."
    )


class Transcription:
    """The Transcribers the app has used, by model name, and why any of them failed."""

    def __init__(self, default: str) -> None:
        self.default = default
        self._transcribers: dict[str, Transcriber] = {}
        self._failures: dict[str, str] = {}  # name → why it could not transcribe
        self._lock = threading.Lock()

    def transcribe(self, audio: Audio, name: str | None = None) -> tuple[str, list, str]:
        """(text, word timings, status message) from Whisper; when Whisper cannot run, no text
        and a message that says why (shown beside the transcript, not as an error)."""
        name = name or self.default
        with self._lock:
            transcriber = self._transcribers.setdefault(name, Transcriber(name))
        try:
            transcript = transcriber.transcribe(audio.samples)
        except TranscriberError as error:
            log.warning("Whisper %s could not transcribe: %s", name, error)
            reason = str(error).replace(TYPE_INSTEAD, "").strip()  # said once, below
            self._failures[name] = cause(error, reason)
            return "", [], f"Whisper is not available here: {reason} Type the transcript instead."
        self._failures.pop(name, None)
        if transcript.unsure:  # English words for speech that was not (clearly) English
            return "", [], unsure_note(transcript, transcriber.name)
        words = [{"word": w.word, "start": w.start, "end": w.end} for w in transcript.words]
        status = transcript.note or f"Transcribed with Whisper {transcriber.name}."
        return transcript.text, words, status

    def warm_up(self, source) -> None:
        """Load the default Whisper and transcribe `source` (what `load_audio` takes) once, off
        the request path: the first transcription with words compiles their alignment (numba),
        ≈ 3 s on 2 cores."""
        try:
            self.transcribe(load_audio(source))
        except Exception as error:  # noqa: BLE001 - the first request will say what is wrong
            log.warning("Whisper warm-up failed: %s", error)

    def status(self, name: str | None = None) -> str:
        """One plain sentence on whether Whisper can transcribe here, checked without loading."""
        import whisper

        from mgcma import asr

        name = name or self.default
        if name in self._failures:  # tried and failed: what the header said is moot
            reason = html.escape(self._failures[name], quote=False)
            return f"Whisper `{name}` could not be loaded here ({reason}): type the transcript."
        if name not in whisper.available_models():
            if is_shipped_whisper(name):
                return (
                    "Whisper tiny.en ships with the app: transcription works offline, and the "
                    "same Whisper is the model's ear."
                )
            found = Path(name).is_file()
            return (
                f"Whisper: local checkpoint `{name}`."
                if found
                else f"Whisper: `{name}` is neither a model name nor a file — type transcripts."
            )
        cached, _ = asr._cached_checkpoint(name, asr.default_download_root())
        if Path(cached).is_file():
            return f"Whisper `{name}` is ready (in the local cache)."
        if asr.is_offline():
            return (
                f"Whisper `{name}` is not downloaded and the app is offline: type the "
                "transcript yourself (the examples carry theirs)."
            )
        return f"Whisper `{name}` will be downloaded on first use (about 150 MB for base)."
