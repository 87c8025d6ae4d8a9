"""Long pauses before and after the speech, cut to ``speech.max_pause_seconds``: in the
dataset, the feature cache and the Analyzer alike, word timings and the clip's clock kept."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import soundfile as sf
import torch

from conftest import small_pretrained_config, tiny_config
from mgcma import Analyzer
from mgcma.batch import pad_waveforms
from mgcma.checkpoint import build_model
from mgcma.config import ConfigError
from mgcma.constants import SAMPLE_RATE
from mgcma.model import MGCMA
from mgcma.pauses import FRAME, cut_pauses, speech_span
from train.data import EmotionDataset
from train.features import FeatureCache
from train.manifest import load_manifest

LEAD, TRAIL = 2.0, 3.0  # seconds of room tone put around a clip


def _room_tone(seconds: float, rng) -> np.ndarray:
    return (rng.standard_normal(int(seconds * SAMPLE_RATE)) * 1e-4).astype(np.float32)  # −80 dB


@pytest.fixture(scope="module")
def padded(tiny_corpus, tmp_path_factory):
    """A real espeak-ng utterance with LEAD s of room tone before it and TRAIL after, in a
    manifest whose word timings are moved by LEAD as the file's are."""
    utterance = next(u for u in load_manifest(tiny_corpus) if u.words)
    clip, rate = sf.read(utterance.audio, dtype="float32")
    assert rate == SAMPLE_RATE
    rng = np.random.default_rng(0)
    samples = np.concatenate([_room_tone(LEAD, rng), clip, _room_tone(TRAIL, rng)])
    folder = tmp_path_factory.mktemp("pauses")
    sf.write(folder / "padded.wav", samples, SAMPLE_RATE, subtype="FLOAT")
    moved = [{"word": w, "start": a + LEAD, "end": b + LEAD} for w, a, b in utterance.words]
    line = {
        "id": "padded", "audio": "padded.wav", "text": utterance.text, "label": utterance.label,
        "speaker": "s", "group": "g1", "words": moved,
    }  # fmt: skip
    (folder / "manifest.jsonl").write_text(__import__("json").dumps(line) + "\n")
    return load_manifest(folder / "manifest.jsonl")[0], clip, samples


def test_the_cut_keeps_the_speech_and_at_most_keep_seconds_on_either_side(padded):
    _, clip, samples = padded
    first, end = speech_span(clip)
    cut, start = cut_pauses(samples, 0.5)
    # the speech itself is all there, with 0.5 s (to the frame) before and after it
    lead = int(LEAD * SAMPLE_RATE)
    assert start == lead + first - int(0.5 * SAMPLE_RATE)
    np.testing.assert_array_equal(cut, samples[start : start + len(cut)])
    assert abs(len(cut) - (end - first + SAMPLE_RATE)) <= FRAME
    # espeak-ng's own pauses are short: a clip without long ones is left as it is
    same, zero = cut_pauses(clip, 0.5)
    assert zero == 0 and len(same) == len(clip)
    # digital silence and a clip shorter than a frame have no speech to find
    silence = np.zeros(SAMPLE_RATE, dtype=np.float32)
    assert cut_pauses(silence, 0.5)[0].shape == silence.shape
    assert cut_pauses(clip[: FRAME - 1], 0.1)[0].shape == (FRAME - 1,)


def test_the_dataset_and_the_cache_cut_alike_and_move_the_words(padded, backbones, tmp_path):
    utterance, clip, samples = padded
    torch.manual_seed(0)
    model = build_model(small_pretrained_config(backbones, **{"speech.max_pause_seconds": 0.5}))
    cut, start = cut_pauses(samples, 0.5)
    item = EmotionDataset([utterance], max_pause=0.5)[0]
    np.testing.assert_array_equal(item["speech"], cut)
    for (w, a, b), (w0, a0, b0) in zip(item["words"], utterance.words, strict=True):
        assert w == w0 and a == pytest.approx(a0 - start / SAMPLE_RATE)
        assert b == pytest.approx(b0 - start / SAMPLE_RATE)
    cache = FeatureCache(tmp_path / "cache", model.eval(), max_seconds=30.0)
    assert cache.cut_seconds(utterance) == pytest.approx(start / SAMPLE_RATE)
    cached = EmotionDataset([utterance], features=cache, max_pause=0.5)[0]
    assert [w for w, _, _ in cached["words"]] == [w for w, _, _ in item["words"]]
    assert [t for _, *ts in cached["words"] for t in ts] == pytest.approx(
        [t for _, *ts in item["words"] for t in ts]
    )
    speech, mask = pad_waveforms([cut])
    fresh, frame_mask = model.speech_encoder.backbone_states(speech, mask)
    assert torch.allclose(cached["speech_features"].float(), fresh[0][frame_mask[0]], atol=2e-3)
    # a clip the cut leaves alone keeps the key it had without the cut: its entries are reused
    plain = build_model(small_pretrained_config(backbones)).eval()
    without = FeatureCache(tmp_path / "cache", plain, max_seconds=30.0)
    sf.write(tmp_path / "clip.wav", clip, SAMPLE_RATE, subtype="FLOAT")
    alone = dataclasses.replace(utterance, audio=str(tmp_path / "clip.wav"), words=None)
    assert cache.speech_path(alone, 0) == without.speech_path(alone, 0)
    assert cache.speech_path(utterance, 0) != without.speech_path(utterance, 0)


def test_the_analyzer_reads_the_cut_clip_on_the_clip_s_clock(padded, tokenizer):
    _, clip, samples = padded
    torch.manual_seed(0)
    plain = MGCMA(tiny_config(), tokenizer).eval()
    cutting = MGCMA(tiny_config(**{"speech.max_pause_seconds": 0.5}), tokenizer).eval()
    cutting.load_state_dict(plain.state_dict())
    cut, start = cut_pauses(samples, 0.5)
    text = "what a lovely day"
    whole = Analyzer(cutting, device="cpu").analyze(samples, SAMPLE_RATE, text)
    part = Analyzer(plain, device="cpu").analyze(cut, SAMPLE_RATE, text)
    assert whole.probs == pytest.approx(part.probs, abs=1e-5)  # it read what the cut left
    assert whole.duration == pytest.approx(len(samples) / SAMPLE_RATE)  # the clip's clock
    np.testing.assert_allclose(whole.frame_times, part.frame_times + start / SAMPLE_RATE, atol=1e-5)
    assert whole.span == pytest.approx((start / SAMPLE_RATE, (start + len(cut)) / SAMPLE_RATE))
    assert any("pause" in note for note in whole.notes)
    # without long pauses: nothing cut, nothing said
    short = Analyzer(cutting, device="cpu").analyze(clip, SAMPLE_RATE, text)
    assert short.span == pytest.approx((0.0, len(clip) / SAMPLE_RATE))
    assert not any("pause" in note for note in short.notes)
    assert part.span == pytest.approx((0.0, len(cut) / SAMPLE_RATE))


def test_a_pause_too_short_to_hear_a_word_is_refused():
    for bad in (0.0, 0.05, 31.0):
        with pytest.raises(ConfigError, match="max_pause_seconds"):
            tiny_config(**{"speech.max_pause_seconds": bad})
