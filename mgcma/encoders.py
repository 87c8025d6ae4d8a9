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
import torchaudio
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


FBANK_MODEL_TYPES = ("wav2vec2-bert",)  # encoders that read log-mel filterbanks, not waveforms
FBANK_BINS = 80  # Kaldi-compatible filterbank, as SeamlessM4T's feature extractor computes it
FBANK_WINDOW, FBANK_HOP = 400, 160  # 25-ms windows every 10 ms
FBANK_STACK = 2  # two 10-ms frames per 20-ms encoder frame: (T, 80) → (T/2, 160)


class SpeechEncoder(nn.Module):
    """Waveform (B, N) at 16 kHz → frames (B, T_s, d) and their padding mask (B, T_s).

    Two front ends, chosen by the backbone: the wav2vec2 family (wav2vec2, HuBERT, WavLM,
    data2vec-audio) reads the waveform through its CNN; w2v-BERT (`wav2vec2-bert`) reads
    per-utterance-normalised log-mel filterbanks, which costs far less to train on a CPU. Both give
    one frame every 20 ms.
    """

    def __init__(self, config: SpeechEncoderConfig, dim: int) -> None:
        super().__init__()
        self.config = config
        self.backbone = build_backbone(config)
        backbone_config = self.backbone.config
        self.reads_fbank = backbone_config.model_type in FBANK_MODEL_TYPES
        if not self.reads_fbank and not hasattr(self.backbone, "feature_extractor"):
            raise ConfigError(
                f"{type(self.backbone).__name__} is not a speech encoder of the wav2vec2 family "
                "(wav2vec2, HuBERT, WavLM, data2vec-audio, wav2vec2-bert)"
            )
        config.hf_config = backbone_config.to_dict()
        if config.freeze_feature_encoder and not self.reads_fbank:
            for parameter in self.backbone.feature_extractor.parameters():
                parameter.requires_grad = False
        if not getattr(backbone_config, "mask_time_prob", 0):
            self.backbone.masked_spec_embed = None  # unused without time masking
        self.projection = nn.Sequential(
            nn.Linear(backbone_config.hidden_size, dim), nn.LayerNorm(dim)
        )
        if self.reads_fbank:
            self.hop_samples = FBANK_HOP * FBANK_STACK  # 320: 20 ms
            self.receptive_samples = FBANK_WINDOW + FBANK_HOP * (FBANK_STACK - 1)  # 560
        else:
            strides, kernels = backbone_config.conv_stride, backbone_config.conv_kernel
            self.hop_samples = math.prod(strides)  # 320 for wav2vec2: 20 ms per frame
            jumps = _cumprod([1, *strides[:-1]])
            self.receptive_samples = 1 + sum(
                (k - 1) * j for k, j in zip(kernels, jumps, strict=True)
            )  # 400 for wav2vec2: 25 ms
        self.min_samples = self.receptive_samples

    def frame_times(self, num_frames: int) -> torch.Tensor:
        """Centre of each frame's receptive field, in seconds: (T_s,)."""
        starts = torch.arange(num_frames, dtype=torch.float32) * self.hop_samples
        return (starts + self.receptive_samples / 2) / SAMPLE_RATE

    def num_frames(self, lengths: torch.Tensor) -> torch.Tensor:
        """Frames the encoder produces for waveforms of `lengths` samples: (B,) long."""
        if self.reads_fbank:
            return torch.div(
                1 + (lengths - FBANK_WINDOW) // FBANK_HOP, FBANK_STACK, rounding_mode="floor"
            ).long()
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
        frames_per_example = self.num_frames(lengths)  # (B,)
        if self.reads_fbank:
            features = fbank_features(speech, lengths, self.config.normalize_input)
            frame_mask = _length_mask(frames_per_example, features.shape[1])  # (B, T_s)
            hidden = self.backbone(
                input_features=features, attention_mask=frame_mask.long()
            ).last_hidden_state  # (B, T_s, D_s)
        else:
            if self.config.normalize_input:
                speech = _normalise(speech, speech_mask)
            hidden = self.backbone(
                input_values=speech, attention_mask=speech_mask.long()
            ).last_hidden_state  # (B, T_s, D_s)
            frame_mask = _length_mask(frames_per_example, hidden.shape[1])  # (B, T_s)
        return self.projection(hidden), frame_mask  # (B, T_s, d), (B, T_s)


def fbank_features(speech: torch.Tensor, lengths: torch.Tensor, normalise: bool) -> torch.Tensor:
    """Kaldi log-mel filterbanks of each waveform, stacked in pairs: (B, N) → (B, T_s, 160).

    Matches SeamlessM4T's feature extractor (int16 scale, 80 bins, 25/10 ms, per-utterance
    mean and variance normalisation per bin, two frames stacked); padding frames are zero.
    """
    rows = []
    for samples, length in zip(speech, lengths.tolist(), strict=True):
        bank = torchaudio.compliance.kaldi.fbank(
            samples[:length].float()[None] * 32768.0,
            num_mel_bins=FBANK_BINS,
            sample_frequency=SAMPLE_RATE,
            dither=0.0,
        )  # (F, 80)
        if normalise:
            bank = (bank - bank.mean(0)) / torch.sqrt(bank.var(0, unbiased=True) + 1e-7)
        usable = bank.shape[0] // FBANK_STACK * FBANK_STACK
        rows.append(bank[:usable].reshape(-1, FBANK_BINS * FBANK_STACK))  # (F/2, 160)
    return nn.utils.rnn.pad_sequence(rows, batch_first=True).to(speech.dtype)  # (B, T_s, 160)


def _length_mask(lengths: torch.Tensor, width: int) -> torch.Tensor:
    return torch.arange(width, device=lengths.device)[None, :] < lengths[:, None]  # (B, width)


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
