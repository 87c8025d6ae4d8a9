"""The voice probe: a logistic regression on pooled speech states, fitted after training on
human voices, added to the fused and speech logits where the voice gate hears a human."""

import numpy as np
import pytest
import torch

from conftest import tiny_config
from mgcma import Analyzer
from mgcma.analysis import SYNTHETIC_VOICE
from mgcma.batch import pad_waveforms
from mgcma.config import ConfigError
from mgcma.losses import MGCMALoss
from mgcma.model import MGCMA
from mgcma.voices import synthetic_weight
from train.data import Collator, EmotionDataset, synthetic_voice
from train.manifest import Utterance
from train.voice_probe import fit_voice_probe, pooled_states

PROBE = {"classifier.voice_probe": True}


def _batch(model, waves=None):
    generator = torch.Generator().manual_seed(0)
    if waves is None:
        waves = [0.1 * torch.randn(n, generator=generator).numpy() for n in (8000, 12000, 4000)]
    speech, speech_mask = pad_waveforms(waves)
    texts = ["i am so happy to see you", "this is terrible", "nobody came"][: len(waves)]
    return dict(speech=speech, speech_mask=speech_mask, **model.tokenize(texts))


def test_an_unfitted_probe_changes_nothing_and_a_fitted_one_adds_its_log_probs(tokenizer):
    torch.manual_seed(0)
    model = MGCMA(tiny_config(**PROBE), tokenizer).eval()
    batch = _batch(model)
    with torch.no_grad():
        before = model(**batch)
        network = model.classifier(before.fused)  # (B, C)
    assert not model.voice_probe.fitted
    # zero weights: log(1/C) on every class, the same shift for all (no change in softmax)
    assert torch.allclose(before.logits.softmax(-1), network.softmax(-1), atol=1e-6)
    with torch.no_grad():
        model.voice_probe.layer.weight.normal_()
        model.voice_probe.layer.bias.normal_()
        known = torch.tensor([0.0, 1.0, 0.0])  # the second clip is a synthetic voice
        out = model(**batch, synthetic_voice=known)
        _, _, pooled = model.speech_encoder(
            batch["speech"], batch["speech_mask"], return_pooled=True
        )
    probe = torch.log_softmax(model.voice_probe.layer(pooled), -1)  # (B, C)
    expected = network + (1 - known)[:, None] * probe
    assert torch.allclose(out.logits, expected, atol=1e-5)
    assert torch.allclose(out.logits[1], network[1], atol=1e-6)  # synthetic: the network alone
    speech = model.speech_head(out.speech_pooled) + (1 - known)[:, None] * probe
    assert torch.allclose(out.speech_logits, speech, atol=1e-5)
    assert torch.allclose(out.text_logits, model.text_head(out.text_pooled))  # words untouched
    # at inference the gate says how human each voice is
    with torch.no_grad():
        free = model(**batch)
    human = 1 - torch.sigmoid(free.voice_gate_logit)[:, None]
    assert torch.allclose(free.logits, network + human * probe, atol=1e-5)


def test_the_pooled_states_are_the_backbone_read_before_any_projection(tokenizer):
    model = MGCMA(tiny_config(**PROBE), tokenizer).eval()
    batch = _batch(model)
    with torch.no_grad():
        _, mask, pooled = model.speech_encoder(
            batch["speech"], batch["speech_mask"], return_pooled=True
        )
        states, _ = model.speech_encoder.backbone_states(batch["speech"], batch["speech_mask"])
    assert pooled.shape == (3, model.speech_encoder.read_width)
    for row in range(3):
        own = states[row, : int(mask[row].sum())].mean(0)  # the clip's own frames only
        assert torch.allclose(pooled[row], own, atol=1e-5)


def test_the_gate_learns_from_its_own_loss_and_the_probe_never_trains(tokenizer):
    torch.manual_seed(0)
    config = tiny_config(**PROBE)
    model = MGCMA(config, tokenizer).train()
    batch = _batch(model)
    known = torch.tensor([1.0, 0.0, 0.0])
    out = model(**batch, synthetic_voice=known)
    terms = MGCMALoss(config)(out, torch.tensor([0, 1, 2]), synthetic_voice=known)
    gate = out.voice_gate_logit
    by_hand = (
        -(torch.log(torch.sigmoid(gate[0])) + torch.log(1 - torch.sigmoid(gate[1:])).sum()) / 3
    )
    assert terms["voice_gate"].item() == pytest.approx(by_hand.item(), abs=1e-5)
    terms["ce"].backward()
    assert model.voice_gate.layer.weight.grad is None  # the mix does not teach the gate
    assert model.voice_probe.layer.weight.grad is None
    terms = MGCMALoss(config)(
        model(**batch, synthetic_voice=known), torch.tensor([0, 1, 2]), synthetic_voice=known
    )
    terms["voice_gate"].backward()
    assert model.voice_gate.layer.weight.grad.abs().sum() > 0
    assert not model.voice_probe.layer.weight.requires_grad
    logits = torch.tensor([2.0, -1.0])
    assert synthetic_weight(logits, None).tolist() == pytest.approx(torch.sigmoid(logits).tolist())
    assert synthetic_weight(logits, torch.tensor([1, 0])).tolist() == [1.0, 0.0]


def test_off_by_default_and_never_without_a_voice(tokenizer):
    plain = MGCMA(tiny_config(), tokenizer)
    assert plain.voice_gate is None and plain.voice_probe is None
    config = tiny_config(**PROBE)
    assert config.ablation("text_only").classifier.voice_probe is False
    for variant in ("speech_only", "no_distribution", "no_instance", "no_token"):
        assert config.ablation(variant).classifier.voice_probe is True
    speech_only = MGCMA(config.ablation("speech_only"), tokenizer).eval()
    with torch.no_grad():
        out = speech_only(**{k: v for k, v in _batch(speech_only).items() if "speech" in k})
    assert out.logits.shape == (3, 4) and out.voice_gate_logit.shape == (3,)
    text_only = config.ablation("text_only")
    text_only.classifier.voice_probe = True
    with pytest.raises(ConfigError, match="speech side"):
        text_only.validate()
    with pytest.raises(ConfigError, match="voice_probe_c"):
        tiny_config(**PROBE, **{"classifier.voice_probe_c": 0.0})


def _utterance(id_, corpus=None, label="happy", **extra):
    fields = {"corpus": corpus} if corpus else {}
    return Utterance(id_, "a.wav", "hello there", label, "s1", "g1", None, {**fields, **extra})


def test_which_voices_count_as_synthetic():
    assert synthetic_voice(_utterance("a", "synthetic"))
    assert not synthetic_voice(_utterance("b", "ravdess"))
    assert not synthetic_voice(_utterance("c"))
    assert synthetic_voice(_utterance("d", "my-tts", synthetic_voice=True))
    assert not synthetic_voice(_utterance("e", "synthetic", synthetic_voice=False))
    dataset = EmotionDataset([_utterance("a", "synthetic"), _utterance("b", "ravdess")])
    items = [
        {"id": u.id, "speech": np.zeros(160, np.float32), "text": u.text, "words": None,
         **dataset._labels(u, u.text)}
        for u in dataset.utterances
    ]  # fmt: skip
    assert Collator(None, 16)(items)["synthetic_voice"].tolist() == [1.0, 0.0]


def _sound(frequency, seconds=0.6, seed=0):
    """A tone at `frequency` Hz, or broadband noise for frequency 0."""
    t = np.arange(int(seconds * 16000)) / 16000
    noise = np.random.default_rng(seed).standard_normal(t.size)
    if not frequency:
        return (0.1 * noise).astype(np.float32)
    return (0.3 * np.sin(2 * np.pi * frequency * t) + 0.01 * noise).astype(np.float32)


def test_fitting_reads_what_the_human_voices_say_and_leaves_synthetic_ones_out(tokenizer, tmp_path):
    """Tones are 'sad' and noise is 'happy' for the human clips; the synthetic clips say the
    opposite and must not count. The fitted probe reads unheard sounds as the humans taught."""
    import soundfile as sf

    utterances = []
    for k in range(16):
        for name, frequency, label in (
            ("low", 150 + 5 * k, "sad"),
            ("high", 900 + 20 * k, "happy"),
        ):
            for corpus, said in (
                ("ravdess", label),
                ("synthetic", {"sad": "happy", "happy": "sad"}[label]),
            ):
                path = tmp_path / f"{corpus}-{name}-{k}.wav"
                sf.write(path, _sound(frequency, seed=k), 16000)
                utterances.append(
                    Utterance(f"{corpus}-{name}-{k}", path, "words", said, "s", "g1", None,
                              {"corpus": corpus, "prosody_emotion": said})
                )  # fmt: skip
    torch.manual_seed(0)
    config = tiny_config(**PROBE, **{"classifier.voice_probe_c": 10.0})  # 32 clips: weak L2
    model = MGCMA(config, tokenizer).eval()
    summary = fit_voice_probe(model, utterances)
    assert summary["human_clips"] == 32 and summary["rows"] == 32
    assert summary["classes"] == ["happy", "sad"] and summary["train_ua"] == 1.0
    assert model.voice_probe.fitted
    emotions = model.emotions
    with torch.no_grad():
        pooled = torch.from_numpy(
            pooled_states(model, [utterances[0]], None)[0]
        )  # the first human tone
        unheard = [_sound(205, seed=99), _sound(0, seed=98)]
        _, _, fresh = model.speech_encoder(*pad_waveforms(unheard), return_pooled=True)
        log_probs = model.voice_probe(fresh)  # (2, C)
    assert pooled.shape[-1] == model.speech_encoder.read_width
    assert emotions[int(log_probs[0].argmax())] == "sad"
    assert emotions[int(log_probs[1].argmax())] == "happy"
    # emotions no human clip had are never said
    for absent in ("neutral", "angry"):
        assert log_probs[:, emotions.index(absent)].max() < -20
    with pytest.raises(ValueError, match="at least two emotions"):
        fit_voice_probe(model, [u for u in utterances if u.label == "sad"])


def test_the_analyzer_says_how_synthetic_the_voice_sounds(tokenizer):
    torch.manual_seed(0)
    model = MGCMA(tiny_config(**PROBE), tokenizer).eval()
    clip = (np.random.default_rng(0).standard_normal(16000) * 0.1).astype(np.float32)
    analyzer = Analyzer(model, device="cpu")
    for bias, synthetic in ((-6.0, False), (6.0, True)):
        with torch.no_grad():
            model.voice_gate.layer.weight.zero_()
            model.voice_gate.layer.bias.fill_(bias)
        analysis = analyzer.analyze(clip, 16000, "what a lovely day")
        assert analysis.synthetic_voice == pytest.approx(float(torch.sigmoid(torch.tensor(bias))))
        notes = [n for n in analysis.notes if "sounds synthetic" in n]
        assert notes == ([SYNTHETIC_VOICE.format(analysis.synthetic_voice)] if synthetic else [])
    plain = Analyzer(MGCMA(tiny_config(), tokenizer), device="cpu")
    assert plain.analyze(clip, 16000, "hello").synthetic_voice is None
