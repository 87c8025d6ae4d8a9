"""Whisper wrapper: a tiny random checkpoint loaded through whisper.load_model, silence guards,
offline refusal without network, and clear errors for bad files and bad input."""

import os

os.environ["HF_HUB_OFFLINE"] = "1"

import dataclasses  # noqa: E402
import json  # noqa: E402
import subprocess  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import soundfile as sf  # noqa: E402
import torch  # noqa: E402
import torchaudio  # noqa: E402
import whisper  # noqa: E402

from conftest import ROOT, require_tool  # noqa: E402
from mgcma.asr import (  # noqa: E402
    SILENCE_DBFS,
    Transcriber,
    TranscriberError,
    Transcript,
    WhisperUnavailable,
    Word,
)
from mgcma.constants import SAMPLE_RATE  # noqa: E402

SHIPPED_WHISPER = ROOT / "assets" / "backbones" / "whisper-tiny.en.pt"
# Random weights decode garbage until the token limit; a few tokens keep the test to seconds.
MAX_TOKENS = 8


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory) -> str:
    """A randomly initialised Whisper saved the way whisper's own checkpoints are."""
    dims = whisper.model.ModelDimensions(
        n_mels=80,
        n_audio_ctx=1500,
        n_audio_state=64,
        n_audio_head=2,
        n_audio_layer=1,
        n_vocab=51865,
        n_text_ctx=448,
        n_text_state=64,
        n_text_head=2,
        n_text_layer=1,
    )
    torch.manual_seed(0)
    model = whisper.model.Whisper(dims)
    # whisper leaves the decoder's positional embedding as torch.empty (real checkpoints fill
    # it); uninitialised memory can hold NaN, which would make this test depend on test order.
    torch.nn.init.normal_(model.decoder.positional_embedding, std=0.02)
    path = tmp_path_factory.mktemp("whisper") / "tiny-random.pt"
    torch.save({"dims": dataclasses.asdict(dims), "model_state_dict": model.state_dict()}, path)
    return str(path)


@pytest.fixture(scope="module")
def transcriber(tiny_checkpoint) -> Transcriber:
    return Transcriber(tiny_checkpoint, device="cpu", max_tokens=MAX_TOKENS).load()


@pytest.fixture(scope="module")
def hello_world(tmp_path_factory) -> np.ndarray:
    """Real synthetic speech: espeak-ng's "hello world" at 16 kHz, (N,) float32."""
    espeak = require_tool("espeak-ng")
    wav = tmp_path_factory.mktemp("speech") / "hello.wav"
    subprocess.run([espeak, "-w", str(wav), "hello world"], check=True, capture_output=True)
    samples, rate = sf.read(wav, dtype="float32")
    resampled = torchaudio.functional.resample(torch.from_numpy(samples), rate, SAMPLE_RATE)
    return resampled.numpy()


def test_random_checkpoint_transcribes_speech(transcriber, hello_world):
    assert isinstance(transcriber._model, whisper.Whisper)  # loaded via whisper.load_model
    duration = len(hello_world) / SAMPLE_RATE
    result = transcriber.transcribe(hello_world)

    assert isinstance(result, Transcript)
    assert isinstance(result.text, str) and result.text == result.text.strip()
    assert result.language is None or isinstance(result.language, str)
    assert 0.0 <= result.no_speech_prob <= 1.0
    for word in result.words:
        assert isinstance(word, Word)
        assert 0.0 <= word.start <= word.end <= duration
        assert 0.0 <= word.probability <= 1.0
    assert [word.start for word in result.words] == sorted(word.start for word in result.words)
    if not result.text:
        assert result.note  # an empty transcript always says why
    assert json.loads(json.dumps(result.to_dict()))["text"] == result.text


def test_language_is_passed_through(transcriber, hello_world):
    assert transcriber.transcribe(hello_world, language="English").language == "en"
    with pytest.raises(TranscriberError, match="Unknown language"):
        transcriber.transcribe(hello_world, language="klingon")


def test_silence_is_rejected_without_running_the_model(transcriber, monkeypatch):
    def must_not_decode(*args, **kwargs):
        raise AssertionError("the model ran on silence")

    monkeypatch.setattr(transcriber._model, "transcribe", must_not_decode)
    quiet_noise = np.random.default_rng(0).normal(0, 10 ** (SILENCE_DBFS / 20) / 4, SAMPLE_RATE)
    for silence in (np.zeros(2 * SAMPLE_RATE, dtype=np.float32), quiet_noise.astype(np.float32)):
        result = transcriber.transcribe(silence)
        assert result.text == "" and result.words == ()
        assert result.no_speech_prob == 1.0
        assert "No speech detected" in result.note and "dBFS" in result.note


def test_non_speech_segments_are_dropped(transcriber, hello_world, monkeypatch):
    segment = {"text": " Thank you.", "no_speech_prob": 0.9, "avg_logprob": -1.5, "words": []}
    decoded = {"text": " Thank you.", "segments": [segment], "language": "en"}
    monkeypatch.setattr(transcriber._model, "transcribe", lambda *args, **kwargs: decoded)
    result = transcriber.transcribe(hello_world)
    assert result.text == "" and result.no_speech_prob == 1.0
    assert result.note == "Whisper heard only non-speech; the transcript was discarded."

    words = [
        {"word": " Thank", "start": -0.1, "end": 0.5, "probability": 0.9},
        {"word": " you.", "start": 0.9, "end": 40.0, "probability": float("nan")},
    ]
    # sure of its words, so kept; word times past the clip are clamped to it
    speech = {**segment, "no_speech_prob": 0.9, "avg_logprob": -0.2, "words": words}
    monkeypatch.setattr(
        transcriber._model, "transcribe", lambda *args, **kwargs: {**decoded, "segments": [speech]}
    )
    kept = transcriber.transcribe(hello_world)
    assert kept.text == "Thank you." and kept.no_speech_prob == 0.9 and kept.note is None
    duration = len(hello_world) / SAMPLE_RATE
    assert kept.words == (Word(" Thank", 0.0, 0.5, 0.9), Word(" you.", 0.9, duration, 0.0))

    broken = {**segment, "no_speech_prob": float("nan"), "avg_logprob": float("nan")}
    monkeypatch.setattr(
        transcriber._model, "transcribe", lambda *args, **kwargs: {**decoded, "segments": [broken]}
    )
    assert transcriber.transcribe(hello_world).text == ""  # untrustworthy scores: dropped


def test_offline_named_model_refuses_without_download(tmp_path, monkeypatch):
    def no_network(*args, **kwargs):
        raise AssertionError("tried to download")

    monkeypatch.setattr(whisper, "_download", no_network)
    started = time.perf_counter()
    with pytest.raises(WhisperUnavailable, match="'tiny'") as raised:
        Transcriber("tiny", download_root=str(tmp_path), offline=True).load()
    assert time.perf_counter() - started < 1.0
    assert str(tmp_path) in str(raised.value) and "type the transcript" in str(raised.value)


def test_offline_follows_the_environment(monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("MGCMA_OFFLINE", raising=False)
    assert Transcriber("tiny").offline is False
    monkeypatch.setenv("MGCMA_OFFLINE", "1")
    assert Transcriber("tiny").offline is True
    assert Transcriber("tiny", offline=False).offline is False


def test_damaged_cache_entry_is_refused_offline(tmp_path, monkeypatch):
    monkeypatch.setattr(whisper, "_download", lambda *args: pytest.fail("tried to download"))
    (tmp_path / "tiny.pt").write_bytes(b"not the real checkpoint")
    with pytest.raises(WhisperUnavailable, match="damaged"):
        Transcriber("tiny", download_root=str(tmp_path), offline=True).load()


def test_missing_path_is_unavailable(tmp_path):
    with pytest.raises(WhisperUnavailable, match="neither a Whisper model name"):
        Transcriber(str(tmp_path / "missing.pt")).load()


@pytest.mark.parametrize("damage", ["random-bytes", "empty", "truncated"])
def test_corrupt_checkpoint_is_unavailable(tmp_path, tiny_checkpoint, damage):
    intact = Path(tiny_checkpoint).read_bytes()
    content = {
        "random-bytes": np.random.default_rng(0).bytes(4096),
        "empty": b"",
        "truncated": intact[: len(intact) // 2],
    }[damage]
    path = tmp_path / "corrupt.pt"
    path.write_bytes(content)
    with pytest.raises(WhisperUnavailable, match="could not be loaded") as raised:
        Transcriber(str(path), device="cpu").load()
    assert "type the transcript" in str(raised.value)


class _OpensAFileWhenUnpickled:
    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_checkpoint_cannot_run_code_on_load(tmp_path):
    """whisper.load_model reads with torch.load(weights_only=True): arbitrary globals refused."""
    marker = tmp_path / "marker"
    path = tmp_path / "malicious.pt"
    torch.save({"dims": {}, "model_state_dict": _OpensAFileWhenUnpickled(str(marker))}, path)
    with pytest.raises(WhisperUnavailable, match="could not be loaded"):
        Transcriber(str(path), device="cpu").load()
    assert not marker.exists()


def test_foreign_checkpoint_is_unavailable(tmp_path):
    path = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(3)}, path)  # a valid torch file, but not Whisper's layout
    with pytest.raises(WhisperUnavailable, match="KeyError"):
        Transcriber(str(path), device="cpu").load()


@pytest.mark.parametrize(
    ("samples", "message"),
    [
        (np.zeros(0, dtype=np.float32), "empty"),
        (np.array([0.1, np.nan, 0.2], dtype=np.float32), "NaN"),
        (np.array([0.1, np.inf], dtype=np.float32), "infinite"),
        (np.zeros((2, 100), dtype=np.float32), "shape"),
    ],
    ids=["empty", "nan", "inf", "stereo"],
)
def test_bad_samples_raise(transcriber, samples, message):
    with pytest.raises(TranscriberError, match=message):
        transcriber.transcribe(samples)


def test_lazy_load_and_name(tiny_checkpoint):
    lazy = Transcriber(tiny_checkpoint, device="cpu")
    assert lazy.name == tiny_checkpoint and "not loaded" in repr(lazy)
    assert lazy.load() is lazy and "not loaded" not in repr(lazy)


def test_concurrent_first_use_loads_once(tiny_checkpoint, monkeypatch, tmp_path):
    fresh = tmp_path / "fresh.pt"  # a file no earlier test loaded: the process keeps each model
    fresh.write_bytes(Path(tiny_checkpoint).read_bytes())
    calls = []
    real_load_model = whisper.load_model

    def slow_load_model(*args, **kwargs):
        calls.append(args)
        time.sleep(0.05)  # wide window for a second thread to slip in without the lock
        return real_load_model(*args, **kwargs)

    monkeypatch.setattr(whisper, "load_model", slow_load_model)
    shared = Transcriber(str(fresh), device="cpu")
    threads = [threading.Thread(target=shared.load) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert calls == [(str(fresh.resolve()),)]
    again = Transcriber(str(fresh), device="cpu").load()  # another transcriber, same file:
    assert again._model is shared._model and len(calls) == 1  # one model in the process


def test_each_window_is_encoded_once_and_word_times_are_unchanged(hello_world, monkeypatch):
    """The alignment pass reuses the decoding pass's encoder output (it cost 0.5 s on CPU)."""
    from mgcma.asr import _encode_each_window_once

    model = Transcriber(str(SHIPPED_WHISPER), device="cpu").load()._model
    calls = []
    original = whisper.model.AudioEncoder.forward

    def counting(self, mel):
        calls.append(tuple(mel.shape))
        return original(self, mel)

    monkeypatch.setattr(whisper.model.AudioEncoder, "forward", counting)
    options = dict(language="en", word_timestamps=True, fp16=False, temperature=0.0)
    plain = model.transcribe(hello_world, **options)
    encoded_plain = len(calls)
    calls.clear()
    with _encode_each_window_once(model):
        reused = model.transcribe(hello_world, **options)
    assert len(calls) == 1 < encoded_plain
    assert reused["text"] == plain["text"]
    times = [(w["start"], w["end"]) for s in plain["segments"] for w in s["words"]]
    again = [(w["start"], w["end"]) for s in reused["segments"] for w in s["words"]]
    assert again == times
    assert "forward" not in vars(model.encoder)  # the patch is gone afterwards


def test_a_transcript_is_unsure_when_its_words_are_improbable_or_loop():
    from mgcma.asr import UNSURE_BELOW, Transcript, Word

    def transcript(text, probabilities):
        words = tuple(
            Word(w, i * 0.3, i * 0.3 + 0.2, p)
            for i, (w, p) in enumerate(zip(text.split(), probabilities, strict=True))
        )
        return Transcript(text, words, "en", 0.1, None)

    sure = transcript("kids are talking by the door", [0.99, 0.95, 0.9, 0.97, 0.99, 0.98])
    assert sure.confidence == pytest.approx(0.9633, abs=1e-3) and not sure.unsure
    mumbled = transcript("the weapon leaked of the nice gun", [0.6, 0.1, 0.2, 0.5, 0.4, 0.3, 0.2])
    assert mumbled.confidence < UNSURE_BELOW and mumbled.unsure
    loop = transcript("yeah, " * 40, [0.7] * 40)  # probable words, but a decoding loop
    assert loop.confidence > UNSURE_BELOW and loop.unsure
    nothing = Transcript("", (), "en", 0.9, "No speech detected.")
    assert nothing.confidence == 0.0 and not nothing.unsure  # empty is empty, not unsure
    assert json.loads(json.dumps(sure.to_dict()))["confidence"] == pytest.approx(sure.confidence)

    from demo.transcription import UNSURE_NOTE_CHARS, unsure_note

    assert "mean word probability 0.33" in unsure_note(mumbled, "tiny.en")
    looped = unsure_note(loop, "tiny.en")
    assert "in a loop" in looped and "probability" not in looped
    assert len(looped) < UNSURE_NOTE_CHARS + 200 and "…" in looped
