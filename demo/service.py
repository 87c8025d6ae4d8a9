"""What the app does, without the layout: load once, analyse, turn results into figures.

`Explorer` holds the model, the reference bank, the ablation checkpoints, the example clips and
the Whisper transcriber, all loaded once and shared by every request. Every user-facing failure
becomes a `UserFacingError` whose message the app shows as it is.
"""

from __future__ import annotations

import html
import json
import logging
import os
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from demo import plots
from demo.batcher import Batcher
from demo.examples import Example, load_examples
from demo.notes import cause, silence_note
from mgcma.analysis import NO_TRANSCRIPT, Analysis, AnalysisError, Analyzer
from mgcma.asr import TYPE_INSTEAD, Transcriber, TranscriberError
from mgcma.audio import Audio, AudioError, load_audio, rms_dbfs
from mgcma.bank import BankError, ReferenceBank
from mgcma.checkpoint import CheckpointError, load_model
from mgcma.config import VARIANTS
from mgcma.constants import SAMPLE_RATE

ROOT = Path(__file__).resolve().parents[1]
ASSETS = ROOT / "assets"
MAX_TRANSCRIPT_CHARS = 2_000  # longer text is cut (the text encoder reads ≤ 64 sub-words anyway)
SILENT_DBFS = -60.0  # quieter than this is no speech: speech recorded at all sits near -40..-10
SHIPPED_WHISPER = ASSETS / "backbones" / "whisper-tiny.en.pt"  # also the model's speech encoder
WHISPER_CHOICES = ("tiny", "base", "small")  # downloaded by openai-whisper on first use
MAP_SPACES = ("speech & text (instance space)", "fused")
NEIGHBOURS = 6  # nearest bank utterances shown
SAME_CLIP_DISTANCE = 5e-5  # cosine distance that rounds to 0.0000: the same utterance
MAX_BATCH = int(os.environ.get("MGCMA_MAX_BATCH", "16"))  # requests sharing one forward pass
DISPLAY_POINTS = 1200  # bank utterances drawn on the maps (searches still use the whole bank):
# every drawn point travels to the browser and is rendered there, on every request


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


class UserFacingError(ValueError):
    """A problem with the input or the setup, phrased for the person using the app."""


@dataclass
class Settings:
    checkpoint: str = str(ASSETS / "checkpoints" / "whisper_minilm")
    bank: str = str(ASSETS / "bank")
    examples: str = str(ASSETS / "examples")
    whisper: str = str(SHIPPED_WHISPER)

    @classmethod
    def from_env(cls, **given) -> Settings:
        settings = cls(
            checkpoint=os.environ.get("MGCMA_CHECKPOINT", cls.checkpoint),
            bank=os.environ.get("MGCMA_BANK", cls.bank),
            examples=os.environ.get("MGCMA_EXAMPLES", cls.examples),
            whisper=os.environ.get("MGCMA_WHISPER", cls.whisper),
        )
        for name, value in given.items():
            if value is not None:
                setattr(settings, name, value)
        return settings


def _own(neighbour: dict) -> str:
    """A neighbour's transcript, marked when it is the analysed clip itself (distance 0 to 4
    decimals: the examples, for one, are utterances of the bank)."""
    if neighbour["distance"] < SAME_CLIP_DISTANCE:
        return f"{neighbour['text']} (this very clip: it is in the bank)"
    return neighbour["text"]


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
        self.shown = _display_subset(len(self.bank) if self.bank else 0)
        self.analyzer = Analyzer(self.model, self.bank)
        self.examples = load_examples(settings.examples)
        self._ablations: dict[str, Analyzer | None] = {}
        self._transcribers: dict[str, Transcriber] = {}
        self._whisper_failures: dict[str, str] = {}  # name → why it could not transcribe
        self._lock = threading.Lock()
        # concurrent requests are analysed together; each still gets its own result or error
        self.batcher = Batcher(
            lambda items: self.analyzer.analyze_many(items, batch_size=MAX_BATCH, errors="return"),
            max_batch=MAX_BATCH,
        )
        self.analyzer.analyze(np.zeros(16000, dtype=np.float32) + 1e-3, 16000, "warm up")
        if Path(settings.whisper).is_file():  # a local Whisper: warm it up without a download
            threading.Thread(target=self._warm_up_whisper, daemon=True).start()

    def _warm_up_whisper(self) -> None:
        """Load the default Whisper and transcribe an example once, off the request path: the
        first transcription with words compiles their alignment (numba), ≈ 3 s on 2 cores."""
        try:
            if self.examples:
                speech = load_audio(self.examples[0].audio)
            else:
                speech = load_audio((SAMPLE_RATE, np.zeros(SAMPLE_RATE, np.float32)))
            self.transcribe(speech, self.settings.whisper)
        except Exception as error:  # noqa: BLE001 - the first request will say what is wrong
            log.warning("Whisper warm-up failed: %s", error)

    def whisper_status(self, name: str | None = None) -> str:
        """One plain sentence on whether Whisper can transcribe here, checked without loading."""
        import whisper

        from mgcma import asr

        name = name or self.settings.whisper
        if name in self._whisper_failures:  # tried and failed: what the header said is moot
            reason = html.escape(self._whisper_failures[name], quote=False)
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

    # -- inputs -------------------------------------------------------------------------------

    def read_audio(self, audio) -> Audio:
        """A file path (upload, recording or API) or Gradio's (rate, array) → 16-kHz audio."""
        if audio is None or (isinstance(audio, str) and not audio):
            raise UserFacingError("No audio: record or upload a clip first.")
        try:
            return load_audio(audio if not isinstance(audio, list) else tuple(audio))
        except AudioError as error:
            raise UserFacingError(f"The audio could not be used: {error}") from error

    def transcribe(self, audio: Audio, whisper: str | None = None) -> tuple[str, list, str]:
        """(text, word timings, status message) from Whisper; when Whisper cannot run, no text
        and a message that says why (shown beside the transcript, not as an error)."""
        name = whisper or self.settings.whisper
        with self._lock:
            transcriber = self._transcribers.setdefault(name, Transcriber(name))
        try:
            transcript = transcriber.transcribe(audio.samples)
        except TranscriberError as error:
            log.warning("Whisper %s could not transcribe: %s", name, error)
            reason = str(error).replace(TYPE_INSTEAD, "").strip()  # said once, below
            self._whisper_failures[name] = cause(error, reason)
            return "", [], f"Whisper is not available here: {reason} Type the transcript instead."
        self._whisper_failures.pop(name, None)
        words = [{"word": w.word, "start": w.start, "end": w.end} for w in transcript.words]
        status = transcript.note or f"Transcribed with Whisper {transcriber.name}."
        return transcript.text, words, status

    # -- analysis -----------------------------------------------------------------------------

    def analyze(self, audio, text: str, words=None, whisper: str | None = None) -> tuple:
        """(Analysis, Audio, notes); an empty transcript asks Whisper first."""
        clip = self.read_audio(audio)
        notes = []  # the clip's own notice (cut to 30 s) is the Analyzer's first note
        level = rms_dbfs(clip.samples)
        silent = level <= SILENT_DBFS
        words = words or self.example_words(audio)
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
            analysis = analyzer.analyze(clip, text=text or "")
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

    # -- figures ------------------------------------------------------------------------------

    def figures(self, analysis: Analysis, clip: Audio, head=None, direction="text→speech"):
        """(prediction, token, instance, distribution) plotly figures; None where not drawn."""
        prediction = plots.prediction_bars(
            analysis.probs, analysis.speech_probs, analysis.text_probs
        )
        return (
            prediction,
            self.token_figure(analysis, clip, head, direction),
            self.instance_view(analysis)[0],
            self.distribution_figure(analysis),
        )

    def token_figure(
        self, analysis: Analysis, clip: Audio | None, head=None, direction="text→speech"
    ):
        attention = (
            analysis.attention_text_to_speech
            if direction.startswith("text")
            else analysis.attention_speech_to_text
        )
        if attention is None:
            return None
        if not analysis.words:  # the notes say why: no transcript, or Whisper heard nothing
            return plots.placeholder(
                "No words to align with the speech: type the transcript (or transcribe it) "
                "and analyse again."
            )
        spectrogram = plots.spectrogram(clip.samples) if clip is not None else None
        return plots.token_heatmap(
            analysis.words,
            analysis.frame_times,
            attention,
            direction=direction,
            head=head,
            spectrogram=spectrogram,
            word_times=analysis.word_times,
            duration=analysis.duration,
        )

    def instance_view(self, analysis: Analysis, space: str = MAP_SPACES[0]):
        """(figure, neighbour rows) on the joint speech–text map or on the fused map."""
        if self.bank is None or not analysis.map_position:
            return None, []
        meta, arrays, shown = self.bank.meta, self.bank.arrays, self.shown
        labels = [meta["labels"][i] for i in shown]
        texts = [meta["texts"][i] for i in shown]
        if space == MAP_SPACES[0]:  # instance space: speech and text share one map
            xy = np.concatenate([arrays["speech_xy"][shown], arrays["text_xy"][shown]])
            texts = [f"speech · {t}" for t in texts] + [f"text · {t}" for t in texts]
            labels = labels * 2
            points = {k: v for k, v in analysis.map_position.items() if k in ("speech", "text")}
            neighbours = self.bank.nearest(analysis.speech_embedding, "speech", NEIGHBOURS)
            title = "Instance level: this clip's speech and words among the bank's"
        else:
            xy = arrays["fused_xy"][shown]
            points = {"fused": analysis.map_position["fused"]}
            neighbours = analysis.neighbours or []
            title = "Fused representation: what the classifier sees"
        figure = plots.instance_map(xy, labels, points, neighbours, bank_text=texts, title=title)
        rows = [[_own(n), n["label"], n["distance"], n["speaker"]] for n in neighbours]
        return figure, rows

    def example_for(self, audio) -> Example | None:
        """The shipped example `audio` is (matched by file name: Gradio keeps it), or None."""
        if not isinstance(audio, str):
            return None
        name = Path(audio).name
        return next((e for e in self.examples if Path(e.audio).name == name), None)

    def example_words(self, audio) -> list | None:
        """True word timings when `audio` is one of the shipped examples."""
        example = self.example_for(audio)
        return example.words if example is not None else None

    def distribution_figure(self, analysis: Analysis):
        if analysis.speech_mu is None:
            return None
        axes = center = bank_points = labels = None
        if self.bank is not None:
            axes, center = self.bank.arrays["pca_axes"], self.bank.arrays["pca_center"]
            bank_points = self.bank.projected_means()["speech"][self.shown]
            labels = [self.bank.meta["labels"][i] for i in self.shown]
        else:  # no bank: the first two Gaussian dimensions
            g = analysis.speech_mu.shape[0]
            axes, center = np.eye(2, g, dtype=np.float32), np.zeros(g, dtype=np.float32)
        return plots.distribution_view(
            analysis.speech_mu,
            analysis.speech_sigma,
            analysis.text_mu,
            analysis.text_sigma,
            axes=axes,
            center=center,
            w2=analysis.w2_distance,
            similarity=analysis.similarity,
            overlap=analysis.overlap,
            percentiles=analysis.percentiles,
            bank_points=bank_points,
            bank_labels=labels,
        )


def _display_subset(count: int) -> np.ndarray:
    """A fixed, seeded subset of bank indices to draw (all of a small bank)."""
    if count <= DISPLAY_POINTS:
        return np.arange(count)
    return np.sort(np.random.default_rng(0).choice(count, DISPLAY_POINTS, replace=False))


def _load_bank(directory: str, model) -> ReferenceBank | None:
    if not directory or not Path(directory).exists():
        return None
    try:
        bank = ReferenceBank.load(directory)
    except BankError:
        return None
    return bank if bank.arrays["fused"].shape[1] == model.config.classifier.hidden else None


def write_json(analysis: Analysis) -> str:
    """The analysis as a JSON file (Gradio copies it to its cache and serves it)."""
    folder = Path(tempfile.mkdtemp(prefix="mgcma-"))
    path = folder / "analysis.json"
    path.write_text(json.dumps(analysis.to_dict(), indent=1))
    return str(path)


def write_html(figures) -> str:
    """The figures as one offline HTML page (plotly.js inlined once)."""
    import plotly.io as pio

    drawn = [f for f in figures if f is not None]
    parts = [
        pio.to_html(f, include_plotlyjs=(i == 0), full_html=False) for i, f in enumerate(drawn)
    ]
    folder = Path(tempfile.mkdtemp(prefix="mgcma-"))
    path = folder / "figures.html"
    path.write_text(
        "<!doctype html><html><head><meta charset='utf-8'><title>MGCMA analysis"
        "</title></head><body>" + "\n".join(parts) + "</body></html>"
    )
    return str(path)
