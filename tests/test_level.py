"""speech.input_level_dbfs: a clip's active speech level, and every gain heard alike."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from conftest import small_pretrained_config
from mgcma.batch import pad_waveforms
from mgcma.checkpoint import build_model
from mgcma.config import ConfigError, MGCMAConfig
from mgcma.level import MAX_GAIN_DB, active_level_dbfs, normalise_level
from train.features import FeatureCache

RATE = 16000


def tone(seconds: float, amplitude: float, hz: float = 440.0) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    return (amplitude * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def speech_like(seed: int = 0) -> np.ndarray:
    """Half a second of silence, a second of tone, a quiet pause, another second, silence."""
    rng = np.random.default_rng(seed)
    parts = [
        np.zeros(8000),
        tone(1.0, 0.2),
        rng.standard_normal(4000) * 1e-4,  # a pause with a little room noise
        tone(1.0, 0.2, hz=330.0),
        np.zeros(8000),
    ]
    return np.concatenate(parts).astype(np.float32)


def test_active_level_leaves_pauses_and_silence_out():
    clip = torch.from_numpy(speech_like())
    expected = 20 * math.log10(0.2 / math.sqrt(2))  # a sine's RMS: −17.0 dBFS
    assert active_level_dbfs(clip) == pytest.approx(expected, abs=0.1)
    whole = 10 * math.log10(float(clip.double().pow(2).mean()))
    # the plain RMS counts the 1.25 s of silence and pause: 2 s of tone in 3.25
    assert whole == pytest.approx(expected + 10 * math.log10(2 / 3.25), abs=0.1)
    assert active_level_dbfs(torch.zeros(16000)) == float("-inf")
    assert active_level_dbfs(torch.from_numpy(tone(0.01, 0.1))) == pytest.approx(
        20 * math.log10(0.1 / math.sqrt(2)), abs=0.5
    )  # shorter than one frame: the clip is its own frame


def test_normalise_level_sets_the_level_whatever_the_gain():
    clip = speech_like()
    quiet = clip * 10 ** (-26 / 20)  # the same speech 26 dB lower
    short = clip[:30000]
    speech, mask = pad_waveforms([clip, quiet, short])  # (3, N)
    lengths = mask.sum(dim=1)
    out = normalise_level(speech, lengths, -25.0)
    for row, length in zip(out, lengths.tolist(), strict=True):
        assert active_level_dbfs(row[:length]) == pytest.approx(-25.0, abs=0.01)
        assert torch.all(row[length:] == 0)  # padding stays zero
    assert torch.allclose(out[0], out[1], atol=1e-6)  # the gain is gone


def test_normalise_level_leaves_silence_and_caps_the_gain():
    silence = np.zeros(16000, dtype=np.float32)
    hum = tone(1.0, 10 ** (-90 / 20) * math.sqrt(2))  # room noise at −90 dBFS
    speech, mask = pad_waveforms([silence, hum])
    out = normalise_level(speech, mask.sum(dim=1), -25.0)
    assert torch.all(out[0] == 0)
    assert active_level_dbfs(out[1]) == pytest.approx(-90.0 + MAX_GAIN_DB, abs=0.1)


def test_the_level_setting_is_validated_and_old_configs_read_without_it():
    config = MGCMAConfig.preset("whisper_minilm")
    assert config.speech.input_level_dbfs is None
    with pytest.raises(ConfigError, match="input_level_dbfs"):
        config.override({"speech.input_level_dbfs": 3.0}).validate()
    data = config.to_dict()
    del data["speech"]["input_level_dbfs"]  # a checkpoint written before the setting
    assert MGCMAConfig.from_dict(data).speech.input_level_dbfs is None


def test_the_whisper_encoder_hears_every_gain_alike_with_the_setting(backbones):
    clip = speech_like(1)
    speech, mask = pad_waveforms([clip, clip * 0.05])  # the second 26 dB quieter
    torch.manual_seed(0)
    plain = build_model(small_pretrained_config(backbones)).eval()
    torch.manual_seed(0)
    levelled = build_model(
        small_pretrained_config(backbones, **{"speech.input_level_dbfs": -25.0})
    ).eval()
    with torch.no_grad():
        heard, _ = plain.speech_encoder.backbone_states(speech, mask)  # (2, T_s, D_s)
        same, _ = levelled.speech_encoder.backbone_states(speech, mask)
    assert (heard[0] - heard[1]).abs().max() > 0.1  # at its recorded level, gain is an input
    assert (same[0] - same[1]).abs().max() < 1e-4
    # the feature cache keys the level too: states cached without it are never read with it
    first = FeatureCache("unused", plain, max_seconds=8.0).speech_identity
    second = FeatureCache("unused", levelled, max_seconds=8.0).speech_identity
    assert first != second and "level" not in json.dumps(first)
