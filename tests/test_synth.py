"""The synthetic corpus: real espeak-ng speech, exact word timings, prosody, determinism."""

import json
import os
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from mgcma.constants import EMOTIONS, SAMPLE_RATE
from train import espeak
from train.espeak import EspeakUnavailableError, PhonemeEvent, Synthesis, WordEvent, word_onsets
from train.lexicon import sentence_words
from train.synth import CUE_MIX, cue_counts, generate_corpus

REPO = Path(__file__).resolve().parents[1]
PER_CLASS = 10  # 40 utterances: every speaker says a few, enough for class means to be stable


def require_espeak() -> None:
    """Skip without libespeak-ng, but fail in CI, where it must be installed."""
    try:
        espeak.load_library()
    except EspeakUnavailableError as error:
        if os.environ.get("CI") == "true":
            pytest.fail(f"espeak-ng is required in CI: {error}")
        pytest.skip(f"espeak-ng is not installed: {error}")


def read_manifest(manifest: Path) -> list[dict]:
    return [json.loads(line) for line in manifest.read_text(encoding="utf-8").splitlines()]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> tuple[Path, list[dict]]:
    require_espeak()
    out = tmp_path_factory.mktemp("synth")
    manifest = generate_corpus(out, per_class=PER_CLASS, seed=0, workers=2, progress=False)
    assert manifest == out / "manifest.jsonl"
    return out, read_manifest(manifest)


def pitch_hz(samples: np.ndarray) -> float:
    """Median autocorrelation pitch over the clearly voiced 40-ms frames of a clip."""
    frame, low, high = 640, SAMPLE_RATE // 400, SAMPLE_RATE // 60  # lags for 400..60 Hz
    frames = samples[: len(samples) // frame * frame].reshape(-1, frame)  # (F, 640)
    loud = frames[np.sqrt((frames**2).mean(axis=1)) > 0.3 * np.sqrt((frames**2).mean(axis=1)).max()]
    estimates = []
    for chunk in loud:
        chunk = chunk - chunk.mean()
        correlation = np.correlate(chunk, chunk, mode="full")[frame - 1 :]  # lags 0..639
        lag = low + int(np.argmax(correlation[low:high]))
        if correlation[lag] > 0.5 * correlation[0]:  # periodic enough to be voiced
            estimates.append(SAMPLE_RATE / lag)
    return float(np.median(estimates))


def test_manifest_records_follow_the_schema_and_the_label_rule(corpus):
    out, records = corpus
    assert len(records) == 4 * PER_CLASS
    for record in records:
        assert {"id", "audio", "text", "label", "speaker", "group", "words", "cue"} <= set(record)
        assert record["label"] in EMOTIONS and record["text_emotion"] in EMOTIONS
        assert record["cue"] in CUE_MIX
        prosody, words = record["prosody_emotion"], record["text_emotion"]
        assert record["label"] == (prosody if prosody != "neutral" else words)
        assert (out / record["audio"]).is_file()
        assert record["audio"] == f"wav/{record['group']}/{record['id']}.wav"
    labels = [record["label"] for record in records]
    assert all(labels.count(emotion) == PER_CLASS for emotion in EMOTIONS)
    conflicts = [record for record in records if record["cue"] == "conflict"]
    assert conflicts and all(r["text_emotion"] not in ("neutral", r["label"]) for r in conflicts)
    settings = json.loads((out / "corpus.json").read_text())
    assert settings["seed"] == 0 and settings["per_class"] == PER_CLASS
    assert "prosody" in settings["label_rule"]


def test_five_groups_share_no_speaker(corpus):
    _, records = corpus
    speakers = defaultdict(set)
    for record in records:
        speakers[record["group"]].add(record["speaker"])
    assert sorted(speakers) == ["g1", "g2", "g3", "g4", "g5"]
    every = [speaker for group in speakers.values() for speaker in group]
    assert len(every) == len(set(every)) >= 10


def test_audio_is_16khz_mono_int16_and_not_silent(corpus):
    out, records = corpus
    for record in records:
        info = sf.info(out / record["audio"])
        assert (info.samplerate, info.channels, info.subtype) == (SAMPLE_RATE, 1, "PCM_16")
        samples, _ = sf.read(out / record["audio"], dtype="float32")
        assert np.sqrt((samples**2).mean()) > 0.01
        assert len(samples) / SAMPLE_RATE == pytest.approx(record["duration"], abs=1e-4)


def test_word_timings_are_ordered_inside_the_clip_and_match_the_text(corpus):
    _, records = corpus
    for record in records:
        words = record["words"]
        assert [w["word"] for w in words] == [word for word, _ in sentence_words(record["text"])]
        assert words[0]["start"] >= 0 and words[-1]["end"] <= record["duration"]
        for word, following in zip(words, words[1:], strict=False):
            assert word["start"] < word["end"] <= following["start"] < following["end"]
        # the last word ends where speech ends: little more than the kept tail follows it
        assert record["duration"] - words[-1]["end"] <= 0.11


def test_emotional_prosody_is_measurably_different(corpus):
    out, records = corpus
    loudness, pitch = defaultdict(list), {}
    for record in records:
        samples, _ = sf.read(out / record["audio"], dtype="float32")
        loudness[record["prosody_emotion"]].append(float(np.sqrt((samples**2).mean())))
        pitch[record["id"]] = np.log(pitch_hz(samples))
    # Pitch relative to the speaker's own average, so a class with more female voices
    # does not look higher for that reason alone.
    by_speaker = defaultdict(list)
    for record in records:
        by_speaker[record["speaker"]].append(pitch[record["id"]])
    relative = defaultdict(list)
    for record in records:
        speaker_mean = np.mean(by_speaker[record["speaker"]])
        relative[record["prosody_emotion"]].append(pitch[record["id"]] - speaker_mean)
    assert np.mean(loudness["angry"]) > 1.5 * np.mean(loudness["sad"])
    assert np.mean(loudness["neutral"]) > np.mean(loudness["sad"])
    assert np.mean(relative["angry"]) > np.mean(relative["sad"]) + 0.1  # > 10 % higher
    assert np.mean(relative["happy"]) > np.mean(relative["sad"]) + 0.1


def test_same_seed_same_corpus_whatever_the_workers_and_other_seed_differs(tmp_path):
    require_espeak()
    one = generate_corpus(tmp_path / "a", per_class=2, seed=7, workers=1, progress=False)
    two = generate_corpus(tmp_path / "b", per_class=2, seed=7, workers=2, progress=False)
    other = generate_corpus(tmp_path / "c", per_class=2, seed=8, workers=2, progress=False)
    assert one.read_bytes() == two.read_bytes()
    assert one.read_bytes() != other.read_bytes()
    for record in read_manifest(one):
        audio = record["audio"]
        assert (one.parent / audio).read_bytes() == (two.parent / audio).read_bytes()


def test_cli_writes_a_corpus(tmp_path):
    require_espeak()
    out = tmp_path / "cli"
    command = [sys.executable, "-m", "train", "synth", "--out", str(out), "--per-class", "2"]
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert len(read_manifest(out / "manifest.jsonl")) == 8
    assert "wrote 8 utterances" in result.stdout


def test_missing_library_raises_a_typed_error(tmp_path, monkeypatch):
    monkeypatch.setenv(espeak.LIBRARY_ENV, str(tmp_path / "libespeak-ng.so.1"))
    with pytest.raises(EspeakUnavailableError, match="cannot load libespeak-ng"):
        generate_corpus(tmp_path / "out", per_class=1, progress=False)
    monkeypatch.delenv(espeak.LIBRARY_ENV)
    monkeypatch.setattr(espeak.ctypes.util, "find_library", lambda name: None)
    with pytest.raises(EspeakUnavailableError, match="install espeak-ng"):
        generate_corpus(tmp_path / "out", per_class=1, progress=False)
    assert not (tmp_path / "out" / "manifest.jsonl").exists()


def test_cli_without_espeak_exits_2_with_one_line(tmp_path):
    env = {**os.environ, espeak.LIBRARY_ENV: str(tmp_path / "missing.so")}
    command = [sys.executable, "-m", "train", "synth", "--out", str(tmp_path / "o")]
    result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert result.stderr.startswith("error: ") and len(result.stderr.strip().splitlines()) == 1


def test_fused_function_words_are_split_at_their_phonemes():
    # "I am sad": espeak-ng reports "I" (with "am" fused into it) and "sad" only.
    synthesis = Synthesis(
        samples=np.zeros(1000, np.int16),
        sample_rate=22_050,
        words=[WordEvent(0, 0), WordEvent(5, 400)],
        phonemes=[PhonemeEvent(name, at) for name, at in [("aI", 0), ("a#", 150), ("m", 250)]]
        + [PhonemeEvent(name, at) for name, at in [("s", 400), ("a", 500), ("d", 600)]],
    )
    assert word_onsets([0, 2, 5], [1, 2, 3], synthesis, end_sample=900) == [0, 150, 400]
    # off-by-one event positions land on the next token, never on one already passed
    shifted = Synthesis(synthesis.samples, 22_050, [WordEvent(0, 0), WordEvent(1, 400)], [])
    assert word_onsets([0, 2], [1, 2], shifted, end_sample=900) == [0, 400]


def test_cue_counts_follow_the_mix():
    assert cue_counts(750) == {"both": 413, "prosody": 113, "words": 112, "conflict": 112}
    assert all(sum(cue_counts(n).values()) == n for n in range(1, 40))
