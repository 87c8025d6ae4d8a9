"""A human voice's temperatures: fitted on the other folds' unheard human voices, stored in the
checkpoint, mixed with validation's T by the voice gate, used by the Analyzer."""

import json

import numpy as np
import pytest
import torch
from scipy.special import softmax

from conftest import tiny_config
from mgcma import Analyzer
from mgcma.checkpoint import CheckpointError, load_model, save_model
from mgcma.model import MGCMA
from train.unheard import (
    LOGITS_FILE,
    clip_temperatures,
    cross_fit,
    fit_human_temperature,
    human_ece,
)

PROBE = {"classifier.voice_probe": True}


def _clips(temperature, n=3000, gate=-12.0, seed=0, classes=4):
    """Logits whose labels are drawn from softmax(logits / temperature), a gate logit each."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, 3, size=(n, classes))
    probs = softmax(logits / np.asarray(temperature).reshape(-1, 1), axis=1)
    labels = np.array([rng.choice(classes, p=p) for p in probs])
    return logits, labels, np.full(n, gate)


def test_the_gate_mixes_the_two_temperatures_clip_by_clip():
    gate = np.array([-50.0, 0.0, 50.0])  # human, unsure, synthetic
    t = clip_temperatures(gate, 2.0, 4.0)
    np.testing.assert_allclose(t[:, 0], [4.0, 3.0, 2.0])
    np.testing.assert_allclose(clip_temperatures(gate, 2.0, None)[:, 0], [2.0, 2.0, 2.0])


def test_the_human_temperature_is_recovered_and_synthetic_clips_do_not_move_it():
    logits, labels, gate = _clips(3.5)  # human voices, truly at T = 3.5
    assert fit_human_temperature(logits, labels, gate, 1.5) == pytest.approx(3.5, rel=0.1)
    # synthetic clips (gate +12) at their own T = 1.5 beside them change nothing
    s_logits, s_labels, s_gate = _clips(1.5, gate=12.0, seed=1)
    both = fit_human_temperature(
        np.concatenate([logits, s_logits]),
        np.concatenate([labels, s_labels]),
        np.concatenate([gate, s_gate]),
        1.5,
    )
    assert both == pytest.approx(3.5, rel=0.1)
    # a gate at 0 gives each clip (T + T_human) / 2: labels drawn at 2.5 with T = 1.5 → 3.5
    m_logits, m_labels, m_gate = _clips(2.5, gate=0.0, seed=2)
    assert fit_human_temperature(m_logits, m_labels, m_gate, 1.5) == pytest.approx(3.5, rel=0.15)


def _fold(root, group, temperature, tokenizer, seed):
    """A fold directory as `train.fit` leaves it: a checkpoint with a voice gate calibrated on
    validation (T = 1.5), result.json, and its human test clips' logits drawn at `temperature`."""
    fold = root / f"fold-{group}"
    torch.manual_seed(seed)
    model = MGCMA(tiny_config(**PROBE), tokenizer)
    model.config.calibration.fused = model.config.calibration.speech = 1.5
    save_model(model, fold / "best")
    (fold / "result.json").write_text(json.dumps({"test_group": group}))
    logits, labels, gate = _clips(temperature, n=1500, seed=seed)
    np.savez(
        fold / LOGITS_FILE,
        gate=gate,
        fused=logits,
        fused_truth=labels,
        fused_validation_t=np.float64(1.5),
        speech=logits,
        speech_truth=labels,
        speech_validation_t=np.float64(1.5),
    )
    return logits, labels


def test_each_fold_is_calibrated_on_the_other_folds_alone(tokenizer, tmp_path):
    # fold g1's own unheard voices are calibrated as they are (T = 1); g2 and g3's need T = 4
    own, own_labels = _fold(tmp_path, "g1", 1.0, tokenizer, seed=1)
    _fold(tmp_path, "g2", 4.0, tokenizer, seed=2)
    _fold(tmp_path, "g3", 4.0, tokenizer, seed=3)
    reports = cross_fit(None, tmp_path, ["g1", "g2", "g3"])
    assert set(reports) == {"g1", "g2", "g3"}
    # g1 never sees its own clips: its T_human is the others' 4, and so it is wrong for them
    g1 = reports["g1"]["fused"]
    assert g1["temperature"] == pytest.approx(4.0, rel=0.1)
    assert g1["count"] == 1500 and g1["validation_temperature"] == 1.5
    assert g1["ece_before"] == pytest.approx(
        human_ece(
            {
                "gate": np.full(1500, -12.0),
                "fused": own,
                "fused_truth": own_labels,
                "fused_validation_t": np.float64(1.5),
            },
            "fused",
            None,
        ),
        abs=1e-4,
    )
    assert g1["ece_after"] > g1["ece_before"]  # T = 4 on clips drawn at T = 1
    # g2 is fitted on g1 (T = 1) and g3 (T = 4) together: between the two
    assert 1.2 < reports["g2"]["fused"]["temperature"] < 3.8
    assert reports["g2"]["fused"]["ece_after"] < reports["g2"]["fused"]["ece_before"]
    model = load_model(tmp_path / "fold-g1" / "best")
    calibration = model.config.calibration
    assert calibration.fused_human == g1["temperature"]
    assert calibration.speech_human == reports["g1"]["speech"]["temperature"]
    assert calibration.fused == 1.5  # validation's T stays, for synthetic voices
    assert "folds g2, g3 (3000 clips)" in calibration.fitted_on_human
    result = json.loads((tmp_path / "fold-g1" / "result.json").read_text())
    assert result["calibration_human"]["fused"] == g1
    # a single fold has nothing to be calibrated on
    assert cross_fit(None, tmp_path, ["g1"]) == {}


def test_the_analyzer_gives_a_human_voice_its_own_temperature(tokenizer, tmp_path):
    torch.manual_seed(0)
    model = MGCMA(tiny_config(**PROBE), tokenizer).eval()
    clip = (np.random.default_rng(0).standard_normal(16000) * 0.1).astype(np.float32)
    with torch.no_grad():
        model.voice_probe.layer.weight.normal_()  # a fitted probe: sure of itself
        model.voice_gate.layer.weight.zero_()
    model.config.calibration.fused_human = 3.0
    model.config.calibration.speech_human = 2.0
    save_model(model, tmp_path / "ckpt")
    loaded = load_model(tmp_path / "ckpt")
    assert loaded.config.calibration.fused_human == 3.0
    model.config.calibration.fused_human = model.config.calibration.speech_human = None

    def power(probs: dict, t: float) -> np.ndarray:  # softmax(z / t) from softmax(z)
        p = np.array(list(probs.values())) ** (1 / t)
        return p / p.sum()

    # a human voice, a synthetic one, one the gate is unsure of: T_human, T = 1, the mean
    for bias, fused, speech in ((-30.0, 3.0, 2.0), (30.0, 1.0, 1.0), (0.0, 2.0, 1.5)):
        with torch.no_grad():
            for m in (model, loaded):
                m.voice_gate.layer.bias.fill_(bias)
        plain = Analyzer(model, device="cpu").analyze(clip, 16000, "what a lovely day")
        analysis = Analyzer(loaded, device="cpu").analyze(clip, 16000, "what a lovely day")
        np.testing.assert_allclose(
            list(analysis.probs.values()), power(plain.probs, fused), atol=1e-4
        )
        np.testing.assert_allclose(
            list(analysis.speech_probs.values()), power(plain.speech_probs, speech), atol=1e-4
        )
        assert analysis.text_probs == pytest.approx(plain.text_probs, abs=1e-6)  # the words'
        assert analysis.label == plain.label
        if bias < 0:
            assert max(analysis.probs.values()) < max(plain.probs.values())


def test_a_checkpoint_with_a_bad_human_temperature_is_refused(tokenizer, tmp_path):
    save_model(MGCMA(tiny_config(**PROBE), tokenizer), tmp_path / "ckpt")
    path = tmp_path / "ckpt" / "config.json"
    document = json.loads(path.read_text())
    document["mgcma"]["calibration"]["fused_human"] = -1.0
    path.write_text(json.dumps(document))
    with pytest.raises(CheckpointError, match="calibration.fused_human"):
        load_model(tmp_path / "ckpt")
