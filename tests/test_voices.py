"""Voice experts: a human and a synthetic last layer, picked by the known voice or by the gate."""

import pytest
import torch

from conftest import tiny_config
from mgcma.batch import pad_waveforms
from mgcma.config import ConfigError
from mgcma.losses import MGCMALoss
from mgcma.model import MGCMA
from mgcma.voices import VoiceExperts, expert_weight
from train.data import Collator, EmotionDataset, synthetic_voice
from train.manifest import Utterance


def _batch(model):
    generator = torch.Generator().manual_seed(0)
    waves = [0.1 * torch.randn(n, generator=generator).numpy() for n in (8000, 12000, 4000)]
    speech, speech_mask = pad_waveforms(waves)
    texts = ["i am so happy to see you", "this is terrible", "nobody came"]
    return dict(speech=speech, speech_mask=speech_mask, **model.tokenize(texts))


def test_the_mix_is_each_expert_at_the_ends_and_linear_between():
    torch.manual_seed(0)
    experts = VoiceExperts(6, 4)
    x = torch.randn(3, 6)
    human, synthetic = experts.layer(x).unflatten(-1, (2, 4)).unbind(1)  # (3, 4) each
    assert torch.allclose(experts(x, torch.zeros(3)), human)
    assert torch.allclose(experts(x, torch.ones(3)), synthetic)
    half = experts(x, torch.tensor([0.5, 0.5, 0.5]))
    assert torch.allclose(half, 0.5 * (human + synthetic), atol=1e-6)
    mixed = experts(x, torch.tensor([0.0, 1.0, 0.25]))  # per row
    assert torch.allclose(mixed[0], human[0]) and torch.allclose(mixed[1], synthetic[1])
    assert torch.allclose(mixed[2], 0.75 * human[2] + 0.25 * synthetic[2], atol=1e-6)


def test_known_voice_picks_the_expert_and_inference_follows_the_gate(tokenizer):
    torch.manual_seed(0)
    config = tiny_config(**{"classifier.voice_experts": True})
    model = MGCMA(config, tokenizer).eval()
    batch = _batch(model)
    with torch.no_grad():
        free = model(**batch)
        as_human = model(**batch, synthetic_voice=torch.zeros(3))
        as_synthetic = model(**batch, synthetic_voice=torch.ones(3))
        human = model.classifier.layer(free.fused).unflatten(-1, (2, 4))[:, 0]
    assert free.voice_gate_logit.shape == (3,)
    assert torch.allclose(as_human.logits, human, atol=1e-6)
    assert not torch.allclose(as_human.logits, as_synthetic.logits)
    # without a known voice each clip is read by the experts as the gate weighs them
    w = torch.sigmoid(free.voice_gate_logit)[:, None]  # (B, 1)
    expected = (1 - w) * as_human.logits + w * as_synthetic.logits
    assert torch.allclose(free.logits, expected, atol=1e-5)
    expected_speech = (1 - w) * as_human.speech_logits + w * as_synthetic.speech_logits
    assert torch.allclose(free.speech_logits, expected_speech, atol=1e-5)
    # a gate sure of a human voice gives the human expert's answer
    with torch.no_grad():
        model.voice_gate.layer.weight.zero_()
        model.voice_gate.layer.bias.fill_(-30.0)
        sure = model(**batch)
    assert torch.allclose(sure.logits, as_human.logits, atol=1e-5)


def test_each_expert_learns_only_its_voices_and_the_gate_only_from_its_loss(tokenizer):
    torch.manual_seed(0)
    config = tiny_config(**{"classifier.voice_experts": True})
    model = MGCMA(config, tokenizer).train()
    batch = _batch(model)
    known = torch.zeros(3)  # three human clips
    out = model(**batch, synthetic_voice=known)
    terms = MGCMALoss(config)(out, torch.tensor([0, 1, 2]), synthetic_voice=known)
    assert "voice_gate" in terms
    terms["ce"].backward()
    grad = model.classifier.layer.weight.grad.unflatten(0, (2, 4))  # (2, C, h)
    assert grad[0].abs().sum() > 0 and grad[1].abs().sum() == 0
    assert model.voice_gate.layer.weight.grad is None  # the mix does not teach the gate
    model.zero_grad()
    out = model(**batch, synthetic_voice=known)
    MGCMALoss(config)(out, torch.tensor([0, 1, 2]), synthetic_voice=known)["voice_gate"].backward()
    assert model.voice_gate.layer.weight.grad.abs().sum() > 0
    # the gate's target: BCE against the known voice
    gate = torch.tensor([2.0, -1.0, 0.5])
    bce = torch.nn.functional.binary_cross_entropy_with_logits(gate, torch.tensor([1.0, 0, 0]))
    assert bce.item() == pytest.approx(
        -(torch.log(torch.sigmoid(gate[0])) + torch.log(1 - torch.sigmoid(gate[1]))
          + torch.log(1 - torch.sigmoid(gate[2]))).item() / 3, abs=1e-6
    )  # fmt: skip
    assert expert_weight(gate, None).tolist() == pytest.approx(torch.sigmoid(gate).tolist())
    assert expert_weight(gate, torch.tensor([1, 0, 0])).tolist() == [1.0, 0.0, 0.0]


def test_off_by_default_and_not_without_a_voice(tokenizer):
    plain = MGCMA(tiny_config(), tokenizer)
    assert plain.voice_gate is None and isinstance(plain.classifier, torch.nn.Linear)
    config = tiny_config(**{"classifier.voice_experts": True})
    assert config.ablation("text_only").classifier.voice_experts is False
    for variant in ("speech_only", "no_distribution", "no_instance", "no_token"):
        assert config.ablation(variant).classifier.voice_experts is True
    speech_only = MGCMA(config.ablation("speech_only"), tokenizer).eval()
    with torch.no_grad():
        out = speech_only(**{k: v for k, v in _batch(speech_only).items() if "speech" in k})
    assert out.logits.shape == (3, 4) and out.voice_gate_logit.shape == (3,)
    text_only = config.ablation("text_only")
    text_only.classifier.voice_experts = True
    with pytest.raises(ConfigError, match="speech side"):
        text_only.validate()


def _utterance(id_, corpus=None, **extra):
    fields = {"corpus": corpus} if corpus else {}
    return Utterance(id_, "a.wav", "hello there", "happy", "s1", "g1", None, {**fields, **extra})


def test_which_voices_count_as_synthetic():
    assert synthetic_voice(_utterance("a", "synthetic"))
    assert not synthetic_voice(_utterance("b", "ravdess"))
    assert not synthetic_voice(_utterance("c"))
    assert synthetic_voice(_utterance("d", "my-tts", synthetic_voice=True))
    assert not synthetic_voice(_utterance("e", "synthetic", synthetic_voice=False))
    dataset = EmotionDataset([_utterance("a", "synthetic"), _utterance("b", "ravdess")])
    items = [
        {"id": u.id, "speech": torch.zeros(160).numpy(), "text": u.text, "words": None,
         **dataset._labels(u, u.text)}
        for u in dataset.utterances
    ]  # fmt: skip
    batch = Collator(None, 16)(items)
    assert batch["synthetic_voice"].tolist() == [1.0, 0.0]


def test_the_readout_adds_a_probe_of_the_pooled_backbone_to_both_voice_heads(tokenizer):
    torch.manual_seed(0)
    config = tiny_config(**{"classifier.voice_readout": True, "classifier.voice_experts": True})
    model = MGCMA(config, tokenizer).eval()
    batch = _batch(model)
    known = torch.tensor([0.0, 1.0, 0.0])
    with torch.no_grad():
        out = model(**batch, synthetic_voice=known)
        frames, mask, pooled = model.speech_encoder(
            batch["speech"], batch["speech_mask"], return_pooled=True
        )
        states, _ = model.speech_encoder.backbone_states(batch["speech"], batch["speech_mask"])
    # the pooled backbone states: a masked mean over each clip's own frames, before projection
    assert pooled.shape == (3, model.speech_encoder.read_width)
    first = states[0, : int(mask[0].sum())].mean(0)
    assert torch.allclose(pooled[0], first, atol=1e-5)
    readout = model.voice_readout.layer(model.voice_readout.norm(pooled), known)
    assert torch.allclose(out.readout_logits, readout, atol=1e-5)
    assert torch.allclose(out.logits, model.classifier(out.fused, known) + readout, atol=1e-5)
    speech = model.speech_head(out.speech_pooled, known) + readout
    assert torch.allclose(out.speech_logits, speech, atol=1e-5)
    assert torch.allclose(out.text_logits, model.text_head(out.text_pooled))  # words untouched
    plain = tiny_config(**{"classifier.voice_readout": True})
    assert MGCMA(plain, tokenizer).voice_readout.layer.out_features == 4  # one, without experts
    assert tiny_config().classifier.voice_readout is False
    assert config.ablation("text_only").classifier.voice_readout is False


def test_the_analyzer_says_how_synthetic_the_voice_sounds(tokenizer):
    import numpy as np

    from mgcma import Analyzer
    from mgcma.analysis import SYNTHETIC_VOICE

    torch.manual_seed(0)
    model = MGCMA(tiny_config(**{"classifier.voice_experts": True}), tokenizer).eval()
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
        assert set(analysis.probs) == set(model.emotions)
    assert (
        Analyzer(MGCMA(tiny_config(), tokenizer), device="cpu")
        .analyze(clip, 16000, "hello")
        .synthetic_voice
        is None
    )
