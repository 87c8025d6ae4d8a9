"""Temperature scaling: fitted right, stored in the checkpoint, used by the Analyzer; ECE."""

import json

import numpy as np
import pytest
import torch
from scipy.special import softmax

from mgcma.analysis import Analyzer
from mgcma.checkpoint import CheckpointError, load_model, save_model
from train.calibrate import (
    calibrate,
    expected_calibration_error,
    fit_temperature,
    reliability_bins,
)


def _overconfident(temperature: float, n: int = 4000, classes: int = 4, seed: int = 0):
    """Logits whose labels are drawn from softmax(logits / temperature): the right T is known."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, 3, size=(n, classes))
    probs = softmax(logits / temperature, axis=1)
    labels = np.array([rng.choice(classes, p=p) for p in probs])
    return logits, labels


def test_fitted_temperature_recovers_the_true_one():
    for true in (0.5, 2.5):
        logits, labels = _overconfident(true)
        assert fit_temperature(logits, labels) == pytest.approx(true, rel=0.1)


def test_scaling_an_overconfident_head_lowers_ece_and_keeps_every_prediction():
    logits, labels = _overconfident(3.0)
    report = calibrate({"fused": logits}, labels)["fused"]
    assert report["ece_before"] > 0.15 and report["ece_after"] < 0.03
    assert report["nll_after"] < report["nll_before"]
    scaled = softmax(logits / report["temperature"], axis=1)
    assert (scaled.argmax(1) == logits.argmax(1)).all()


def test_reliability_bins_partition_the_predictions():
    probs = softmax(np.random.default_rng(1).normal(0, 2, size=(500, 4)), axis=1)
    labels = np.zeros(500, dtype=int)
    rows = reliability_bins(probs, labels, bins=10)
    assert sum(row["count"] for row in rows) == 500
    assert rows[0]["count"] == 0  # a top-class probability is never below 1/4
    for row in rows:
        if row["count"]:
            assert row["lower"] <= row["confidence"] <= row["upper"]
    # all-correct predictions of confidence c: ECE is the mean gap 1 - c
    sure = np.tile([0.7, 0.1, 0.1, 0.1], (10, 1))
    assert expected_calibration_error(sure, np.zeros(10, dtype=int)) == pytest.approx(0.3)


def test_checkpoint_stores_the_temperatures_and_the_analyzer_uses_them(tiny_model, tmp_path):
    rng = np.random.default_rng(0)
    waveform = (0.1 * rng.standard_normal(16000)).astype(np.float32)
    plain = Analyzer(tiny_model).analyze(waveform, 16000, "a happy day")
    tiny_model.config.calibration.fused = 4.0
    tiny_model.config.calibration.text = 0.5
    save_model(tiny_model, tmp_path / "calibrated")
    loaded = load_model(tmp_path / "calibrated")
    assert loaded.config.calibration.fused == 4.0
    scaled = Analyzer(loaded).analyze(waveform, 16000, "a happy day")
    assert scaled.label == plain.label
    fused_plain = np.array(list(plain.probs.values()))
    fused_scaled = np.array(list(scaled.probs.values()))
    # softmax(z / 4) is softmax(z) raised to the power 1/4, renormalised
    expected = fused_plain**0.25 / (fused_plain**0.25).sum()
    np.testing.assert_allclose(fused_scaled, expected, atol=1e-5)
    assert max(scaled.text_probs.values()) >= max(plain.text_probs.values())  # T < 1: sharper
    assert scaled.speech_probs == pytest.approx(plain.speech_probs, abs=1e-6)  # T = 1: as is


def test_a_checkpoint_with_a_bad_temperature_is_refused(tiny_model, tmp_path):
    save_model(tiny_model, tmp_path / "ckpt")
    path = tmp_path / "ckpt" / "config.json"
    document = json.loads(path.read_text())
    document["mgcma"]["calibration"]["fused"] = 0.0
    path.write_text(json.dumps(document))
    with pytest.raises(CheckpointError, match="calibration.fused"):
        load_model(tmp_path / "ckpt")


def test_model_probabilities_without_auxiliary_heads_has_the_fused_head_only(tiny_model):
    output = tiny_model(
        speech=torch.zeros(1, 16000),
        speech_mask=torch.ones(1, 16000, dtype=torch.bool),
        **tiny_model.tokenize(["hello"]),
    )
    output.speech_logits = output.text_logits = None
    assert set(tiny_model.probabilities(output)) == {"fused"}


def test_pooled_bins_are_the_bins_of_all_predictions_together():
    from train.calibrate import pool_bins, pooled_ece

    probs = softmax(np.random.default_rng(2).normal(0, 2, size=(300, 4)), axis=1)
    labels = np.random.default_rng(3).integers(0, 4, size=300)
    halves = [
        reliability_bins(probs[:120], labels[:120]),
        reliability_bins(probs[120:], labels[120:]),
    ]
    pooled = pool_bins(halves)
    whole = reliability_bins(probs, labels)
    for merged, direct in zip(pooled, whole, strict=True):
        assert merged["count"] == direct["count"]
        if direct["count"]:
            assert merged["accuracy"] == pytest.approx(direct["accuracy"], abs=1e-3)
            assert merged["confidence"] == pytest.approx(direct["confidence"], abs=1e-3)
    assert pooled_ece(pooled) == pytest.approx(expected_calibration_error(probs, labels), abs=1e-3)


def test_each_auxiliary_head_is_calibrated_on_what_it_learned_to_say():
    """With loss.modality_targets the text head learns the words' emotion: fitted against the
    label (the voice's, where they disagree) its temperature would flatten every reading."""
    logits, words = _overconfident(1.0)  # the text head reads the words right, at T = 1
    rng = np.random.default_rng(2)
    labels = np.where(rng.random(len(words)) < 0.4, rng.integers(0, 4, len(words)), words)
    against_label = calibrate({"text": logits}, labels)["text"]["temperature"]
    report = calibrate({"fused": logits, "text": logits}, labels, {"text": words})
    assert report["text"]["temperature"] == pytest.approx(1.0, rel=0.1)
    assert against_label > 1.5 and report["fused"]["temperature"] == against_label
    assert report["text"]["ece_after"] < 0.03
