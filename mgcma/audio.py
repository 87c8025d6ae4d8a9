"""Audio input: decode, mono, resample to 16 kHz, peak-safe float32, length limit.

Every speech path in the project goes through :func:`load_audio`, which accepts what users and
Gradio hand over (a path, raw file bytes, a numpy array or torch tensor with its rate, or Gradio's
``(sample_rate, array)`` tuple) and returns an :class:`Audio` whose ``samples`` are ``(N,)``
float32 mono at :data:`~mgcma.constants.SAMPLE_RATE`, finite, with peak at most 1.0.

Files are decoded with soundfile (libsndfile: wav, flac, ogg, mp3, ...) and, when that fails and
``ffmpeg`` is on ``PATH``, through an ffmpeg subprocess. Memory stays bounded: at most
``max_seconds`` of a long file is ever read. Every failure raises :class:`AudioError`, whose
message says what was wrong and what to do.
"""

import io
import json
import math
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import soundfile as sf
import torch
import torchaudio

from mgcma.constants import MAX_SECONDS, SAMPLE_RATE

MIN_SECONDS = 0.05  # the speech encoder needs at least one 25-ms window; 50 ms leaves margin
MIN_SAMPLE_RATE = 1_000
MAX_SAMPLE_RATE = 384_000
MAX_CHANNELS_FIRST = 8  # a 2-D array with at most this many rows (and more columns) is (C, N)
MAX_SOURCE_CHANNELS = 32  # more "channels" than this means a (C, N) array was read as (N, C)
FFMPEG_TIMEOUT_S = 120  # a decode that takes longer than this is treated as a failure
# torchaudio's sinc kernel has (to/g) × (from/g) rows × taps (g = gcd); an odd rate such as
# 44_101 Hz would need gigabytes, so such rates are first interpolated to a multiple of 100 Hz.
MAX_RESAMPLE_KERNEL = 4_000_000
ON_TOO_LONG = ("truncate", "error")
SUPPORTED_FORMATS_HINT = "use a WAV, FLAC, OGG or MP3 file"


class AudioError(ValueError):
    """Audio input that cannot be analysed; the message says what was wrong and what to do."""


@dataclass(frozen=True)
class Audio:
    """Decoded audio ready for the speech encoder.

    Attributes
    ----------
    samples : np.ndarray
        ``(N,)`` float32 mono at ``sample_rate``, finite, peak at most 1.0, contiguous.
    sample_rate : int
        Always :data:`~mgcma.constants.SAMPLE_RATE` (16 kHz).
    source_rate : int
        Sample rate of the input.
    source_channels : int
        Channel count of the input (averaged to mono).
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
    """Mono float32 samples at ``rate``, before resampling and final checks."""

    samples: np.ndarray
    rate: int
    source_rate: int
    source_channels: int
    source_seconds: float
    truncated: bool


# ----------------------------------------------------------------------------- array helpers


def _check_sample_rate(sample_rate: Any, what: str = "sample_rate") -> int:
    """Return ``sample_rate`` as an int or raise AudioError when it is not a plausible rate."""
    is_int = isinstance(sample_rate, int | np.integer) and not isinstance(sample_rate, bool)
    if not is_int or not MIN_SAMPLE_RATE <= int(sample_rate) <= MAX_SAMPLE_RATE:
        raise AudioError(
            f"{what} must be an int between {MIN_SAMPLE_RATE} and {MAX_SAMPLE_RATE} Hz, "
            f"got {sample_rate!r}; pass the rate the audio was recorded at, e.g. 16000 or 44100."
        )
    return int(sample_rate)


def _frames_by_channels(array: np.ndarray) -> np.ndarray:
    """View a 1-D or 2-D array as ``(N, C)`` using the channel layout heuristic of to_mono."""
    if array.ndim == 1:
        return array[:, None]  # (N, 1)
    if array.ndim != 2:
        raise AudioError(
            f"audio array must be 1-D (N,) or 2-D (N, C) / (C, N), got shape {array.shape}; "
            "pass one clip at a time."
        )
    rows, columns = array.shape
    if rows <= MAX_CHANNELS_FIRST and rows < columns:
        return array.T  # (C, N) -> (N, C)
    return array  # (N, C)


def to_mono(array: np.ndarray) -> np.ndarray:
    """Average channels to mono.

    Parameters
    ----------
    array : np.ndarray
        ``(N,)`` mono, or 2-D. A 2-D array is channels-first ``(C, N)`` when ``C <= 8`` and
        ``C < N``, otherwise channels-last ``(N, C)`` (Gradio and soundfile use ``(N, C)``).

    Returns
    -------
    np.ndarray
        ``(N,)``; the mean over channels. Float input keeps its dtype; call
        :func:`to_float32` first for integer input, whose mean is float64.
    """
    array = np.asarray(array)
    return _mean_over_channels(_frames_by_channels(array))


def _mean_over_channels(frames: np.ndarray) -> np.ndarray:
    """``(N, C)`` -> ``(N,)``."""
    if frames.shape[1] == 1:
        return frames[:, 0]
    if frames.size == 0:
        return np.zeros(0, dtype=frames.dtype)
    return frames.mean(axis=1)


def _scale_to_peak_one(samples: np.ndarray) -> np.ndarray:
    """Scale float samples down so their peak is at most 1.0; never amplify."""
    peak = float(np.max(np.abs(samples))) if samples.size else 0.0
    if peak > 1.0:
        samples = samples / np.float32(peak)
    return samples


def to_float32(array: np.ndarray) -> np.ndarray:
    """Convert samples of any common dtype to float32 in [-1, 1], keeping the shape.

    Parameters
    ----------
    array : np.ndarray
        int16 (/32768), int32 (/2**31), uint8 ((x - 128) / 128), int8 (/128), or float16/32/64
        (kept as is). Other dtypes (bool, complex, object, int64, unsigned > 8 bit) are refused.

    Returns
    -------
    np.ndarray
        float32 of the same shape; scaled down to peak 1.0 when the peak exceeds 1.0.

    Raises
    ------
    AudioError
        For an unsupported dtype, or NaN / infinite samples (they are not repaired silently).
    """
    array = np.asarray(array)
    dtype = array.dtype
    integer_scales = {np.int16: 32768.0, np.int32: 2.0**31, np.int8: 128.0}
    if dtype.type in integer_scales:
        samples = (array.astype(np.float64) / integer_scales[dtype.type]).astype(np.float32)
    elif dtype == np.uint8:
        samples = ((array.astype(np.float32) - 128.0) / 128.0).astype(np.float32)
    elif dtype.kind == "f":
        samples = array.astype(np.float32)
        bad = int(np.count_nonzero(~np.isfinite(samples)))
        if bad:
            raise AudioError(
                f"audio contains {bad} NaN or infinite samples; fix the source "
                "(e.g. numpy.nan_to_num) before analysis."
            )
    else:
        raise AudioError(
            f"unsupported audio dtype {dtype}; convert to int16 or float32 "
            "(floats in [-1, 1]) first."
        )
    return _scale_to_peak_one(samples)


def _resample_kernel_size(from_rate: int, to_rate: int) -> int:
    """Elements in torchaudio's resampling kernel for this pair of rates (ignoring taps)."""
    divisor = math.gcd(from_rate, to_rate)
    return (from_rate // divisor) * (to_rate // divisor)


def resample(samples: np.ndarray, from_rate: int, to_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Resample mono audio with ``torchaudio.functional.resample`` (windowed sinc).

    Parameters
    ----------
    samples : np.ndarray
        ``(N,)`` float samples at ``from_rate``.
    from_rate, to_rate : int
        Sample rates in Hz, each in [1000, 384000].

    Returns
    -------
    np.ndarray
        ``(ceil(N * to_rate / from_rate),)`` float32, contiguous.
    """
    from_rate = _check_sample_rate(from_rate, "from_rate")
    to_rate = _check_sample_rate(to_rate, "to_rate")
    samples = np.ascontiguousarray(samples, dtype=np.float32)
    if from_rate == to_rate:
        return samples
    if _resample_kernel_size(from_rate, to_rate) > MAX_RESAMPLE_KERNEL:
        # An odd rate: linear interpolation onto a nearby rate with a small gcd costs far less
        # accuracy than the sinc kernel would cost memory.
        near_rate = max(MIN_SAMPLE_RATE, round(from_rate / 100) * 100)
        length = math.ceil(len(samples) * near_rate / from_rate)
        times = np.arange(length) / near_rate  # (N',) seconds
        samples = np.interp(times, np.arange(len(samples)) / from_rate, samples)
        samples, from_rate = samples.astype(np.float32), near_rate
        if from_rate == to_rate:
            return samples
    waveform = torch.from_numpy(samples)  # (N,)
    resampled = torchaudio.functional.resample(waveform, from_rate, to_rate)  # (N',)
    return np.ascontiguousarray(resampled.numpy(), dtype=np.float32)


def rms_dbfs(samples: np.ndarray) -> float:
    """RMS level in dBFS (0 dBFS is a full-scale square wave); -120.0 for silence or no samples."""
    samples = np.asarray(samples, dtype=np.float64)
    if samples.size == 0:
        return -120.0
    rms = float(np.sqrt(np.mean(np.square(samples))))
    return max(-120.0, 20.0 * math.log10(rms)) if rms > 0.0 else -120.0


# ----------------------------------------------------------------------------- length limit


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


def _check_limit_arguments(max_seconds: float, on_too_long: str) -> None:
    if on_too_long not in ON_TOO_LONG:
        raise AudioError(f"on_too_long must be one of {ON_TOO_LONG}, got {on_too_long!r}.")
    if not (isinstance(max_seconds, int | float) and math.isfinite(max_seconds)):
        raise AudioError(f"max_seconds must be a finite number, got {max_seconds!r}.")
    if max_seconds < MIN_SECONDS:
        raise AudioError(f"max_seconds must be at least {MIN_SECONDS} s, got {max_seconds}.")


# ----------------------------------------------------------------------------- decoding


def _describe_content(head: bytes) -> str:
    """A short guess at what undecodable bytes are, for the error message."""
    if head.startswith(b"\x89PNG"):
        return "it looks like a PNG image"
    if head.startswith(b"\xff\xd8\xff"):
        return "it looks like a JPEG image"
    if head.startswith(b"%PDF"):
        return "it looks like a PDF document"
    if head.startswith(b"RIFF") or head.startswith(b"RIFX"):
        return f"its WAV header is truncated or damaged ({len(head)} bytes read)"
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        return "its format was not recognised"
    if all(character.isprintable() or character.isspace() for character in text):
        return "it looks like a text file"
    return "its format was not recognised"


def _read_with_soundfile(file: Any, max_seconds: float, on_too_long: str) -> _Decoded:
    """Decode with libsndfile, reading at most ``max_seconds``; lets open errors propagate."""
    with sf.SoundFile(file) as sound_file:
        rate, channels, total = sound_file.samplerate, sound_file.channels, sound_file.frames
        keep, truncated = _frames_to_keep(total, rate, max_seconds, on_too_long)
        frames = sound_file.read(frames=keep, dtype="float32", always_2d=True)  # (N, C)
    source_seconds = total / rate
    if len(frames) < keep:  # the header promised more than the file holds
        truncated, source_seconds = False, len(frames) / rate
    samples = _mean_over_channels(to_float32(frames))  # (N,)
    return _Decoded(samples, rate, rate, channels, source_seconds, truncated)


def _probe_with_ffprobe(path: str) -> tuple[int, int, float] | None:
    """Return ``(rate, channels, seconds)`` of the first audio stream, or None if unknown."""
    ffprobe = shutil.which("ffprobe")
    if ffprobe is None:
        return None
    command = [ffprobe, "-v", "error", "-select_streams", "a:0", "-of", "json"]
    command += ["-show_entries", "stream=sample_rate,channels:format=duration", path]
    try:
        result = subprocess.run(command, capture_output=True, timeout=FFMPEG_TIMEOUT_S, check=True)
        info = json.loads(result.stdout)
        stream, seconds = info["streams"][0], float(info["format"]["duration"])
        return int(stream["sample_rate"]), int(stream["channels"]), seconds
    except (subprocess.SubprocessError, OSError, ValueError, KeyError, IndexError, TypeError):
        return None


def _read_with_ffmpeg(path: str, max_seconds: float, on_too_long: str) -> _Decoded:
    """Decode to 16 kHz mono float32 through ffmpeg; raise RuntimeError with ffmpeg's reason.

    The source rate, channels and duration come from ffprobe. Where ffprobe is missing they
    fall back to 16 kHz, 1 channel and the decoded duration (a lower bound when truncated).
    """
    probe = _probe_with_ffprobe(path)
    if probe is not None:
        total = round(probe[2] * SAMPLE_RATE)
        keep, truncated = _frames_to_keep(total, SAMPLE_RATE, max_seconds, on_too_long)
        limit_seconds = keep / SAMPLE_RATE + 0.1  # a little slack; trimmed below
    else:
        limit_seconds = max_seconds + 0.1  # one extra 0.1 s tells whether the input is longer
    command = [shutil.which("ffmpeg") or "ffmpeg", "-nostdin", "-hide_banner", "-loglevel"]
    command += ["error", "-i", path, "-t", f"{limit_seconds:.3f}", "-vn", "-f", "f32le"]
    command += ["-ac", "1", "-ar", str(SAMPLE_RATE), "pipe:1"]
    try:
        result = subprocess.run(command, capture_output=True, timeout=FFMPEG_TIMEOUT_S)
    except subprocess.TimeoutExpired as error:
        raise RuntimeError(f"ffmpeg took longer than {FFMPEG_TIMEOUT_S} s") from error
    if result.returncode != 0:
        reason = result.stderr.decode("utf-8", "replace").strip().splitlines() or ["no output"]
        raise RuntimeError(f"ffmpeg: {reason[-1]}")
    samples = to_float32(np.frombuffer(result.stdout, dtype="<f4"))  # (N,) 16 kHz mono
    if probe is None:
        source_rate, channels, source_seconds = SAMPLE_RATE, 1, len(samples) / SAMPLE_RATE
        keep, truncated = _frames_to_keep(len(samples), SAMPLE_RATE, max_seconds, on_too_long)
    else:
        source_rate, channels, source_seconds = probe
        keep = min(keep, len(samples))
    return _Decoded(samples[:keep], SAMPLE_RATE, source_rate, channels, source_seconds, truncated)


def _decode_file(path: str, name: str, max_seconds: float, on_too_long: str) -> _Decoded:
    """Decode a file on disk: soundfile first, then ffmpeg when it is installed."""
    try:
        return _read_with_soundfile(path, max_seconds, on_too_long)
    except (RuntimeError, TypeError, sf.SoundFileError) as error:
        reasons = [f"soundfile: {error}"]
    if shutil.which("ffmpeg") is not None:
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


def _from_path(source: str | os.PathLike, max_seconds: float, on_too_long: str) -> _Decoded:
    path = os.fspath(source)
    if isinstance(path, bytes):
        path = os.fsdecode(path)
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
    try:
        return _read_with_soundfile(io.BytesIO(data), max_seconds, on_too_long)
    except (RuntimeError, TypeError, sf.SoundFileError):
        pass  # ffmpeg needs a real file; _decode_file retries soundfile and reports both reasons
    handle, path = tempfile.mkstemp(prefix="mgcma-audio-")
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
        return _decode_file(path, f"<{len(data)} bytes>", max_seconds, on_too_long)
    finally:
        os.unlink(path)


def _from_array(array: Any, sample_rate: Any, max_seconds: float, on_too_long: str) -> _Decoded:
    """Decode an in-memory array (numpy or torch) recorded at ``sample_rate``."""
    if sample_rate is None:
        raise AudioError(
            "sample_rate is required for an array or tensor: load_audio(array, sample_rate=44100)."
        )
    rate = _check_sample_rate(sample_rate)
    if isinstance(array, torch.Tensor):
        array = array.detach().cpu()
        array = array.float() if array.dtype == torch.bfloat16 else array
        array = array.numpy()
    frames = _frames_by_channels(np.asarray(array))  # (N, C)
    if frames.shape[1] > MAX_SOURCE_CHANNELS:
        raise AudioError(
            f"audio array of shape {np.shape(array)} was read as {frames.shape[1]} channels; at "
            f"most {MAX_SOURCE_CHANNELS} are supported. Pass (N,) or (N, C) with N samples."
        )
    keep, truncated = _frames_to_keep(len(frames), rate, max_seconds, on_too_long)
    samples = _mean_over_channels(to_float32(frames[:keep]))  # (N,)
    return _Decoded(samples, rate, rate, frames.shape[1], len(frames) / rate, truncated)


# ----------------------------------------------------------------------------- entry point


def _finish(decoded: _Decoded, max_seconds: float) -> Audio:
    """Check the length, resample to 16 kHz and build the Audio."""
    if len(decoded.samples) == 0:
        raise AudioError("audio is empty (0 samples); record or pass a longer clip.")
    if decoded.source_seconds < MIN_SECONDS:
        raise AudioError(
            f"audio is {decoded.source_seconds:.3f} s long; at least {MIN_SECONDS} s is needed "
            "(the speech encoder reads 25-ms windows). Pass a longer clip."
        )
    samples = resample(decoded.samples, decoded.rate, SAMPLE_RATE)  # (N,) at 16 kHz
    if decoded.truncated:
        samples = samples[: round(max_seconds * SAMPLE_RATE)]
    samples = np.ascontiguousarray(_scale_to_peak_one(samples), dtype=np.float32)
    return Audio(
        samples=samples,
        sample_rate=SAMPLE_RATE,
        source_rate=decoded.source_rate,
        source_channels=decoded.source_channels,
        source_seconds=float(decoded.source_seconds),
        truncated=decoded.truncated,
    )


def load_audio(
    source: Any,
    sample_rate: int | None = None,
    *,
    max_seconds: float = MAX_SECONDS,
    on_too_long: str = "truncate",
) -> Audio:
    """Load audio from a file, bytes, array or Gradio tuple as 16 kHz mono float32.

    Parameters
    ----------
    source : str | os.PathLike | bytes | np.ndarray | torch.Tensor | tuple[int, np.ndarray]
        A path to any file soundfile or ffmpeg reads (wav, flac, ogg, mp3, m4a, ...); the raw
        bytes of such a file; an array or tensor ``(N,)``, ``(N, C)`` or ``(C, N)``; or
        Gradio's ``(sample_rate, array)`` tuple from ``gr.Audio(type="numpy")``.
    sample_rate : int, optional
        Rate of an array or tensor ``source`` (required there). Files and tuples carry their
        own rate, so passing one with them is refused rather than silently ignored.
    max_seconds : float
        Longest duration analysed; a longer input is never read past this point.
    on_too_long : {"truncate", "error"}
        Keep the first ``max_seconds`` (``Audio.truncated`` is set and ``Audio.notice`` says
        so), or raise AudioError.

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
    _check_limit_arguments(max_seconds, on_too_long)
    if isinstance(source, tuple):
        if len(source) != 2 or isinstance(source[1], tuple):
            raise AudioError("a tuple source must be (sample_rate, array), as Gradio gives it.")
        tuple_rate = _check_sample_rate(source[0], "the tuple's sample rate")
        if sample_rate is not None and sample_rate != tuple_rate:
            raise AudioError(
                f"sample_rate={sample_rate} contradicts the tuple's rate {tuple_rate}; drop it."
            )
        decoded = _from_array(source[1], tuple_rate, max_seconds, on_too_long)
    elif isinstance(source, np.ndarray | torch.Tensor | list):
        decoded = _from_array(source, sample_rate, max_seconds, on_too_long)
    elif isinstance(source, bytes | bytearray | memoryview | str | os.PathLike):
        if sample_rate is not None:
            raise AudioError(
                "sample_rate is only for arrays and tensors; a file carries its own rate, "
                "and the result is always resampled to 16 kHz. Drop the argument."
            )
        if isinstance(source, str | os.PathLike):
            decoded = _from_path(source, max_seconds, on_too_long)
        else:
            decoded = _from_bytes(bytes(source), max_seconds, on_too_long)
    else:
        raise AudioError(
            f"cannot load audio from {type(source).__name__}; pass a path, file bytes, "
            "an array or tensor with sample_rate, or a (sample_rate, array) tuple."
        )
    return _finish(decoded, max_seconds)
