"""What the app does, without the layout: load once, decode at the edge, analyse, compare.

`Explorer` wires the parts, all loaded once and shared by every request: the settings
(demo/settings.py), the model and its Analyzer with the reference bank, the ablation
checkpoints, the example clips (demo/examples.py), Whisper (demo/transcription.py) and the
figures (demo/views.py). A clip is decoded once, in `read_audio`; everything after it takes the
decoded `Audio`. Every user-facing failure becomes a `UserFacingError` whose message the app
shows as it is.
"""

from __future__ import annotations

import html
import threading
from pathlib import Path

import numpy as np

from demo.batcher import Batcher
from demo.examples import Example, find_example, load_examples
from demo.notes import silence_note
from demo.settings import Settings
from demo.transcription import Transcription
from demo.views import Views
from mgcma.analysis import NO_TRANSCRIPT, Analysis, AnalysisError, Analyzer
from mgcma.audio import SILENCE_DBFS, Audio, AudioError, load_audio, rms_dbfs
from mgcma.bank import BankError, ReferenceBank
from mgcma.checkpoint import CheckpointError, load_model
from mgcma.config import VARIANTS
from mgcma.constants import SAMPLE_RATE

MAX_TRANSCRIPT_CHARS = 2_000  # longer text is cut (the text encoder reads ≤ 64 sub-words anyway)


class UserFacingError(ValueError):
    """A problem with the input or the setup, phrased for the person using the app."""


class Explorer:
    """The loaded models and data behind the app."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        try:
            self.model = load_model(settings.checkpoint)
        except CheckpointError as error:
            raise SystemExit(
                f"cannot start: {error}\nTrain one with `python -m train fit "
                "train/configs/whisper_minilm.yaml` and pass --checkpoint runs/whisper_minilm/best"
            ) from error
        self.bank = _load_bank(settings.bank, self.model)
        self.analyzer = Analyzer(self.model, self.bank)
        self.views = Views(self.bank)
        self.examples = load_examples(settings.examples)
        self.transcription = Transcription(settings.whisper)
        self._ablations: dict[str, Analyzer | None] = {}
        self._lock = threading.Lock()
        # concurrent requests are analysed together; each still gets its own result or error
        batch = settings.max_batch
        self.batcher = Batcher(
            lambda items: self.analyzer.analyze_many(items, batch_size=batch, errors="return"),
            max_batch=batch,
        )
        self.analyzer.analyze(np.zeros(SAMPLE_RATE, np.float32) + 1e-3, SAMPLE_RATE, "warm up")
        if Path(settings.whisper).is_file():  # a local Whisper: warm it up without a download
            silence = (SAMPLE_RATE, np.zeros(SAMPLE_RATE, np.float32))
            clip = self.examples[0].audio if self.examples else silence
            threading.Thread(target=self.transcription.warm_up, args=(clip,), daemon=True).start()

    # -- inputs: the edge, where a clip is decoded (once) -------------------------------------

    def read_audio(self, audio) -> Audio:
        """A file path (upload, recording or API) or Gradio's (rate, array) → 16-kHz audio."""
        if audio is None or (isinstance(audio, str) and not audio):
            raise UserFacingError("No audio: record or upload a clip first.")
        try:
            return load_audio(audio if not isinstance(audio, list) else tuple(audio))
        except AudioError as error:
            raise UserFacingError(f"The audio could not be used: {error}") from error

    def transcribe(self, audio: Audio, whisper: str | None = None) -> tuple[str, list, str]:
        """(text, word timings, status message): see `Transcription.transcribe`."""
        return self.transcription.transcribe(audio, whisper)

    def whisper_status(self, name: str | None = None) -> str:
        """One plain sentence on whether Whisper can transcribe here."""
        return self.transcription.status(name)

    def example_for(self, audio) -> Example | None:
        return find_example(self.examples, audio)

    # -- analysis -----------------------------------------------------------------------------

    def analyze(self, audio, text: str, words=None, whisper: str | None = None) -> tuple:
        """(Analysis, Audio); an empty transcript asks Whisper first."""
        clip = self.read_audio(audio)
        notes = []  # the clip's own notice (cut to 30 s) is the Analyzer's first note
        level = rms_dbfs(clip.samples)
        silent = level < SILENCE_DBFS
        example = self.example_for(audio)
        words = words or (example.words if example is not None else None)
        text = (text or "").strip()
        if len(text) > MAX_TRANSCRIPT_CHARS:
            text = text[:MAX_TRANSCRIPT_CHARS]
            notes.append(f"The transcript was cut to its first {MAX_TRANSCRIPT_CHARS} characters.")
        if not text and not silent and self.model.config.uses_text:
            # without words (Whisper unavailable, or it heard none) the analysis still runs: its
            # notes say the text side had nothing to read, and the voice carries the result
            text, words, status = self.transcribe(clip, whisper)
            notes.append(status)
        try:
            analysis = self.batcher((clip, SAMPLE_RATE, text, words))
        except (AnalysisError, AudioError, ValueError) as error:
            raise UserFacingError(str(error)) from error
        if silent:  # "trust the speech side" would be wrong: there is no speech
            own = [n for n in analysis.notes if n != NO_TRANSCRIPT]
            analysis.notes = [*own, silence_note(level, analysis, bool(text))]
        analysis.notes = list(dict.fromkeys(notes + analysis.notes))  # each note once
        return analysis, clip

    def ablation(self, variant: str) -> Analyzer | None:
        """The analyzer of `assets/checkpoints/<variant>` (None when it is not shipped)."""
        with self._lock:
            if variant not in self._ablations:
                directory = Path(self.settings.checkpoint).parent / variant
                try:
                    self._ablations[variant] = Analyzer(load_model(directory))
                except CheckpointError:
                    self._ablations[variant] = None
            return self._ablations[variant]

    def compare(self, audio, text: str) -> list[dict]:
        """Probabilities of the same input under every available variant."""
        clip = self.read_audio(audio)
        rows = []
        for variant in VARIANTS:
            analyzer = self.analyzer if variant == "full" else self.ablation(variant)
            if analyzer is None:
                continue
            analysis: Analysis = analyzer.analyze(clip, text=text or "")
            rows.append({"variant": variant, "label": analysis.label, **analysis.probs})
        return rows

    def describe_input(self, audio, text: str) -> str:
        """Markdown naming what Compare ran: the clip, its transcript, its true label if known."""
        name = Path(audio).name if isinstance(audio, str) else "the recording"
        text = (text or "").strip()
        said = f"“{html.escape(text)}”" if text else "none (Compare does not run Whisper)"
        line = f"**Clip:** `{html.escape(name)}` · **Transcript:** {said} · **True label:** "
        example = self.example_for(audio)
        if example is None:
            return line + "unknown (not a prepared example)"
        edited = "" if text == example.text else "; the transcript is not the example's"
        return line + f"{example.label} (the prepared example {example.name}{edited})"


def _load_bank(directory: str, model) -> ReferenceBank | None:
    if not directory or not Path(directory).exists():
        return None
    try:
        bank = ReferenceBank.load(directory)
    except BankError:
        return None
    return bank if bank.arrays["fused"].shape[1] == model.config.classifier.hidden else None
