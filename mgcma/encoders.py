"""Speech and text encoders from transformers, each projected to the shared width d.

A backbone comes from one of three places, in this order:
1. `hf_config` stored in a checkpoint: the architecture is rebuilt locally, weights come from
   the checkpoint's safetensors, so loading a trained model never touches the Hub;
2. `from_scratch`: `model_type` with `overrides`, random weights (the compact preset);
3. `backbone`: a Hub id or local directory loaded with `from_pretrained` (the paper preset).
"""

from __future__ import annotations

import math

import torch
from torch import nn
from transformers import CONFIG_MAPPING, AutoModel, PretrainedConfig

from mgcma.config import ConfigError, SpeechEncoderConfig, TextEncoderConfig
from mgcma.constants import SAMPLE_RATE


def build_backbone(
    config: SpeechEncoderConfig | TextEncoderConfig, extra: dict | None = None
) -> nn.Module:
    """Build a transformers model as described in the module docstring.

    `extra` holds values that only the caller knows (a trained tokenizer's vocabulary size).
    """
    extra = extra or {}
    if config.hf_config is not None:
        return AutoModel.from_config(_hf_config(config.hf_config["model_type"], config.hf_config))
    if config.from_scratch:
        values = {**config.overrides, **extra}
        return AutoModel.from_config(_hf_config(config.model_type, values))
    if not config.backbone:
        raise ConfigError("an encoder needs `backbone` (Hub id or directory) or from_scratch=True")
    try:
        model = AutoModel.from_pretrained(config.backbone, dtype=torch.float32, **config.overrides)
    except OSError as error:
        raise OSError(
            f"could not load the pretrained encoder {config.backbone!r}: {error}. It is downloaded "
            "from the Hugging Face Hub once (internet needed) or read from a local directory."
        ) from error
    return model


def _hf_config(model_type: str, values: dict) -> PretrainedConfig:
    if model_type not in CONFIG_MAPPING:
        raise ConfigError(f"unknown transformers model_type {model_type!r}")
    values = {k: v for k, v in values.items() if k != "model_type"}
    return CONFIG_MAPPING[model_type].from_dict(values)


def _drop_pooler(backbone: nn.Module) -> None:
    # BERT's pooler (a tanh layer on [CLS]) is unused here: it would be a parameter with no gradient
    if getattr(backbone, "pooler", None) is not None:
        backbone.pooler = None


class SpeechEncoder(nn.Module):
    """Waveform (B, N) at 16 kHz → frames (B, T_s, d) and their padding mask (B, T_s)."""

    def __init__(self, config: SpeechEncoderConfig, dim: int) -> None:
        super().__init__()
        self.config = config
        self.backbone = build_backbone(config)
        if not hasattr(self.backbone, "_get_feat_extract_output_lengths"):
            raise ConfigError(
                f"{type(self.backbone).__name__} is not a waveform encoder of the wav2vec2 family "
                "(wav2vec2, HuBERT, WavLM, data2vec-audio)"
            )
        config.hf_config = self.backbone.config.to_dict()
        if config.freeze_feature_encoder:
            for parameter in self.backbone.feature_extractor.parameters():
                parameter.requires_grad = False
        if not getattr(self.backbone.config, "mask_time_prob", 0):
            self.backbone.masked_spec_embed = None  # unused without time masking
        hidden = self.backbone.config.hidden_size
        self.projection = nn.Sequential(nn.Linear(hidden, dim), nn.LayerNorm(dim))
        kernels = self.backbone.config.conv_kernel
        strides = self.backbone.config.conv_stride
        self.hop_samples = math.prod(strides)  # 320 for wav2vec2: 20 ms per frame
        receptive = 1
        for kernel, stride_so_far in zip(kernels, _cumprod([1, *strides[:-1]]), strict=True):
            receptive += (kernel - 1) * stride_so_far
        self.receptive_samples = receptive  # 400 for wav2vec2: 25 ms
        self.min_samples = receptive

    def frame_times(self, num_frames: int) -> torch.Tensor:
        """Centre of each frame's receptive field, in seconds: (T_s,)."""
        starts = torch.arange(num_frames, dtype=torch.float32) * self.hop_samples
        return (starts + self.receptive_samples / 2) / SAMPLE_RATE

    def num_frames(self, lengths: torch.Tensor) -> torch.Tensor:
        """Frames the backbone produces for waveforms of `lengths` samples: (B,) long."""
        return self.backbone._get_feat_extract_output_lengths(lengths).long()

    def forward(
        self, speech: torch.Tensor, speech_mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        lengths = speech_mask.sum(dim=1)  # (B,)
        if int(lengths.min()) < self.min_samples:
            raise ValueError(
                f"speech needs at least {self.min_samples} samples "
                f"({self.min_samples / SAMPLE_RATE * 1000:.0f} ms)"
            )
        if self.config.normalize_waveform:
            speech = _normalise(speech, speech_mask)
        hidden = self.backbone(
            input_values=speech, attention_mask=speech_mask.long()
        ).last_hidden_state  # (B, T_s, D_s)
        frames_per_example = self.num_frames(lengths)  # (B,)
        frame_mask = (
            torch.arange(hidden.shape[1], device=hidden.device)[None, :]
            < (frames_per_example[:, None])
        )  # (B, T_s)
        return self.projection(hidden), frame_mask  # (B, T_s, d), (B, T_s)


class TextEncoder(nn.Module):
    """Token ids (B, T_t) → token states (B, T_t, d); the mask passes through unchanged."""

    def __init__(self, config: TextEncoderConfig, dim: int, tokenizer) -> None:
        super().__init__()
        self.config = config
        extra = {}
        if config.from_scratch and config.hf_config is None:
            extra = {"vocab_size": len(tokenizer), "pad_token_id": tokenizer.pad_token_id}
        self.backbone = build_backbone(config, extra)
        _drop_pooler(self.backbone)
        config.hf_config = self.backbone.config.to_dict()
        vocab = self.backbone.config.vocab_size
        if len(tokenizer) > vocab:
            raise ConfigError(
                f"the tokenizer has {len(tokenizer)} tokens but the text encoder only {vocab}"
            )
        hidden = self.backbone.config.hidden_size
        self.projection = nn.Sequential(nn.Linear(hidden, dim), nn.LayerNorm(dim))

    def forward(self, input_ids: torch.Tensor, text_mask: torch.Tensor) -> torch.Tensor:
        hidden = self.backbone(
            input_ids=input_ids,
            attention_mask=text_mask.long(),
            token_type_ids=torch.zeros_like(input_ids),
        ).last_hidden_state  # (B, T_t, D_t)
        return self.projection(hidden)  # (B, T_t, d)


def _normalise(speech: torch.Tensor, speech_mask: torch.Tensor) -> torch.Tensor:
    """Zero mean, unit variance over each waveform's real samples; padding stays zero."""
    mask = speech_mask.to(speech.dtype)  # (B, N)
    count = mask.sum(dim=1, keepdim=True).clamp_min(1.0)  # (B, 1)
    mean = (speech * mask).sum(dim=1, keepdim=True) / count
    variance = (((speech - mean) * mask) ** 2).sum(dim=1, keepdim=True) / count
    return (speech - mean) / torch.sqrt(variance + 1e-7) * mask


def _cumprod(values: list[int]) -> list[int]:
    out, running = [], 1
    for value in values:
        running *= value
        out.append(running)
    return out
