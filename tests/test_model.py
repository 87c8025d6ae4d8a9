"""The model: attention masks, padding invariance, ablations and gradients."""

import copy

import numpy as np
import pytest
import torch

from conftest import tiny_config
from mgcma.batch import pad_waveforms
from mgcma.config import VARIANTS, ConfigError, MGCMAConfig
from mgcma.losses import MGCMALoss
from mgcma.model import MGCMA

TEXTS = ["i am so happy to see you", "this is terrible", "nobody came"]


def _batch(model, lengths=(8000, 12000, 4000), texts=TEXTS, seed=0):
    generator = torch.Generator().manual_seed(seed)
    waves = [torch.randn(n, generator=generator).numpy() * 0.1 for n in lengths]
    speech, speech_mask = pad_waveforms(waves)
    return dict(speech=speech, speech_mask=speech_mask, **model.tokenize(list(texts)))


def test_attention_rows_sum_to_one_and_padded_keys_get_zero(tiny_model):
    with torch.no_grad():
        out = tiny_model(**_batch(tiny_model), return_attention=True)
    text_to_speech = out.attention_text_to_speech  # (B, H, T_t, T_s)
    speech_to_text = out.attention_speech_to_text  # (B, H, T_s, T_t)
    assert text_to_speech.shape[:2] == (3, 2)
    assert torch.allclose(text_to_speech.sum(-1), torch.ones_like(text_to_speech.sum(-1)))
    assert torch.allclose(speech_to_text.sum(-1), torch.ones_like(speech_to_text.sum(-1)))
    padded_frames = ~out.speech_mask  # (B, T_s)
    padded_tokens = ~out.text_mask  # (B, T_t)
    assert padded_frames.any() and padded_tokens.any()
    assert (text_to_speech * padded_frames[:, None, None, :]).abs().max() == 0
    assert (speech_to_text * padded_tokens[:, None, None, :]).abs().max() == 0


@pytest.mark.parametrize("front_end", ["fbank", "waveform"])
def test_padded_batch_equals_each_example_alone(tokenizer, front_end):
    torch.manual_seed(0)
    tiny_model = MGCMA(tiny_config(front_end), tokenizer).eval()
    batch = _batch(tiny_model)
    with torch.no_grad():
        together = tiny_model(**batch, return_attention=True)
        for row, length in enumerate((8000, 12000, 4000)):
            alone = tiny_model(
                speech=batch["speech"][row : row + 1, :length],
                speech_mask=batch["speech_mask"][row : row + 1, :length],
                **tiny_model.tokenize([TEXTS[row]]),
                return_attention=True,
            )
            frames, tokens = alone.speech_mask.shape[1], alone.text_mask.shape[1]
            for name in ("logits", "fused", "speech_mu", "text_log_sigma", "speech_embedding"):
                assert torch.allclose(
                    getattr(together, name)[row], getattr(alone, name)[0], atol=1e-4
                ), name
            assert torch.allclose(
                together.attention_text_to_speech[row, :, :tokens, :frames],
                alone.attention_text_to_speech[0],
                atol=1e-4,
            )


def _parameter_prefixes(model):
    return {name.split(".")[0] for name, _ in model.named_parameters()}


@pytest.mark.parametrize("variant", VARIANTS)
def test_each_ablation_removes_its_parameters_and_loss(tokenizer, variant):
    config = tiny_config().ablation(variant)
    model = MGCMA(config, tokenizer)
    prefixes = _parameter_prefixes(model)
    batch = _batch(model)
    model.train()
    terms = MGCMALoss(config)(model(**batch), torch.tensor([0, 1, 2]))
    expected = {
        "full": ({"distribution", "instance", "token"}, {"distribution", "instance"}),
        "no_distribution": ({"instance", "token"}, {"instance"}),
        "no_instance": ({"distribution", "token"}, {"distribution"}),
        "no_token": ({"distribution", "instance"}, {"distribution", "instance"}),
        "speech_only": (set(), set()),
        "text_only": (set(), set()),
    }[variant]
    assert prefixes & {"distribution", "instance", "token"} == expected[0]
    assert set(terms) & {"distribution", "instance"} == expected[1]
    assert ("speech_encoder" in prefixes) == (variant != "text_only")
    assert ("text_encoder" in prefixes) == (variant != "speech_only")
    assert ("aux_speech" in terms) == (variant not in ("speech_only", "text_only"))
    assert torch.isfinite(terms["total"])


def test_read_pooled_fusion_reads_the_self_attended_streams_beside_the_token_level(tokenizer):
    torch.manual_seed(0)
    model = MGCMA(tiny_config(**{"classifier.read_pooled": True}), tokenizer).eval()
    dim = model.config.alignment.dim
    assert model.fusion[0].in_features == 4 * dim  # two cross-attended + two pooled streams
    batch = _batch(model)
    with torch.no_grad():
        before = model(**batch)
        # silence the cross-attended streams' weights: what is left comes from the pooled ones
        model.fusion[0].weight[:, : 2 * dim] = 0
        pooled_only = model(**batch)
        weights = model.fusion[0].weight[:, 2 * dim :]  # (h, 2d)
        pooled = torch.cat([before.speech_pooled, before.text_pooled], dim=-1)  # (B, 2d)
        expected = torch.nn.functional.gelu(pooled @ weights.T + model.fusion[0].bias)
    assert torch.allclose(pooled_only.fused, expected, atol=1e-5)
    assert not torch.allclose(pooled_only.logits, before.logits)
    # without the token level there is nothing beside the pooled streams: the switch is a no-op
    no_token = MGCMA(
        tiny_config(**{"classifier.read_pooled": True}).ablation("no_token"), tokenizer
    )
    assert no_token.fusion[0].in_features == 2 * dim


def test_unimodal_models_need_only_their_modality(tokenizer):
    speech_model = MGCMA(tiny_config().ablation("speech_only"), tokenizer).eval()
    batch = _batch(speech_model)
    out = speech_model(speech=batch["speech"], speech_mask=batch["speech_mask"])
    assert out.logits.shape == (3, 4) and out.text_mask is None
    text_model = MGCMA(tiny_config().ablation("text_only"), tokenizer).eval()
    out = text_model(**text_model.tokenize(TEXTS))
    assert out.logits.shape == (3, 4) and out.speech_mask is None
    with pytest.raises(ValueError, match="speech"):
        speech_model(**speech_model.tokenize(TEXTS))


@pytest.mark.parametrize("front_end", ["fbank", "waveform"])
def test_every_trainable_parameter_receives_a_gradient(tokenizer, front_end):
    torch.manual_seed(0)
    np.random.seed(0)  # wav2vec2-family time masks come from NumPy's global generator
    config = tiny_config(front_end)
    model = MGCMA(config, tokenizer).train()
    batch = _batch(model, lengths=(16000, 12000, 9000))
    terms = MGCMALoss(config)(model(**batch), torch.tensor([0, 1, 2]))
    terms["total"].backward()
    trainable = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    no_grad = [n for n, p in trainable if p.grad is None or not torch.isfinite(p.grad).all()]
    assert not no_grad, no_grad
    zero = [n for n, p in trainable if p.grad.abs().sum() == 0]
    # the embedding row of unseen tokens is fine; whole matrices with zero gradient are not
    assert not [n for n in zero if "embeddings" not in n], zero


def test_frozen_feature_encoder_stays_frozen(tokenizer):
    config = tiny_config("waveform", **{"speech.freeze_feature_encoder": True})
    model = MGCMA(config, tokenizer)
    frozen = [n for n, p in model.named_parameters() if not p.requires_grad]
    assert frozen and all(".feature_extractor." in n for n in frozen)


@pytest.mark.parametrize("front_end", ["fbank", "waveform"])
def test_building_a_model_leaves_its_config_unchanged(tokenizer, front_end):
    config = tiny_config(front_end)
    before = copy.deepcopy(config)
    model = MGCMA(config, tokenizer)
    assert config == before  # deep equality: hf_config was not written back
    assert config.speech.hf_config is None and config.text.hf_config is None
    # the model's own copy records the resolved backbones, which a checkpoint needs
    assert model.config is not config and model.config.speech is not config.speech
    assert model.config.speech.hf_config["hidden_size"] == 32
    assert model.config.text.hf_config["vocab_size"] == len(tokenizer)
    config.alignment.dropout = 0.5  # and the caller's later edits do not reach the model
    assert model.config.alignment.dropout == before.alignment.dropout


def test_a_text_encoder_without_a_tokenizer_is_refused_before_anything_is_built():
    with pytest.raises(ConfigError, match="needs a tokenizer.*train_tokenizer"):
        MGCMA(tiny_config())
    MGCMA(tiny_config().ablation("speech_only"))  # no text encoder: no tokenizer needed


def test_config_round_trip_and_typed_errors():
    config = MGCMAConfig.preset("compact").ablation("no_token")
    assert MGCMAConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ConfigError, match="alignment.dim must be an integer"):
        config.override({"alignment.dim": "wide"})
    with pytest.raises(ConfigError, match="unknown config key"):
        config.override({"alignment.widht": 3})
    with pytest.raises(ConfigError, match="unknown key"):
        MGCMAConfig.from_dict({"speech": {"backbone": "x", "colour": 1}})
    with pytest.raises(ConfigError, match="divisible"):
        config.override({"alignment.heads": 3})
    with pytest.raises(ConfigError, match="unknown preset"):
        MGCMAConfig.preset("huge")
    paper = MGCMAConfig.preset("paper")
    assert paper.speech.backbone == "facebook/wav2vec2-base"
    assert paper.text.backbone == "bert-base-uncased" and paper.speech.freeze_feature_encoder


def test_extra_layer_reads_a_transformers_backbone_layer_beside_the_last(tokenizer):
    """speech.extra_layer on a transformers backbone: its hidden state k beside the last one,
    concatenated before the projection (the Whisper path: tests/test_whisper_minilm.py)."""
    torch.manual_seed(0)
    model = MGCMA(tiny_config(**{"speech.extra_layer": 0}), tokenizer).eval()
    encoder = model.speech_encoder
    width = encoder.backbone.config.hidden_size
    assert encoder.projection[0].in_features == 2 * width
    batch = _batch(model)
    with torch.no_grad():
        states, _ = encoder.backbone_states(batch["speech"], batch["speech_mask"])  # (B,T,2,D)
        plain = MGCMA(tiny_config(), tokenizer).eval().speech_encoder
        plain.backbone.load_state_dict(encoder.backbone.state_dict())
        last, _ = plain.backbone_states(batch["speech"], batch["speech_mask"])  # (B, T, D)
    assert states.shape[2] == 2 and torch.allclose(states[:, :, 0], last, atol=1e-5)
    assert not torch.allclose(states[:, :, 1], last)
    assert model(**batch).logits.shape == (3, 4)
    with pytest.raises(ConfigError, match="extra_layer=5 but the backbone has"):
        bad = MGCMA(tiny_config(**{"speech.extra_layer": 5}), tokenizer)
        bad.speech_encoder.backbone_states(batch["speech"], batch["speech_mask"])
