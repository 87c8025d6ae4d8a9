"""The Analyzer: every artifact the app draws, as plain values that agree with the model."""

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from conftest import tiny_config
from mgcma import EMOTIONS, Analyzer
from mgcma.analysis import NO_TRANSCRIPT
from mgcma.audio import AudioError, load_audio
from mgcma.model import MGCMA
from mgcma.words import align_word_times, merge_attention


def _clip(seconds=1.0, rate=16000, seed=0):
    return (np.random.default_rng(seed).standard_normal(int(seconds * rate)) * 0.1).astype(
        np.float32
    )


def test_analysis_fields_agree_with_each_other(tiny_model):
    words = [{"word": " I", "start": 0.1, "end": 0.2}, {"word": "miss", "start": 0.25, "end": 0.5}]
    analysis = Analyzer(tiny_model, device="cpu").analyze(
        _clip(), 16000, "I miss her, so much!", words=words
    )
    assert set(analysis.probs) == set(EMOTIONS)
    assert sum(analysis.probs.values()) == pytest.approx(1.0, abs=1e-5)
    assert analysis.label == max(analysis.probs, key=analysis.probs.get)
    assert sum(analysis.speech_probs.values()) == pytest.approx(1.0, abs=1e-5)
    assert analysis.words == ["I", "miss", "her,", "so", "much!"]
    assert analysis.word_times == [(0.1, 0.2), (0.25, 0.5), None, None, None]
    # punctuation sub-words belong to their word; only [CLS] and [SEP] map to no word
    assert analysis.token_word[0] == -1 and analysis.token_word[-1] == -1
    assert sorted(set(analysis.token_word) - {-1}) == [0, 1, 2, 3, 4]
    frames = analysis.frame_times
    # 1 s → 98 filterbank frames (25 ms every 10 ms) → 49 stacked pairs at 17.5 ms + k·20 ms
    assert frames.shape == (49,) and np.allclose(frames, 0.0175 + 0.02 * np.arange(49))
    heads = tiny_model.config.alignment.heads
    assert analysis.attention_text_to_speech.shape == (heads, 5, 49)
    assert np.allclose(analysis.attention_text_to_speech.sum(-1), 1.0, atol=1e-5)
    assert analysis.attention_speech_to_text.shape == (heads, 49, 5)
    assert np.all(analysis.attention_speech_to_text.sum(-1) <= 1.0 + 1e-5)
    assert analysis.attention_text_to_speech_mean.shape == (5, 49)
    # W2 from the reported Gaussians, by hand
    w2 = np.sum((analysis.speech_mu - analysis.text_mu) ** 2) + np.sum(
        (analysis.speech_sigma - analysis.text_sigma) ** 2
    )
    assert analysis.w2_distance == pytest.approx(float(w2), rel=1e-4)
    assert analysis.similarity == pytest.approx(-analysis.w2_distance / 200 + 4.0)
    assert 0.0 <= analysis.bhattacharyya <= analysis.overlap <= 1.0
    assert analysis.instance_similarity == pytest.approx(
        float(analysis.speech_embedding @ analysis.text_embedding), abs=1e-5
    )
    assert np.linalg.norm(analysis.speech_embedding) == pytest.approx(1.0, abs=1e-5)
    encoded = json.loads(json.dumps(analysis.to_dict()))
    assert encoded["label"] == analysis.label and len(encoded["frame_times"]) == 49


def test_identical_gaussians_overlap_fully(tiny_model):
    analysis = Analyzer(tiny_model, device="cpu").analyze(_clip(), 16000, "so much")
    from mgcma.analysis import _fill_distribution  # the formula, fed equal Gaussians

    class Same:
        speech_mu = text_mu = torch.ones(1, 8)
        speech_log_sigma = text_log_sigma = torch.zeros(1, 8)

    _fill_distribution(analysis, Same, 0, tiny_model.config.alignment)
    assert analysis.w2_distance == 0 and analysis.bhattacharyya == pytest.approx(1.0)


def test_any_rate_and_channel_count_is_decoded_at_the_edge_only(tiny_model):
    analyzer = Analyzer(tiny_model, device="cpu")
    stereo = (np.random.default_rng(1).standard_normal((44100, 2)) * 3000).astype(np.int16)
    audio = load_audio((44100, stereo))
    analysis = analyzer.analyze(audio, text="what a wonderful surprise")
    assert analysis.duration == pytest.approx(1.0, abs=1e-3)
    assert analysis.frame_times.shape == (49,)
    # the samples alone are the same input: the Analyzer reads them, it converts nothing
    same = analyzer.analyze(audio.samples, 16000, "what a wonderful surprise")
    assert same.probs == pytest.approx(analysis.probs, abs=1e-6)
    # undecoded audio is refused with what to do, never decoded a second time
    for raw, rate in ((stereo, 44100), (audio.samples, 44100), (audio.samples[:, None], 16000)):
        with pytest.raises(AudioError, match="decode it with mgcma.load_audio"):
            analyzer.analyze(raw, rate, "what a wonderful surprise")


def test_the_truncation_notice_is_said_once(tiny_model):
    audio = load_audio((8000, np.zeros(31 * 8000, np.float32) + 0.01), max_seconds=2.0)
    analysis = Analyzer(tiny_model, device="cpu").analyze(audio, text="a long clip")
    assert analysis.notes.count(audio.notice) == 1 and analysis.duration == pytest.approx(2.0)


def test_analyze_many_equals_one_at_a_time(tiny_model):
    analyzer = Analyzer(tiny_model, device="cpu")
    items = [
        (_clip(1.0, seed=1), 16000, "i am so happy"),
        (_clip(0.6, seed=2), 16000, "get out of my room right now"),
    ]
    together = analyzer.analyze_many(items)
    for item, batched in zip(items, together, strict=True):
        alone = analyzer.analyze(*item)
        assert batched.probs == pytest.approx(alone.probs, abs=1e-5)
        assert np.allclose(
            batched.attention_text_to_speech, alone.attention_text_to_speech, atol=1e-5
        )
        assert batched.words == alone.words


def test_empty_transcript_and_long_transcript(tiny_model):
    analyzer = Analyzer(tiny_model, device="cpu")
    empty = analyzer.analyze(_clip(), 16000, "   \n ")
    assert empty.transcript == "" and empty.words == [] and NO_TRANSCRIPT in empty.notes
    long = analyzer.analyze(_clip(), 16000, "happy " * 1000)
    assert len(long.words) == tiny_model.config.text.max_tokens - 2
    assert any("only its first" in note for note in long.notes)


def test_speech_only_model_ignores_the_transcript(tokenizer):
    model = MGCMA(tiny_config().ablation("speech_only"), tokenizer).eval()
    analysis = Analyzer(model, device="cpu").analyze(_clip(), 16000, "")
    assert analysis.variant == "speech_only" and analysis.words == []
    assert analysis.attention_text_to_speech is None and analysis.w2_distance is None
    json.dumps(analysis.to_dict())


def test_merge_attention_keeps_distributions():
    text_to_speech = np.random.default_rng(0).dirichlet(np.ones(6), size=(2, 4))  # (H, T_t, T_s)
    speech_to_text = np.random.default_rng(1).dirichlet(np.ones(4), size=(2, 6))  # (H, T_s, T_t)
    token_word = [-1, 0, 0, 1]
    words_by_speech, speech_by_words = merge_attention(
        text_to_speech, speech_to_text, token_word, 2
    )
    assert np.allclose(words_by_speech[:, 0], text_to_speech[:, 1:3].mean(axis=1))
    assert np.allclose(words_by_speech.sum(-1), 1.0)
    assert np.allclose(speech_by_words[:, :, 0], speech_to_text[:, :, 1] + speech_to_text[:, :, 2])
    assert np.allclose(speech_by_words.sum(-1), 1.0 - speech_to_text[:, :, 0])


def test_word_times_survive_an_edited_transcript():
    timed = [
        {"word": w, "start": i, "end": i + 0.5}
        for i, w in enumerate([" Hello,", " my", " dear", " friend."])
    ]
    times = align_word_times(["hello", "my", "very", "dear", "friend"], timed)
    assert times == [(0, 0.5), (1, 1.5), None, (2, 2.5), (3, 3.5)]


def test_importing_mgcma_pulls_in_neither_the_app_nor_the_trainer():
    code = (
        "import sys, mgcma, mgcma.analysis, mgcma.asr, mgcma.checkpoint;"
        "bad = [m for m in ('gradio', 'plotly', 'train', 'demo') if m in sys.modules];"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
