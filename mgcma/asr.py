"""Speech recognition: a thin, offline-aware wrapper around openai-whisper.

:class:`Transcriber` turns a ``(N,)`` float32 mono 16 kHz waveform into a :class:`Transcript`
(text, word timestamps, language) with Whisper's own ``transcribe``. It exists for three reasons:

- **Offline behaviour.** The app must start without the internet. When offline (``offline=True``
  or ``HF_HUB_OFFLINE=1`` / ``MGCMA_OFFLINE=1``) a named model that is not already in the cache
  raises :class:`WhisperUnavailable` at once, with no download attempt; every other load failure
  (no network, missing or corrupt file) raises it too, and the message says the user can type
  the transcript instead.
- **Silence.** Whisper invents text for silent input ("Thank you."). Input quieter than
  :data:`SILENCE_DBFS` is never decoded, and decoded segments that Whisper itself rates as
  non-speech are dropped.
- **Sharing.** The app keeps one instance for all requests; loading and decoding hold a lock,
  because word timestamps install hooks on the model. The weights come from
  :func:`mgcma.whisper_backbone.load_whisper`, so a model whose speech encoder is the same Whisper
  file uses the very same tensors (one copy in memory), and a checkpoint file gets the alignment
  heads of the official model it is (tiny.en's for the shipped file): word times need them.

Checkpoints are read by ``whisper.load_model``, which uses torch's loader with
``weights_only=True`` (openai-whisper 20250625), so a local ``.pt`` path cannot run code on load.
"""

import contextlib
import hashlib
import math
import os
import pickle
import threading
import zipfile
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
import whisper
from whisper.tokenizer import LANGUAGES, TO_LANGUAGE_CODE
from whisper.utils import compression_ratio

from mgcma.audio import SILENCE_DBFS, rms_dbfs  # below SILENCE_DBFS Whisper would hallucinate
from mgcma.constants import SAMPLE_RATE
from mgcma.whisper_backbone import load_whisper

# Whisper's own non-speech rule (transcribe's defaults): a segment is dropped when the model is
# fairly sure nothing was said AND the decoded text is improbable.
NO_SPEECH_THRESHOLD = 0.6
LOGPROB_THRESHOLD = -1.0
# Fallback temperatures when a decode fails the compression/logprob checks; Whisper's default
# goes up to 1.0, which on short emotional clips mostly adds invented words and time.
TEMPERATURES = (0.0, 0.2, 0.4)
# An English-only Whisper writes English words for any speech, so its transcript of German reads
# as a (wrong) English sentence; its word probabilities tell. Below this mean word probability
# the app names the words in a note and does not read them (benchmarks/transcript_confidence.py).
UNSURE_BELOW = 0.5
# Whisper's own bound on a decode's zlib compression ratio: above it, the text is a loop
# ("yeah, yeah, yeah, …"), which the fallback temperatures did not break
REPETITIVE_ABOVE = 2.4
OFFLINE_ENV_VARS = ("HF_HUB_OFFLINE", "MGCMA_OFFLINE")
TRUE_VALUES = ("1", "true", "yes", "on")  # the values huggingface_hub accepts for its flags
TYPE_INSTEAD = "You can type the transcript instead."
# What a corrupt or foreign checkpoint raises inside torch.load / load_state_dict.
_LOAD_ERRORS = (
    OSError,
    RuntimeError,
    ValueError,
    EOFError,
    KeyError,
    TypeError,
    pickle.UnpicklingError,
    zipfile.BadZipFile,
)


class TranscriberError(RuntimeError):
    """Speech recognition failed; the message says what was wrong."""


class WhisperUnavailable(TranscriberError):  # noqa: N818 -- the app's name for this state
    """The Whisper model cannot be obtained (offline, not cached, missing or corrupt file)."""


@dataclass(frozen=True)
class Word:
    """One recognised word with its time span in seconds from the start of the clip."""

    word: str
    start: float
    end: float
    probability: float


@dataclass(frozen=True)
class Transcript:
    """What Whisper heard.

    Attributes
    ----------
    text : str
        The transcript, stripped; ``""`` when nothing was said.
    words : tuple of Word
        Word timestamps in seconds, in order, within ``[0, clip duration]``.
    language : str or None
        Language code Whisper used (given or detected); None when the model was not run.
    no_speech_prob : float
        Highest no-speech probability over the kept segments; 1.0 when the input was rejected.
    note : str or None
        Why the transcript is empty, for display; None for an ordinary transcript.
    """

    text: str
    words: tuple[Word, ...]
    language: str | None
    no_speech_prob: float
    note: str | None

    @property
    def confidence(self) -> float:
        """Whisper's mean word probability, in [0, 1]; 0.0 without words."""
        if not self.words:
            return 0.0
        return sum(word.probability for word in self.words) / len(self.words)

    @property
    def unsure(self) -> bool:
        """True when there are words but Whisper was unsure of them (`UNSURE_BELOW`) or they
        repeat in a loop (`REPETITIVE_ABOVE`): not words to read as what was said."""
        if not self.words:
            return False
        return self.confidence < UNSURE_BELOW or compression_ratio(self.text) > REPETITIVE_ABOVE

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-serialisable dict (words as a list of dicts)."""
        return {
            **asdict(self),
            "words": [asdict(word) for word in self.words],
            "confidence": self.confidence,
        }


def is_offline() -> bool:
    """True when ``HF_HUB_OFFLINE`` or ``MGCMA_OFFLINE`` asks for no network access."""
    return any(os.environ.get(name, "").strip().lower() in TRUE_VALUES for name in OFFLINE_ENV_VARS)


def default_download_root() -> str:
    """Whisper's cache folder: ``$XDG_CACHE_HOME/whisper`` or ``~/.cache/whisper``."""
    default = os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(os.getenv("XDG_CACHE_HOME", default), "whisper")


def _cached_checkpoint(name: str, download_root: str) -> tuple[str, str]:
    """Return ``(path, expected sha256)`` where whisper keeps the named model's checkpoint."""
    url = whisper._MODELS[name]  # whisper names the file after the URL and the URL carries its hash
    return os.path.join(download_root, os.path.basename(url)), url.split("/")[-2]


def _check_cached(name: str, download_root: str) -> None:
    """Raise WhisperUnavailable unless the named model is in the cache, intact (offline use).

    whisper's ``_download`` re-downloads a file whose checksum does not match, so a damaged cache
    entry is refused here rather than handed to whisper.
    """
    path, expected_sha256 = _cached_checkpoint(name, download_root)
    if not os.path.isfile(path):
        raise WhisperUnavailable(
            f"Whisper model {name!r} is not in the cache ({path} does not exist) and downloads "
            f"are off (offline mode: HF_HUB_OFFLINE or MGCMA_OFFLINE is set). {TYPE_INSTEAD}"
        )
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    if digest.hexdigest() != expected_sha256:
        raise WhisperUnavailable(
            f"Whisper model {name!r} in the cache ({path}) is damaged (checksum mismatch) and "
            f"cannot be re-downloaded offline; delete it and download it again. {TYPE_INSTEAD}"
        )


def _check_samples(samples: np.ndarray) -> np.ndarray:
    """Return ``samples`` as contiguous ``(N,)`` float32, or raise TranscriberError."""
    array = np.asarray(samples)
    if array.ndim != 1:
        raise TranscriberError(
            f"Expected mono samples of shape (N,), got shape {array.shape}; "
            "decode the audio with mgcma.audio.load_audio first."
        )
    if array.size == 0:
        raise TranscriberError("The audio is empty (0 samples); record or upload a clip.")
    if not np.issubdtype(array.dtype, np.number) or not np.all(np.isfinite(array)):
        raise TranscriberError(
            "The audio contains NaN or infinite values; decode it with mgcma.audio.load_audio."
        )
    return np.ascontiguousarray(array, dtype=np.float32)


def _check_language(language: str | None) -> str | None:
    """Return Whisper's code for ``language`` (a code or an English name), or raise."""
    if language is None:
        return None
    code = language.strip().lower()
    code = TO_LANGUAGE_CODE.get(code, code)
    if code not in LANGUAGES:
        raise TranscriberError(
            f"Unknown language {language!r}; pass a Whisper language code such as 'en', or None."
        )
    return code


def _is_non_speech(segment: dict[str, Any]) -> bool:
    """Whisper's rule: probably silence, and the decoded text is improbable.

    Scores that are not finite (a broken checkpoint) are treated as non-speech too.
    """
    no_speech_prob = float(segment["no_speech_prob"])
    avg_logprob = float(segment["avg_logprob"])
    if not (math.isfinite(no_speech_prob) and math.isfinite(avg_logprob)):
        return True
    return no_speech_prob > NO_SPEECH_THRESHOLD and avg_logprob < LOGPROB_THRESHOLD


def _clamp(value: float, low: float, high: float) -> float:
    """``value`` limited to ``[low, high]``; NaN becomes ``low``."""
    return low if math.isnan(value) else min(max(value, low), high)


def _words_of(segments: list[dict[str, Any]], duration: float) -> tuple[Word, ...]:
    """Word timestamps of ``segments``, clamped into ``[0, duration]`` with start <= end.

    Whisper can place the last word past the end of the audio (timestamps come from tokens on a
    30-s grid), so times are clamped rather than trusted.
    """
    words = []
    for segment in segments:
        for item in segment.get("words", []):
            start = _clamp(float(item["start"]), 0.0, duration)
            end = _clamp(float(item["end"]), start, duration)
            probability = _clamp(float(item["probability"]), 0.0, 1.0)
            words.append(Word(str(item["word"]), start, end, probability))
    return tuple(words)


def _to_transcript(result: dict[str, Any], duration: float) -> Transcript:
    """Keep Whisper's speech segments and build the Transcript."""
    language = result.get("language")
    segments = result.get("segments", [])
    kept = [segment for segment in segments if not _is_non_speech(segment)]
    if not kept:
        note = (
            "Whisper heard only non-speech; the transcript was discarded."
            if segments
            else "Whisper heard no speech."
        )
        return Transcript("", (), language, 1.0, note)
    text = "".join(segment["text"] for segment in kept).strip()
    no_speech_prob = max(float(segment["no_speech_prob"]) for segment in kept)
    note = None if text else "Whisper heard no words."
    return Transcript(text, _words_of(kept, duration), language, no_speech_prob, note)


@contextlib.contextmanager
def _encode_each_window_once(model: whisper.Whisper):
    """Reuse the encoder's output for the same 30-s window within one ``transcribe`` call.

    Whisper encodes a window for decoding, again for each fallback temperature, and once more
    (without fused attention, so slower) to align words with their times: on CPU that third pass
    cost as much as the rest of a 4-s clip's transcription. The same window tensor comes back
    each time; while it is held here its memory cannot be reused, so (pointer, shape, strides,
    in-place version) identify its content.
    """
    encoder = model.encoder
    forward = encoder.forward
    held: dict = {}

    def remembering_forward(mel):
        key = (mel.data_ptr(), tuple(mel.shape), mel.stride(), mel.dtype, mel._version)
        if held.get("key") != key:
            held.update(key=key, mel=mel, output=forward(mel))
        return held["output"]

    encoder.forward = remembering_forward
    try:
        yield
    finally:
        del encoder.forward  # the class's forward again
        held.clear()


class Transcriber:
    """Whisper speech recognition, loaded lazily and shared between threads.

    Parameters
    ----------
    model : str
        A Whisper model name (see ``whisper.available_models()``) or a path to a Whisper
        checkpoint file (``.pt`` with ``dims`` and ``model_state_dict``).
    device : str, optional
        Torch device; default ``"cuda"`` when available, else ``"cpu"``.
    download_root : str, optional
        Where named models are cached; default whisper's (``$XDG_CACHE_HOME/whisper`` or
        ``~/.cache/whisper``).
    offline : bool, optional
        Never download; default true when ``HF_HUB_OFFLINE`` or ``MGCMA_OFFLINE`` is set.
    max_tokens : int, optional
        Most text tokens decoded per 30-s window (Whisper's ``sample_len``); default Whisper's
        (224). A small value bounds the time a bad decode can take.
    """

    def __init__(
        self,
        model: str = "base",
        device: str | None = None,
        download_root: str | None = None,
        *,
        offline: bool | None = None,
        max_tokens: int | None = None,
    ) -> None:
        self._model_name = str(model)
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.download_root = download_root or default_download_root()
        self.offline = is_offline() if offline is None else offline
        if max_tokens is not None and max_tokens < 1:
            raise TranscriberError(f"max_tokens must be at least 1, got {max_tokens}.")
        self.max_tokens = max_tokens
        self._model: whisper.Whisper | None = None
        self._lock = threading.RLock()

    @property
    def name(self) -> str:
        """The model name or checkpoint path this transcriber was given."""
        return self._model_name

    @property
    def is_named_model(self) -> bool:
        """True for an official Whisper name, False for a checkpoint path."""
        return self._model_name in whisper.available_models()

    def load(self) -> "Transcriber":
        """Load the model now (it otherwise loads on first use) and return ``self``.

        Raises
        ------
        WhisperUnavailable
            When the model cannot be found, downloaded or read.
        """
        with self._lock:
            if self._model is None:
                self._model = self._load_model()
        return self

    def _load_model(self) -> whisper.Whisper:
        """Check availability, then load through ``whisper.load_model``."""
        name = self._model_name
        if self.is_named_model:
            where = f"cache {self.download_root}"
            if self.offline:
                _check_cached(name, self.download_root)
        elif os.path.isfile(name):
            where = f"file {name}"
        else:
            raise WhisperUnavailable(
                f"Whisper model {name!r} is neither a Whisper model name "
                f"({', '.join(whisper.available_models())}) nor an existing checkpoint file. "
                f"{TYPE_INSTEAD}"
            )
        try:
            # A path goes to whisper, which reads it with torch.load(weights_only=True).
            return load_whisper(name, device=self.device, download_root=self.download_root)
        except _LOAD_ERRORS as error:
            raise WhisperUnavailable(
                f"Whisper model {name!r} could not be loaded from {where} "
                f"({type(error).__name__}: {error}). {TYPE_INSTEAD}"
            ) from error

    def transcribe(self, samples: np.ndarray, language: str | None = None) -> Transcript:
        """Transcribe a clip with word timestamps.

        Parameters
        ----------
        samples : np.ndarray
            ``(N,)`` float32 mono at :data:`~mgcma.constants.SAMPLE_RATE` (16 kHz).
        language : str, optional
            Language code or English name; None lets Whisper detect it.

        Returns
        -------
        Transcript
            Empty text with a ``note`` for silence or non-speech; the model is not run when the
            level is below :data:`SILENCE_DBFS`.

        Raises
        ------
        TranscriberError
            For empty, non-finite or multi-channel input, or an unknown language.
        WhisperUnavailable
            When the model cannot be loaded.
        """
        audio = _check_samples(samples)
        language = _check_language(language)
        level = rms_dbfs(audio)
        if level < SILENCE_DBFS:
            return Transcript("", (), None, 1.0, f"No speech detected (level {level:.0f} dBFS).")
        model = self.load()._model
        # word timestamps add hooks to the shared model while decoding
        with self._lock, _encode_each_window_once(model):
            result = model.transcribe(
                audio,
                language=language,
                word_timestamps=True,
                fp16=torch.device(self.device).type == "cuda",
                condition_on_previous_text=False,
                temperature=TEMPERATURES,
                no_speech_threshold=NO_SPEECH_THRESHOLD,
                logprob_threshold=LOGPROB_THRESHOLD,
                verbose=None,
                sample_len=self.max_tokens,
            )
        return _to_transcript(result, duration=len(audio) / SAMPLE_RATE)

    def __repr__(self) -> str:
        state = "loaded" if self._model is not None else "not loaded"
        return f"Transcriber({self._model_name!r}, device={self.device!r}, {state})"
