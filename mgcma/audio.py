"""Audio in: decoded once, at the edge, to 16-kHz mono float32.

:func:`load_audio` is the one decoder: a file path, a file's bytes or the browser's
``(sample_rate, samples)`` tuple in, an :class:`Audio` out (``(N,)`` float32 mono at 16 kHz,
finite, peak at most 1.0). Everything past the edge (the Analyzer, Whisper, the figures) takes
that and never decodes again; :func:`decoded_samples` checks it and converts nothing.

Files are read with soundfile (libsndfile: WAV, FLAC, OGG, MP3). Phones record M4A/AAC, which
libsndfile cannot read: that goes through ffmpeg where it is installed (ffprobe gives the rate,
channels and duration; ffmpeg gives raw float frames; the rest is the same path). Resampling is
torchaudio's. At most ``max_seconds`` of a long file is ever read. Every failure raises
:class:`AudioError`, whose message says what was wrong and what to do.
"""

import json
import math
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, NamedTuple

import numpy as np
import soundfile as sf
import torch
import torchaudio

from mgcma.constants import MAX_SAMPLES, MAX_SECONDS, SAMPLE_RATE

MIN_SECONDS = 0.05  # the speech encoder needs at least one 25-ms window; 50 ms leaves margin
MIN_SAMPLE_RATE = 1_000
MAX_SAMPLE_RATE = 384_000
MAX_CHANNELS = 32  # a 2-D array is (N, C), never guessed; more columns is refused (a (C, N)?)
SILENCE_DBFS = -55.0  # RMS below this is room noise at most: no speech to hear or transcribe
FFMPEG_TIMEOUT_S = 120  # a decode that takes longer than this is treated as a failure
# torchaudio's sinc kernel has (to/g) × (from/g) entries (g = gcd); an odd rate such as 44_101 Hz
# would need gigabytes, so such a pair is resampled at the nearest ratio whose kernel fits: off
# by at most 0.025 % in speed and pitch over every rate from 1 to 384 kHz (0.4 cent)
MAX_RESAMPLE_KERNEL = 4_000_000
ON_TOO_LONG = ("truncate", "error")
SUPPORTED_FORMATS_HINT = "use a WAV, FLAC, OGG or MP3 file"
DECODE_FIRST = (
    "decode it with mgcma.load_audio(...) (a path, file bytes or a (sample_rate, samples) "
    "tuple), which mixes to mono and resamples to 16 kHz"
)


class AudioError(ValueError):
    """Audio input that cannot be analysed; the message says what was wrong and what to do."""


@dataclass(frozen=True)
class Audio:
    """Decoded audio ready for the speech encoder and Whisper.

    Attributes
    ----------
    samples : np.ndarray
        ``(N,)`` float32 mono at ``sample_rate``, finite, peak at most 1.0, contiguous.
    sample_rate : int
        Always :data:`~mgcma.constants.SAMPLE_RATE` (16 kHz).
    source_rate, source_channels : int
        Sample rate and channel count of the input (channels are averaged to mono).
    source_seconds : float
        Duration of the input before truncation.
    truncated : bool
        True when the input was longer than ``max_seconds`` and only its start was kept.
    """

    samples: np.ndarray
    sample_rate: int
    source_rate: int
    source_channels: int
    source_seconds: float
    truncated: bool

    @property
    def seconds(self) -> float:
        """Duration of ``samples`` in seconds."""
        return len(self.samples) / self.sample_rate

    @property
    def notice(self) -> str | None:
        """A message for the user when the input was truncated, else None."""
        if not self.truncated:
            return None
        return (
            f"Audio was {self.source_seconds:.1f} s long; "
            f"only the first {self.seconds:.1f} s were analysed."
        )


class _Decoded(NamedTuple):
    """What a decoder read: ``frames`` ``(N, C)`` at ``rate``, before mixing and resampling."""

    frames: np.ndarray
    rate: int
    source_seconds: float
    truncated: bool


# ----------------------------------------------------------------------------- decoded audio


def decoded_samples(speech: Audio | np.ndarray, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """The ``(N,)`` float32 16-kHz samples of decoded speech, checked; nothing is converted.

    Parameters
    ----------
    speech : an :class:`Audio` from :func:`load_audio`, or its samples: ``(N,)`` float32 mono
        at 16 kHz, finite, ``MIN_SECONDS`` to ``MAX_SECONDS`` long
    sample_rate : must be 16 000 (another rate is an error, not an analysis at the wrong speed)

    Raises
    ------
    AudioError
        For anything else, saying to decode it with :func:`load_audio`.
    """
    if sample_rate != SAMPLE_RATE:
        raise AudioError(
            f"decoded audio is at {SAMPLE_RATE} Hz, not {sample_rate}; {DECODE_FIRST}."
        )
    if isinstance(speech, Audio):
        return speech.samples  # checked when it was made
    if not isinstance(speech, np.ndarray) or speech.ndim != 1 or speech.dtype != np.float32:
        got = f"{type(speech).__name__} {getattr(speech, 'dtype', '')} {np.shape(speech)}"
        raise AudioError(
            f"expected decoded audio (an Audio, or (N,) float32 samples at 16 kHz), got {got}; "
            f"{DECODE_FIRST}."
        )
    _check_finite(speech)
    _check_length(len(speech), len(speech) / SAMPLE_RATE)
    if len(speech) > MAX_SAMPLES:
        raise AudioError(f"audio is longer than {MAX_SECONDS:.0f} s; {DECODE_FIRST} (and cuts).")
    return speech


def _check_finite(samples: np.ndarray) -> None:
    bad = int(np.count_nonzero(~np.isfinite(samples)))
    if bad:
        raise AudioError(
            f"audio contains {bad} NaN or infinite samples; fix the source "
            "(e.g. numpy.nan_to_num) before analysis."
        )


def _check_length(num_samples: int, seconds: float) -> None:
    if num_samples == 0:
        raise AudioError("audio is empty (0 samples); record or pass a longer clip.")
    if seconds < MIN_SECONDS:
        raise AudioError(
            f"audio is {seconds:.3f} s long; at least {MIN_SECONDS} s is needed "
            "(the speech encoder reads 25-ms windows). Pass a longer clip."
        )


# ----------------------------------------------------------------------------- pure helpers


def to_float32(array: np.ndarray) -> np.ndarray:
    """Samples of any common dtype → float32 of the same shape, peak at most 1.0.

    int16 /32768, int32 /2**31, int8 /128, uint8 (x − 128)/128; floats are kept (scaled down
    when their peak exceeds 1.0). Other dtypes, and NaN or infinite samples, raise AudioError.
    """
    array = np.asarray(array)
    integer_scales = {np.int16: 32768.0, np.int32: 2.0**31, np.int8: 128.0}
    if array.dtype.type in integer_scales:
        samples = (array / integer_scales[array.dtype.type]).astype(np.float32)
    elif array.dtype == np.uint8:
        samples = ((array.astype(np.float32) - 128.0) / 128.0).astype(np.float32)
    elif array.dtype.kind == "f":
        samples = array.astype(np.float32)
        _check_finite(samples)
    else:
        raise AudioError(
            f"unsupported audio dtype {array.dtype}; convert to int16 or float32 "
            "(floats in [-1, 1]) first."
        )
    return _scale_to_peak_one(samples)


def _scale_to_peak_one(samples: np.ndarray) -> np.ndarray:
    """Scale float samples down so their peak is at most 1.0; never amplify."""
    peak = float(np.max(np.abs(samples))) if samples.size else 0.0
    return samples / np.float32(peak) if peak > 1.0 else samples


def resample(samples: np.ndarray, from_rate: int, to_rate: int = SAMPLE_RATE) -> np.ndarray:
    """``(N,)`` at ``from_rate`` → ``(ceil(N · to_rate / from_rate),)`` float32, contiguous,
    with ``torchaudio.functional.resample`` (windowed sinc); rates in [1000, 384000] Hz."""
    from_rate = _check_sample_rate(from_rate, "from_rate")
    to_rate = _check_sample_rate(to_rate, "to_rate")
    samples = np.ascontiguousarray(samples, dtype=np.float32)
    if from_rate == to_rate:
        return samples
    ratio = Fraction(from_rate, to_rate)
    if ratio.numerator * ratio.denominator > MAX_RESAMPLE_KERNEL:
        ratio = ratio.limit_denominator(max(1, math.isqrt(int(MAX_RESAMPLE_KERNEL / ratio))))
    waveform = torch.from_numpy(samples)  # (N,)
    resampled = torchaudio.functional.resample(waveform, ratio.numerator, ratio.denominator)
    return np.ascontiguousarray(resampled.numpy(), dtype=np.float32)  # (N',)


def rms_dbfs(samples: np.ndarray) -> float:
    """RMS level in dBFS (0 dBFS is a full-scale square wave); -120.0 for silence or no samples.

    Below :data:`SILENCE_DBFS` a clip is silent: Whisper does not run and the app says so.
    """
    samples = np.asarray(samples, dtype=np.float64)
    rms = float(np.sqrt(np.mean(np.square(samples)))) if samples.size else 0.0
    return max(-120.0, 20.0 * math.log10(rms)) if rms > 0.0 else -120.0


def _check_sample_rate(sample_rate: Any, what: str = "sample_rate") -> int:
    """Return ``sample_rate`` as an int or raise AudioError when it is not a plausible rate."""
    is_int = isinstance(sample_rate, int | np.integer) and not isinstance(sample_rate, bool)
    if not is_int or not MIN_SAMPLE_RATE <= int(sample_rate) <= MAX_SAMPLE_RATE:
        raise AudioError(
            f"{what} must be an int between {MIN_SAMPLE_RATE} and {MAX_SAMPLE_RATE} Hz, "
            f"got {sample_rate!r}; pass the rate the audio was recorded at, e.g. 16000 or 44100."
        )
    return int(sample_rate)


# ----------------------------------------------------------------------------- the edge


def load_audio(
    source: str | os.PathLike | bytes | tuple[int, np.ndarray],
    *,
    max_seconds: float = MAX_SECONDS,
    on_too_long: str = "truncate",
) -> Audio:
    """Decode a file, a file's bytes or the browser's ``(rate, samples)`` to an :class:`Audio`.

    Parameters
    ----------
    source : a path to a file soundfile reads (wav, flac, ogg, mp3) or, with ffmpeg, any other
        (m4a, ...); the bytes of such a file; or ``(sample_rate, samples)``, ``samples`` a
        numpy array ``(N,)`` or ``(N, C)``, channels last as Gradio and soundfile give them
    max_seconds : longest duration analysed; a longer input is never read past it
    on_too_long : "truncate" keeps the first ``max_seconds`` (``Audio.notice`` says so);
        "error" raises

    Returns
    -------
    Audio
        ``samples`` ``(N,)`` float32 at 16 kHz, finite, peak at most 1.0.

    Raises
    ------
    AudioError
        On every failure: missing, empty or undecodable file; bad rate, dtype or shape; NaN or
        infinite samples; shorter than MIN_SECONDS; longer than max_seconds with "error".
    """
    if on_too_long not in ON_TOO_LONG or not MIN_SECONDS <= max_seconds < math.inf:
        raise AudioError(
            f"on_too_long must be one of {ON_TOO_LONG} (got {on_too_long!r}) and max_seconds "
            f"a number of at least {MIN_SECONDS} s (got {max_seconds!r})."
        )
    if isinstance(source, tuple):
        decoded = _from_tuple(source, max_seconds, on_too_long)
    elif isinstance(source, bytes | bytearray):
        decoded = _from_bytes(bytes(source), max_seconds, on_too_long)
    elif isinstance(source, str | os.PathLike):
        decoded = _from_path(os.fspath(source), max_seconds, on_too_long)
    elif isinstance(source, np.ndarray | torch.Tensor):
        raise AudioError(
            "an array needs its sample rate: pass load_audio((sample_rate, samples)) with "
            "samples a numpy array (N,) or (N, C)."
        )
    else:
        raise AudioError(
            f"cannot load audio from {type(source).__name__}; pass a path, file bytes "
            "or a (sample_rate, samples) tuple."
        )
    return _finish(decoded, max_seconds)


def _frames_to_keep(
    total_frames: int, rate: int, max_seconds: float, on_too_long: str
) -> tuple[int, bool]:
    """Return ``(frames to read, truncated)``; raise when too long and on_too_long='error'."""
    max_frames = math.ceil(max_seconds * rate)
    if total_frames <= max_frames:
        return total_frames, False
    if on_too_long == "error":
        raise AudioError(
            f"audio is {total_frames / rate:.1f} s long; at most {max_seconds:.1f} s can be "
            "analysed. Trim it, or pass on_too_long='truncate' to keep the start."
        )
    return max_frames, True


def _from_tuple(source: tuple, max_seconds: float, on_too_long: str) -> _Decoded:
    if len(source) != 2:
        raise AudioError("a tuple source must be (sample_rate, samples), as Gradio gives it.")
    rate = _check_sample_rate(source[0], "the tuple's sample rate")
    samples = source[1]
    if not isinstance(samples, np.ndarray):
        raise AudioError(
            f"the tuple's samples must be a numpy array (N,) or (N, C), "
            f"not {type(samples).__name__} (a torch tensor: pass tensor.numpy())."
        )
    if samples.ndim not in (1, 2):
        raise AudioError(
            f"audio samples must be 1-D (N,) or 2-D (N, C), got shape {samples.shape}; "
            "pass one clip at a time."
        )
    frames = samples[:, None] if samples.ndim == 1 else samples  # (N, C)
    if not 1 <= frames.shape[1] <= MAX_CHANNELS:
        raise AudioError(
            f"audio samples of shape {samples.shape} would have {frames.shape[1]} channels; at "
            f"most {MAX_CHANNELS} are supported. Pass (N,) or (N, C), channels last; transpose "
            "a channels-first (C, N) array with samples.T."
        )
    keep, truncated = _frames_to_keep(len(frames), rate, max_seconds, on_too_long)
    return _Decoded(frames[:keep], rate, len(frames) / rate, truncated)


def _from_path(path: str, max_seconds: float, on_too_long: str) -> _Decoded:
    if not os.path.exists(path):
        raise AudioError(f"audio file not found: '{path}'; check the path.")
    if os.path.isdir(path):
        raise AudioError(f"'{path}' is a directory, not an audio file; pass a file.")
    if os.path.getsize(path) == 0:  # the name only: an upload's path is the server's business
        name = os.path.basename(path)
        raise AudioError(f"audio file '{name}' is empty (0 bytes); record or export it again.")
    return _decode_file(path, os.path.basename(path), max_seconds, on_too_long)


def _from_bytes(data: bytes, max_seconds: float, on_too_long: str) -> _Decoded:
    if len(data) == 0:
        raise AudioError("the audio bytes are empty (0 bytes); pass the contents of a file.")
    handle, path = tempfile.mkstemp(prefix="mgcma-audio-")  # ffmpeg needs a real file
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
        return _decode_file(path, f"<{len(data)} bytes>", max_seconds, on_too_long)
    finally:
        os.unlink(path)


def _decode_file(path: str, name: str, max_seconds: float, on_too_long: str) -> _Decoded:
    """Decode a file on disk: soundfile first, then ffmpeg when it is installed."""
    try:
        return _read_with_soundfile(path, max_seconds, on_too_long)
    except (RuntimeError, TypeError, sf.SoundFileError) as error:
        reasons = [f"soundfile: {error}"]
    if shutil.which("ffmpeg") is not None and shutil.which("ffprobe") is not None:
        try:
            return _read_with_ffmpeg(path, max_seconds, on_too_long)
        except RuntimeError as error:
            reasons.append(str(error))
    else:
        reasons.append("ffmpeg is not installed, so only formats libsndfile reads are supported")
    with open(path, "rb") as file:
        head = file.read(64)
    reasons = [_describe_content(head)] + [reason.replace(path, name) for reason in reasons]
    raise AudioError(
        f"could not decode '{name}' as audio ({'; '.join(reasons)}); {SUPPORTED_FORMATS_HINT}."
    )


def _read_with_soundfile(path: str, max_seconds: float, on_too_long: str) -> _Decoded:
    """Decode with libsndfile, reading at most ``max_seconds``; lets open errors propagate."""
    with sf.SoundFile(path) as sound_file:
        rate, total = sound_file.samplerate, sound_file.frames
        keep, truncated = _frames_to_keep(total, rate, max_seconds, on_too_long)
        frames = sound_file.read(frames=keep, dtype="float32", always_2d=True)  # (N, C)
    if len(frames) < keep:  # the header promised more than the file holds
        return _Decoded(frames, rate, len(frames) / rate, False)
    return _Decoded(frames, rate, total / rate, truncated)


def _read_with_ffmpeg(path: str, max_seconds: float, on_too_long: str) -> _Decoded:
    """Decode the first audio stream through ffmpeg at its own rate and channels."""
    command = ["ffprobe", "-v", "error", "-select_streams", "a:0", "-of", "json"]
    command += ["-show_entries", "stream=sample_rate,channels:format=duration", path]
    try:
        info = json.loads(_run(command))
        stream, seconds = info["streams"][0], float(info["format"]["duration"])
        rate, channels = int(stream["sample_rate"]), int(stream["channels"])
    except (ValueError, KeyError, IndexError, TypeError) as error:
        raise RuntimeError("ffmpeg: no audio stream found") from error
    keep, truncated = _frames_to_keep(round(seconds * rate), rate, max_seconds, on_too_long)
    command = ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-i", path]
    command += ["-map", "0:a:0", "-t", f"{keep / rate + 0.1:.3f}", "-f", "f32le"]
    command += ["-ac", str(channels), "-ar", str(rate), "pipe:1"]
    raw = np.frombuffer(_run(command), dtype="<f4")
    frames = raw[: len(raw) - len(raw) % channels].reshape(-1, channels)[:keep]  # (N, C)
    if len(frames) < keep:  # the container promised more than the stream holds
        return _Decoded(frames, rate, len(frames) / rate, False)
    return _Decoded(frames, rate, seconds, truncated)


def _run(command: list[str]) -> bytes:
    """stdout of an ffmpeg tool; RuntimeError with its last line of stderr when it fails."""
    command = [shutil.which(command[0]) or command[0], *command[1:]]
    try:
        result = subprocess.run(command, capture_output=True, timeout=FFMPEG_TIMEOUT_S)
    except subprocess.TimeoutExpired as error:
        raise RuntimeError(f"ffmpeg took longer than {FFMPEG_TIMEOUT_S} s") from error
    if result.returncode != 0:
        reason = result.stderr.decode("utf-8", "replace").strip().splitlines() or ["no output"]
        raise RuntimeError(f"ffmpeg: {reason[-1]}")
    return result.stdout


def _describe_content(head: bytes) -> str:
    """A short guess at what undecodable bytes are, for the error message."""
    for signature, kind in ((b"\x89PNG", "a PNG image"), (b"\xff\xd8\xff", "a JPEG image")):
        if head.startswith(signature):
            return f"it looks like {kind}"
    if head.startswith(b"%PDF"):
        return "it looks like a PDF document"
    if head.startswith((b"RIFF", b"RIFX")):
        return f"its WAV header is truncated or damaged ({len(head)} bytes read)"
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        return "its format was not recognised"
    if all(character.isprintable() or character.isspace() for character in text):
        return "it looks like a text file"
    return "its format was not recognised"


def _finish(decoded: _Decoded, max_seconds: float) -> Audio:
    """Mix to mono, resample to 16 kHz, check the length and build the Audio."""
    frames = to_float32(decoded.frames)  # (N, C)
    _check_length(len(frames), decoded.source_seconds)
    mono = frames[:, 0] if frames.shape[1] == 1 else frames.mean(axis=1)  # (N,)
    samples = resample(mono, decoded.rate, SAMPLE_RATE)  # (N',) at 16 kHz
    if decoded.truncated:
        samples = samples[: round(max_seconds * SAMPLE_RATE)]
    return Audio(
        samples=np.ascontiguousarray(_scale_to_peak_one(samples), dtype=np.float32),
        sample_rate=SAMPLE_RATE,
        source_rate=decoded.rate,
        source_channels=frames.shape[1],
        source_seconds=float(decoded.source_seconds),
        truncated=decoded.truncated,
    )
