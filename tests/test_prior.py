"""The voice-first prior: the voice's emotion, or the words' where the voice is neutral."""

import pytest
import torch

from conftest import tiny_config
from mgcma.batch import pad_waveforms
from mgcma.config import ConfigError
from mgcma.losses import MGCMALoss
from mgcma.model import MGCMA
from mgcma.prior import voice_first_log_prior


def _logits(*probs):
    return torch.tensor(probs, dtype=torch.float32).log()  # (B, C): softmax gives probs back


def test_the_reading_by_hand():
    voice = _logits([0.5, 0.1, 0.3, 0.1])
    words = _logits([0.2, 0.6, 0.1, 0.1])
    prior = voice_first_log_prior(voice, words, neutral=0).exp()[0]
    # neutral: both neutral; e: the voice says e, or the voice is neutral and the words say e
    expected = [0.5 * 0.2, 0.1 + 0.5 * 0.6, 0.3 + 0.5 * 0.1, 0.1 + 0.5 * 0.1]
    assert prior.tolist() == pytest.approx(expected, abs=1e-6)
    assert prior.sum().item() == pytest.approx(1.0, abs=1e-6)


def test_an_emotional_voice_decides_and_a_neutral_voice_defers_to_the_words():
    angry_voice = _logits([1e-6, 1e-6, 1 - 3e-6, 1e-6])
    neutral_voice = _logits([1 - 3e-6, 1e-6, 1e-6, 1e-6])
    happy_words = _logits([0.05, 0.85, 0.05, 0.05])
    neutral_words = _logits([0.9, 0.04, 0.03, 0.03])
    assert voice_first_log_prior(angry_voice, happy_words, 0).exp().argmax().item() == 2
    deferred = voice_first_log_prior(neutral_voice, happy_words, 0).exp()[0]
    assert deferred.tolist() == pytest.approx([0.05, 0.85, 0.05, 0.05], abs=1e-5)
    both_neutral = voice_first_log_prior(neutral_voice, neutral_words, 0).exp()[0]
    assert both_neutral.argmax().item() == 0 and both_neutral[0] > 0.89


def test_it_is_a_distribution_for_any_logits_and_neutral_anywhere():
    generator = torch.Generator().manual_seed(0)
    voice = 4 * torch.randn(64, 5, generator=generator)
    words = 4 * torch.randn(64, 5, generator=generator)
    for neutral in range(5):
        log_prior = voice_first_log_prior(voice, words, neutral)  # (64, 5)
        assert torch.allclose(log_prior.logsumexp(-1), torch.zeros(64), atol=1e-5)
        p_voice, p_words = voice.softmax(-1), words.softmax(-1)
        assert torch.allclose(
            log_prior[:, neutral].exp(), p_voice[:, neutral] * p_words[:, neutral], atol=1e-6
        )


def _batch(model):
    generator = torch.Generator().manual_seed(0)
    waves = [0.1 * torch.randn(n, generator=generator).numpy() for n in (8000, 12000, 4000)]
    speech, speech_mask = pad_waveforms(waves)
    texts = ["i am so happy to see you", "this is terrible", "nobody came"]
    return dict(speech=speech, speech_mask=speech_mask, **model.tokenize(texts))


def test_the_fused_logits_are_the_mlp_plus_the_prior_and_train_both_heads(tokenizer):
    torch.manual_seed(0)
    config = tiny_config(**{"classifier.voice_first": True})
    model = MGCMA(config, tokenizer).eval()
    batch = _batch(model)
    with torch.no_grad():
        out = model(**batch)
        mlp = model.classifier(out.fused)  # (B, C)
    neutral = model.emotions.index("neutral")
    prior = voice_first_log_prior(out.speech_logits, out.text_logits, neutral)
    assert torch.allclose(out.prior_logits, prior)
    assert torch.allclose(out.logits, mlp + prior, atol=1e-5)
    # with the fusion MLP silenced the fused answer is the voice-first reading itself
    with torch.no_grad():
        model.classifier.weight.zero_()
        model.classifier.bias.zero_()
        silent = model(**batch)
    assert torch.allclose(silent.logits.softmax(-1), prior.exp(), atol=1e-5)
    # the fused loss alone reaches both auxiliary heads through the prior
    model.train()
    loss = MGCMALoss(config)(model(**batch), torch.tensor([0, 1, 2]))["ce"]
    loss.backward()
    assert model.speech_head.weight.grad.abs().sum() > 0
    assert model.text_head.weight.grad.abs().sum() > 0
    # off (the default), no prior: the fused logits are the MLP's
    plain = MGCMA(tiny_config(), tokenizer).eval()
    with torch.no_grad():
        plain_out = plain(**_batch(plain))
    assert plain_out.prior_logits is None
    assert torch.allclose(plain_out.logits, plain.classifier(plain_out.fused))


def test_the_switch_needs_both_heads_and_a_neutral_class():
    config = tiny_config(**{"classifier.voice_first": True})
    for variant in ("speech_only", "text_only"):  # no auxiliary heads: the prior goes with them
        assert config.ablation(variant).classifier.voice_first is False
    for variant in ("no_distribution", "no_instance", "no_token"):
        assert config.ablation(variant).classifier.voice_first is True
    with pytest.raises(ConfigError, match="auxiliary heads"):
        tiny_config(**{"classifier.voice_first": True, "classifier.auxiliary_heads": False})
    no_neutral = tiny_config(**{"classifier.voice_first": True})
    no_neutral.emotions = ("happy", "angry", "sad")
    with pytest.raises(ConfigError, match="neutral"):
        no_neutral.validate()
