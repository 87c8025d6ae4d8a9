"""Tests for mgcma.audio: real files on disk, channel layouts, dtypes, rates and bad input."""

import os
import shutil
import subprocess

import numpy as np
import pytest
import soundfile as sf
import torch

from mgcma.audio import (
    MAX_CHANNELS,
    MIN_SECONDS,
    Audio,
    AudioError,
    decoded_samples,
    load_audio,
    resample,
    rms_dbfs,
    to_float32,
)
from mgcma.constants import MAX_SAMPLES, SAMPLE_RATE

IN_CI = os.environ.get("CI", "").lower() == "true"


def sine(frequency: float, rate: int, seconds: float, amplitude: float = 0.5) -> np.ndarray:
    """``(N,)`` float64 sine."""
    times = np.arange(round(rate * seconds)) / rate
    return amplitude * np.sin(2 * np.pi * frequency * times)


def dominant_frequency(samples: np.ndarray, rate: int = SAMPLE_RATE) -> float:
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    return float(np.fft.rfftfreq(len(samples), 1 / rate)[np.argmax(spectrum)])


def expected_length(frames: int, rate: int) -> int:
    return round(frames * SAMPLE_RATE / rate)


def check_audio(audio: Audio) -> None:
    """The invariants every Audio must satisfy."""
    assert audio.sample_rate == SAMPLE_RATE
    assert audio.samples.dtype == np.float32
    assert audio.samples.ndim == 1
    assert audio.samples.flags["C_CONTIGUOUS"]
    assert np.all(np.isfinite(audio.samples))
    assert np.max(np.abs(audio.samples)) <= 1.0


def skip_or_fail(reason: str) -> None:
    """Skip locally when a tool is missing, but fail in CI where it must be installed."""
    if IN_CI:
        pytest.fail(f"{reason} (required when CI=true)")
    pytest.skip(reason)


def stereo_int16(seconds: float = 1.0, rate: int = 44_100) -> np.ndarray:
    """``(N, 2)`` int16: a 440 Hz sine on both channels."""
    mono = sine(440.0, rate, seconds)
    return (np.stack([mono, mono], axis=1) * 32767).astype(np.int16)


# ----------------------------------------------------------------------------- files


@pytest.mark.parametrize(
    ("extension", "subtype", "rate", "exact_length"),
    [
        ("wav", "PCM_16", 44_100, True),
        ("wav", "PCM_U8", 22_050, True),
        ("wav", "FLOAT", 48_000, True),
        ("flac", "PCM_16", 44_100, True),
        ("ogg", "VORBIS", 44_100, False),
    ],
)
def test_files_decode_to_16k_mono_with_the_same_pitch(
    tmp_path, extension, subtype, rate, exact_length
):
    path = tmp_path / f"tone.{extension}"
    sf.write(path, stereo_int16(1.0, rate), rate, subtype=subtype)
    audio = load_audio(path)
    check_audio(audio)
    assert (audio.source_rate, audio.source_channels, audio.truncated) == (rate, 2, False)
    assert audio.notice is None
    if exact_length:
        assert abs(len(audio.samples) - SAMPLE_RATE) <= 1
    else:
        assert abs(len(audio.samples) - SAMPLE_RATE) <= 0.02 * SAMPLE_RATE
    assert dominant_frequency(audio.samples) == pytest.approx(440.0, abs=5.0)


def test_mp3_file(tmp_path):
    path = tmp_path / "tone.mp3"
    tone = stereo_int16(1.0, 44_100)
    if "MP3" in sf.available_formats():
        sf.write(path, tone, 44_100, format="MP3")
    elif shutil.which("ffmpeg"):
        sf.write(tmp_path / "tone.wav", tone, 44_100)
        subprocess.run(
            ["ffmpeg", "-nostdin", "-loglevel", "error", "-i", str(tmp_path / "tone.wav"), path],
            check=True,
        )
    else:
        skip_or_fail("neither libsndfile nor ffmpeg can write MP3 here")
    audio = load_audio(path)
    check_audio(audio)
    assert audio.source_rate == 44_100
    # MP3 adds encoder delay and padding at the ends.
    assert abs(audio.seconds - 1.0) < 0.1
    assert dominant_frequency(audio.samples) == pytest.approx(440.0, abs=5.0)


def test_format_libsndfile_cannot_read_goes_through_ffmpeg(tmp_path):
    if shutil.which("ffmpeg") is None:
        skip_or_fail("ffmpeg is not installed")
    path = tmp_path / "tone.m4a"
    command = ["ffmpeg", "-nostdin", "-loglevel", "error", "-f", "lavfi"]
    command += ["-i", "sine=frequency=440:duration=1:sample_rate=44100", "-c:a", "aac", path]
    subprocess.run(command, check=True)
    with pytest.raises(sf.LibsndfileError):
        sf.info(path)
    audio = load_audio(path)
    check_audio(audio)
    assert audio.source_rate == 44_100
    assert abs(audio.seconds - 1.0) < 0.1
    assert dominant_frequency(audio.samples) == pytest.approx(440.0, abs=5.0)

    cut = load_audio(path, max_seconds=0.5)
    assert cut.truncated and len(cut.samples) == SAMPLE_RATE // 2
    assert cut.source_seconds == pytest.approx(1.0, abs=0.05)
    with pytest.raises(AudioError, match="at most 0.5 s"):
        load_audio(path, max_seconds=0.5, on_too_long="error")


def test_bytes_input_matches_path_input(tmp_path):
    path = tmp_path / "tone.flac"
    sf.write(path, stereo_int16(0.5), 44_100)
    from_path = load_audio(path)
    from_bytes = load_audio(path.read_bytes())
    np.testing.assert_array_equal(from_bytes.samples, from_path.samples)
    assert from_bytes.source_rate == 44_100


def test_long_file_is_truncated_or_refused(tmp_path):
    path = tmp_path / "ten_minutes.wav"
    sf.write(path, (sine(440.0, 8_000, 600.0) * 32767).astype(np.int16), 8_000)
    audio = load_audio(path)
    check_audio(audio)
    assert audio.truncated
    assert audio.source_seconds == pytest.approx(600.0)
    assert len(audio.samples) == 30 * SAMPLE_RATE
    assert "600.0 s" in audio.notice and "30.0 s" in audio.notice

    short = load_audio(path, max_seconds=2.0)
    assert len(short.samples) == 2 * SAMPLE_RATE

    with pytest.raises(AudioError, match=r"600\.0 s long.*at most 30\.0 s"):
        load_audio(path, on_too_long="error")


def test_long_file_is_not_read_past_the_limit(tmp_path, monkeypatch):
    path = tmp_path / "ten_minutes.wav"
    sf.write(path, np.zeros(600 * 8_000, dtype=np.int16), 8_000)
    requested = []
    original_read = sf.SoundFile.read

    def spy_read(self, frames=-1, *args, **kwargs):
        requested.append(frames)
        return original_read(self, frames, *args, **kwargs)

    monkeypatch.setattr(sf.SoundFile, "read", spy_read)
    load_audio(path)
    assert requested == [30 * 8_000]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "empty \\(0 bytes\\)"),
        (b"hello, this is a text file and not audio\n", "looks like a text file"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(17), "looks like a PNG image"),
    ],
    ids=["zero-bytes", "text", "png"],
)
def test_non_audio_files_are_refused(tmp_path, content, message):
    path = tmp_path / "not_audio.wav"
    path.write_bytes(content)
    with pytest.raises(AudioError, match=message) as raised:
        load_audio(path)
    if content:
        assert "could not decode 'not_audio.wav' as audio" in str(raised.value)


def test_truncated_wav_header_is_refused(tmp_path):
    full = tmp_path / "full.wav"
    sf.write(full, stereo_int16(0.2), 44_100)
    path = tmp_path / "cut.wav"
    path.write_bytes(full.read_bytes()[:30])
    with pytest.raises(AudioError, match="could not decode 'cut.wav'.*WAV header is truncated"):
        load_audio(path)
    with pytest.raises(AudioError, match="could not decode '<30 bytes>'") as raised:
        load_audio(path.read_bytes())
    assert "mgcma-audio-" not in str(raised.value)  # no temporary file names in the message


def test_without_ffmpeg_the_error_says_so(tmp_path, monkeypatch):
    path = tmp_path / "notes.wav"
    path.write_text("not audio")
    real_which = shutil.which
    monkeypatch.setattr(shutil, "which", lambda name: None if "ff" in name else real_which(name))
    with pytest.raises(AudioError, match="ffmpeg is not installed"):
        load_audio(path)


def test_missing_file_and_empty_bytes_are_refused(tmp_path):
    with pytest.raises(AudioError, match="not found"):
        load_audio(tmp_path / "missing.wav")
    with pytest.raises(AudioError, match="directory"):
        load_audio(tmp_path)
    with pytest.raises(AudioError, match="empty"):
        load_audio(b"")


def test_file_with_no_frames_is_refused(tmp_path):
    path = tmp_path / "silence.wav"
    sf.write(path, np.zeros(0, dtype=np.int16), 16_000)
    with pytest.raises(AudioError, match="empty \\(0 samples\\)"):
        load_audio(path)


# ----------------------------------------------------------------------------- arrays


def test_gradio_tuple_stereo_int16_at_44k():
    audio = load_audio((44_100, stereo_int16(1.0)))
    check_audio(audio)
    assert (audio.source_rate, audio.source_channels) == (44_100, 2)
    assert abs(len(audio.samples) - expected_length(44_100, 44_100)) <= 1
    assert dominant_frequency(audio.samples) == pytest.approx(440.0, abs=5.0)


def test_8k_input_is_upsampled():
    audio = load_audio((8_000, sine(440.0, 8_000, 1.0).astype(np.float32)))
    check_audio(audio)
    assert abs(len(audio.samples) - SAMPLE_RATE) <= 1
    assert dominant_frequency(audio.samples) == pytest.approx(440.0, abs=5.0)


def test_odd_sample_rate_is_resampled_without_a_huge_kernel():
    rate = 44_101  # gcd(44_101, 16_000) == 1
    audio = load_audio((rate, sine(440.0, rate, 1.0)))
    assert abs(len(audio.samples) - expected_length(rate, rate)) <= 1
    assert dominant_frequency(audio.samples) == pytest.approx(440.0, abs=5.0)


def test_six_channels_are_averaged_and_opposite_signs_cancel():
    tone = sine(440.0, SAMPLE_RATE, 0.5)
    channels = np.stack([tone, -tone, tone, -tone, 0.2 * tone, 0.4 * tone], axis=1)  # (N, 6)
    audio = load_audio((SAMPLE_RATE, channels.astype(np.float32)))
    assert audio.source_channels == 6
    np.testing.assert_allclose(audio.samples, 0.1 * tone, atol=1e-6)

    cancelling = np.stack([tone, -tone], axis=1).astype(np.float32)
    assert np.max(np.abs(load_audio((SAMPLE_RATE, cancelling)).samples)) < 1e-6


def test_channels_are_last_and_channels_first_is_refused_with_what_to_do():
    frames = np.random.default_rng(0).uniform(-0.5, 0.5, size=(4_000, 3)).astype(np.float32)
    last = load_audio((22_050, frames))
    assert last.source_channels == 3
    mean = load_audio((22_050, frames.mean(axis=1)))
    np.testing.assert_allclose(last.samples, mean.samples, atol=1e-6)  # the channels' mean
    # (C, N) is not guessed: read as (N, C) it has 4000 channels, and the message says so
    with pytest.raises(AudioError, match=r"shape \(3, 4000\) would have 4000 channels.*\.T"):
        load_audio((22_050, frames.T.copy()))
    widest = np.zeros((4_000, MAX_CHANNELS), dtype=np.float32)
    assert load_audio((22_050, widest)).source_channels == MAX_CHANNELS
    with pytest.raises(AudioError, match="would have 0 channels"):
        load_audio((22_050, np.zeros((4_000, 0), dtype=np.float32)))


def test_tensors_and_bare_arrays_are_refused_with_what_to_pass():
    tone = torch.from_numpy(sine(440.0, 48_000, 0.5).astype(np.float32))
    with pytest.raises(AudioError, match=r"not Tensor \(a torch tensor: pass tensor\.numpy\(\)\)"):
        load_audio((48_000, tone))
    assert load_audio((48_000, tone.numpy())).source_rate == 48_000
    for bare in (tone, tone.numpy()):
        with pytest.raises(AudioError, match=r"needs its sample rate.*\(sample_rate, samples\)"):
            load_audio(bare)


@pytest.mark.parametrize("rate", [0, -16_000, 999, 400_000, 16_000.0, True, "16000"])
def test_bad_sample_rates_are_refused(rate):
    with pytest.raises(AudioError, match="sample rate must be an int"):
        load_audio((rate, np.zeros(16_000, dtype=np.float32)))


def test_a_file_carries_its_own_rate(tmp_path):
    path = tmp_path / "tone.wav"
    sf.write(path, stereo_int16(0.2), 44_100)
    with pytest.raises(TypeError):
        load_audio(path, 16_000)  # no rate to contradict the file's: the options are by name
    assert load_audio(path).source_rate == 44_100


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_samples_are_refused(bad):
    samples = np.zeros(16_000, dtype=np.float32)
    samples[[10, 20]] = bad
    with pytest.raises(AudioError, match="contains 2 NaN or infinite samples"):
        load_audio((SAMPLE_RATE, samples))


@pytest.mark.parametrize(
    ("samples", "message"),
    [(np.zeros(0, dtype=np.float32), "empty"), (np.zeros(160, dtype=np.float32), "0.010 s long")],
    ids=["empty", "10ms"],
)
def test_empty_and_too_short_are_refused(samples, message):
    with pytest.raises(AudioError, match=message):
        load_audio((SAMPLE_RATE, samples))


def test_minimum_length_is_accepted():
    audio = load_audio((SAMPLE_RATE, np.zeros(round(MIN_SECONDS * SAMPLE_RATE), np.float32)))
    assert audio.seconds == pytest.approx(MIN_SECONDS)


def test_long_array_is_truncated():
    audio = load_audio((8_000, np.zeros(40 * 8_000, dtype=np.int16)))
    assert audio.truncated and audio.source_seconds == pytest.approx(40.0)
    assert len(audio.samples) == 30 * SAMPLE_RATE


@pytest.mark.parametrize(
    "array",
    [np.zeros((2, 3, 16_000), dtype=np.float32), np.zeros((), dtype=np.float32)],
    ids=["3-D", "0-D"],
)
def test_bad_shapes_are_refused(array):
    with pytest.raises(AudioError, match="1-D"):
        load_audio((SAMPLE_RATE, array))


def test_unknown_source_type_is_refused():
    with pytest.raises(AudioError, match="cannot load audio from dict"):
        load_audio({"path": "a.wav"})


# ----------------------------------------------------------------------------- helpers


def test_to_float32_scales_each_dtype():
    np.testing.assert_allclose(
        to_float32(np.array([-32768, 0, 32767], dtype=np.int16)), [-1.0, 0.0, 32767 / 32768]
    )
    np.testing.assert_allclose(to_float32(np.array([-(2**31), 2**30], dtype=np.int32)), [-1.0, 0.5])
    np.testing.assert_allclose(
        to_float32(np.array([0, 128, 255], dtype=np.uint8)), [-1.0, 0.0, 127 / 128]
    )
    np.testing.assert_allclose(to_float32(np.array([-128, 64], dtype=np.int8)), [-1.0, 0.5])
    half = to_float32(np.array([0.25, -0.5], dtype=np.float16))
    assert half.dtype == np.float32
    np.testing.assert_allclose(half, [0.25, -0.5])


def test_int16_full_scale_is_about_one():
    audio = load_audio((SAMPLE_RATE, np.full(16_000, 32767, dtype=np.int16)))
    assert audio.samples.max() == pytest.approx(1.0, abs=1e-4)


def test_loud_float_is_scaled_down_and_quiet_float_is_not_amplified():
    loud = np.array([[4.0, -2.0], [1.0, 0.5], [0.0, -1.0]], dtype=np.float64)
    scaled = to_float32(loud)
    assert scaled.shape == loud.shape and scaled.dtype == np.float32
    np.testing.assert_allclose(scaled, loud / 4.0)
    quiet = np.array([0.1, -0.2], dtype=np.float32)
    np.testing.assert_array_equal(to_float32(quiet), quiet)


@pytest.mark.parametrize("dtype", [bool, np.complex64, object, np.int64])
def test_unsupported_dtypes_are_refused(dtype):
    with pytest.raises(AudioError, match="unsupported audio dtype"):
        to_float32(np.zeros(10, dtype=dtype))


def test_decoded_audio_is_checked_and_never_converted():
    audio = load_audio((44_100, stereo_int16(0.5)))
    assert decoded_samples(audio) is audio.samples
    samples = np.zeros(SAMPLE_RATE, dtype=np.float32)
    assert decoded_samples(samples, SAMPLE_RATE) is samples  # not even copied
    refused = [  # what is not yet decoded, and what the message names
        (np.zeros(SAMPLE_RATE, np.int16), SAMPLE_RATE, "int16"),
        (np.zeros(SAMPLE_RATE), SAMPLE_RATE, "float64"),
        (np.zeros((SAMPLE_RATE, 2), np.float32), SAMPLE_RATE, r"\(16000, 2\)"),
        (np.zeros(44_100, np.float32), 44_100, "not 44100"),
        ("clip.wav", SAMPLE_RATE, "got str"),
    ]
    for speech, rate, reason in refused:
        with pytest.raises(AudioError, match=f"{reason}.*decode it with mgcma.load_audio"):
            decoded_samples(speech, rate)
    nan = samples.copy()
    nan[3] = np.nan
    with pytest.raises(AudioError, match="1 NaN"):
        decoded_samples(nan)
    with pytest.raises(AudioError, match="empty"):
        decoded_samples(np.zeros(0, np.float32))
    with pytest.raises(AudioError, match="at least 0.05 s"):
        decoded_samples(np.zeros(160, np.float32))
    with pytest.raises(AudioError, match="longer than 30 s"):
        decoded_samples(np.zeros(MAX_SAMPLES + 1, np.float32))


def test_resample_length_and_identity():
    tone = sine(440.0, 44_100, 1.0).astype(np.float32)
    assert abs(len(resample(tone, 44_100)) - SAMPLE_RATE) <= 1
    same = resample(tone[:1000], SAMPLE_RATE)
    assert same.dtype == np.float32
    np.testing.assert_array_equal(same, tone[:1000])


def test_rms_dbfs():
    assert rms_dbfs(np.zeros(100)) == -120.0
    assert rms_dbfs(np.zeros(0)) == -120.0
    assert rms_dbfs(np.ones(100)) == pytest.approx(0.0)
    assert rms_dbfs(sine(440.0, SAMPLE_RATE, 1.0, amplitude=1.0)) == pytest.approx(-3.01, abs=0.01)
    assert rms_dbfs(0.1 * np.ones(100)) == pytest.approx(-20.0)
