"""Speech and text encoders (transformers, or Whisper's audio encoder), projected to width d.

An encoder is given its backbone when that comes from files (a pretrained model, any Whisper:
:mod:`mgcma.backbones` loads it) or builds it here from its architecture alone, with random
weights and no I/O: `hf_config` stored in a checkpoint (its weights follow from the checkpoint's
safetensors) or `model_type` with `overrides` when trained from scratch. Neither encoder changes
the config it is given; `hf_config` reports the backbone's resolved transformers config, which
the model records in its own copy of the config.

A Whisper backbone (`model_type="whisper"`) is openai-whisper's audio encoder, shared with the
process's transcriber through :func:`mgcma.whisper_backbone.load_whisper` while it is frozen.
"""

from __future__ import annotations

import contextlib
import math

import torch
import torchaudio
from torch import nn
from transformers import CONFIG_MAPPING, AutoModel, PretrainedConfig

from mgcma import whisper_backbone
from mgcma.config import (
    ConfigError,
    SpeechEncoderConfig,
    TextEncoderConfig,
    references_backbone,
)
from mgcma.constants import SAMPLE_RATE
from mgcma.level import normalise_level


def _layers(backbone: nn.Module) -> nn.ModuleList:
    """The stack of Transformer layers of a backbone, bottom first."""
    for path in ("blocks", "encoder.layer", "encoder.layers"):
        module = backbone
        for part in path.split("."):
            module = getattr(module, part, None)
        if isinstance(module, nn.ModuleList):
            return module
    raise ConfigError(f"cannot find the layers of {type(backbone).__name__} to freeze")


def freeze_backbone(backbone: nn.Module, trainable_layers: int) -> None:
    """Freeze every parameter, then unfreeze the top `trainable_layers` layers (and what follows
    them: Whisper's final LayerNorm). -1 leaves everything trainable."""
    if trainable_layers < 0:
        return
    backbone.requires_grad_(False)
    layers = _layers(backbone)
    if trainable_layers > len(layers):
        raise ConfigError(f"trainable_layers={trainable_layers} but the backbone has {len(layers)}")
    if trainable_layers:
        for layer in layers[len(layers) - trainable_layers :]:
            layer.requires_grad_(True)
        if getattr(backbone, "ln_post", None) is not None:
            backbone.ln_post.requires_grad_(True)


def backbone_from_config(
    config: SpeechEncoderConfig | TextEncoderConfig, extra: dict | None = None
) -> nn.Module:
    """A transformers backbone built from its architecture alone: random weights, no I/O.

    `extra` holds values that only the caller knows (a trained tokenizer's vocabulary size).
    Pretrained weights are not read here: :func:`mgcma.checkpoint.build_model` loads them.
    """
    if config.hf_config is not None and not references_backbone(config):
        return AutoModel.from_config(_hf_config(config.hf_config["model_type"], config.hf_config))
    if config.from_scratch:
        values = {**config.overrides, **(extra or {})}
        return AutoModel.from_config(_hf_config(config.model_type, values))
    if not config.backbone:
        raise ConfigError("an encoder needs `backbone` (Hub id or directory) or from_scratch=True")
    raise ConfigError(
        f"the backbone {config.backbone!r} is pretrained: build the model with "
        "mgcma.build_model(config), which loads it (or pass the loaded backbone in)"
    )


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

    Three front ends, chosen by the backbone: the wav2vec2 family (wav2vec2, HuBERT, WavLM,
    data2vec-audio) reads the waveform through its CNN; w2v-BERT (`wav2vec2-bert`) reads
    per-utterance-normalised log-mel filterbanks, which costs far less to train on a CPU; Whisper
    reads its own log-mel spectrogram of the clip's own length. All give one frame every 20 ms.

    `backbone_states` is the (possibly frozen) backbone alone; `forward` accepts its output
    precomputed (a feature cache), so a frozen backbone need not run in every epoch.
    """

    def __init__(
        self, config: SpeechEncoderConfig, dim: int, backbone: nn.Module | None = None
    ) -> None:
        super().__init__()
        self.config = config
        self.reads_whisper = config.model_type == "whisper"
        if self.reads_whisper:
            if backbone is None:
                raise ConfigError(
                    "a Whisper speech encoder is read from its openai-whisper file: build the "
                    "model with mgcma.build_model(config), which loads it"
                )
            self.backbone = backbone
            for name in ("hidden_layer", "extra_layer"):
                if (getattr(config, name) or 0) > len(self.backbone.blocks):
                    raise ConfigError(
                        f"speech.{name}={getattr(config, name)} but Whisper's encoder has "
                        f"{len(self.backbone.blocks)} layers"
                    )
            width = self.backbone.ln_post.normalized_shape[0]
            self.reads_fbank = False
            self.hop_samples = 2 * whisper_backbone.HOP_LENGTH  # 320: 20 ms
            self.receptive_samples = 0  # frame i is centred on sample 320·i (STFT centring)
            self.min_samples = whisper_backbone.MIN_SAMPLES
        else:
            self.backbone = backbone if backbone is not None else backbone_from_config(config)
            width = self._configure_transformers_backbone(config)
        freeze_backbone(self.backbone, config.trainable_layers)
        self.frozen = config.trainable_layers == 0
        # layer_mix: a weight per layer (embeddings, each block), softmax-normalised, equal at first
        self.layer_weights = (
            nn.Parameter(torch.zeros(len(_layers(self.backbone)) + 1)) if config.layer_mix else None
        )
        # extra_layer: its states are concatenated to the main layer's, (…, 2·D_s)
        read = 2 * width if config.extra_layer is not None else width
        self.read_width = read  # D_read: what the projection reads per frame
        self.projection = nn.Sequential(nn.Linear(read, dim), nn.LayerNorm(dim))

    @property
    def hf_config(self) -> dict | None:
        """The backbone's resolved transformers config (None for Whisper, read from its file)."""
        return None if self.reads_whisper else self.backbone.config.to_dict()

    def _configure_transformers_backbone(self, config: SpeechEncoderConfig) -> int:
        backbone_config = self.backbone.config
        self.reads_fbank = backbone_config.model_type in FBANK_MODEL_TYPES
        if not self.reads_fbank and not hasattr(self.backbone, "feature_extractor"):
            raise ConfigError(
                f"{type(self.backbone).__name__} is not a speech encoder of the wav2vec2 family "
                "(wav2vec2, HuBERT, WavLM, data2vec-audio, wav2vec2-bert) or Whisper"
            )
        if config.freeze_feature_encoder and not self.reads_fbank:
            for parameter in self.backbone.feature_extractor.parameters():
                parameter.requires_grad = False
        if not getattr(backbone_config, "mask_time_prob", 0):
            self.backbone.masked_spec_embed = None  # unused without time masking
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
        return backbone_config.hidden_size

    def train(self, mode: bool = True) -> SpeechEncoder:
        super().train(mode)
        if self.frozen:  # a frozen backbone computes exactly what its feature cache holds
            self.backbone.eval()
        return self

    def frame_times(self, num_frames: int) -> torch.Tensor:
        """Centre of each (pooled) frame's receptive field, in seconds: (T_s,)."""
        pool = self.config.frame_pooling
        first = torch.arange(num_frames, dtype=torch.float32) * pool + (pool - 1) / 2
        return (first * self.hop_samples + self.receptive_samples / 2) / SAMPLE_RATE

    def num_frames(self, lengths: torch.Tensor) -> torch.Tensor:
        """Frames the encoder produces for waveforms of `lengths` samples: (B,) long."""
        if self.reads_whisper:
            return (lengths // whisper_backbone.HOP_LENGTH + 1) // 2
        if self.reads_fbank:
            return torch.div(
                1 + (lengths - FBANK_WINDOW) // FBANK_HOP, FBANK_STACK, rounding_mode="floor"
            ).long()
        return self.backbone._get_feat_extract_output_lengths(lengths).long()

    def backbone_states(
        self, speech: torch.Tensor, speech_mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The backbone alone: (B, N) waveforms → (B, T_s, D_s) states and (B, T_s) mask."""
        lengths = speech_mask.sum(dim=1)  # (B,)
        if int(lengths.min()) < self.min_samples:
            raise ValueError(
                f"speech needs at least {self.min_samples} samples "
                f"({self.min_samples / SAMPLE_RATE * 1000:.0f} ms)"
            )
        frames_per_example = self.num_frames(lengths)  # (B,)
        if self.config.input_level_dbfs is not None:
            speech = normalise_level(speech, lengths, self.config.input_level_dbfs)  # (B, N)
        config = self.config
        several = config.layer_mix or config.extra_layer is not None
        every_layer = several or config.hidden_layer >= 0
        wanted = {"output_hidden_states": True} if every_layer else {}
        with torch.no_grad() if self.frozen else contextlib.nullcontext():
            if self.reads_whisper:
                layer = config.hidden_layer
                if config.layer_mix:
                    layer = None
                elif config.extra_layer is not None:
                    layer = (config.hidden_layer, config.extra_layer)
                hidden = _whisper_states(
                    self.backbone, speech, lengths, layer
                )  # (B, T_s, D_s), or (B, T_s, K, D_s) for several layers
            elif self.reads_fbank:
                features = fbank_features(speech, lengths, self.config.normalize_input)
                mask = _length_mask(frames_per_example, features.shape[1])  # (B, T_s)
                hidden = self._layer(
                    self.backbone(input_features=features, attention_mask=mask.long(), **wanted)
                )  # (B, T_s, D_s)
            else:
                if self.config.normalize_input:
                    speech = _normalise(speech, speech_mask)
                hidden = self._layer(
                    self.backbone(input_values=speech, attention_mask=speech_mask.long(), **wanted)
                )  # (B, T_s, D_s)
        return hidden, _length_mask(frames_per_example, hidden.shape[1])  # (B, T_s)

    def _layer(self, output) -> torch.Tensor:
        """The configured layer of a transformers backbone's output: (B, T_s, D_s), or every
        layer (B, T_s, K, D_s) for `layer_mix`."""
        config = self.config
        if config.layer_mix:
            return torch.stack(output.hidden_states, dim=2)  # (B, T_s, K, D_s)
        if config.hidden_layer < 0 and config.extra_layer is None:
            return output.last_hidden_state
        layers = output.hidden_states  # embeddings, then each layer's output
        for name in ("hidden_layer", "extra_layer"):
            if (getattr(config, name) or 0) >= len(layers):
                raise ConfigError(
                    f"speech.{name}={getattr(config, name)} but the backbone has "
                    f"{len(layers) - 1} layers"
                )
        main = layers[config.hidden_layer] if config.hidden_layer >= 0 else output.last_hidden_state
        if config.extra_layer is not None:
            return torch.stack([main, layers[config.extra_layer]], dim=2)  # (B, T_s, 2, D_s)
        return main

    def forward(
        self,
        speech: torch.Tensor | None,
        speech_mask: torch.Tensor | None,
        states: torch.Tensor | None = None,
        frame_mask: torch.Tensor | None = None,
        return_pooled: bool = False,
    ):
        """Project the backbone's states, computing them unless given (`states`, `frame_mask`):
        → (B, T_s, d) frames and (B, T_s) mask, and with `return_pooled` also the backbone's
        states as read, mean-pooled over the clip before any projection: (B, D_read)."""
        if states is None:
            states, frame_mask = self.backbone_states(speech, speech_mask)
        states = states.to(self.projection[0].weight.dtype)
        if self.layer_weights is not None:
            weights = torch.softmax(self.layer_weights, dim=0)  # (K,)
            states = torch.einsum("btkd,k->btd", states, weights)  # (B, T_s, D_s)
        elif self.config.extra_layer is not None:
            states = states.flatten(2)  # (B, T_s, 2, D_s) → (B, T_s, 2·D_s)
        if self.config.frame_pooling > 1:
            states, frame_mask = pool_frames(states, frame_mask, self.config.frame_pooling)
        frames = self.projection(states)  # (B, T_s, d)
        if not return_pooled:
            return frames, frame_mask
        weights = frame_mask.to(states.dtype).unsqueeze(-1)  # (B, T_s, 1)
        pooled = (states * weights).sum(1) / weights.sum(1).clamp_min(1.0)  # (B, D_read)
        return frames, frame_mask, pooled


def pool_frames(
    states: torch.Tensor, mask: torch.Tensor, pool: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Masked mean of each `pool` consecutive frames: (B, T, D) → (B, ceil(T / pool), D)."""
    batch, frames, width = states.shape
    padded = -frames % pool
    states = nn.functional.pad(states * mask[..., None], (0, 0, 0, padded))  # (B, T', D)
    mask = nn.functional.pad(mask, (0, padded))  # (B, T')
    total = states.reshape(batch, -1, pool, width).sum(2)  # (B, T'/pool, D)
    count = mask.reshape(batch, -1, pool).sum(2)  # (B, T'/pool)
    return total / count.clamp_min(1)[..., None], count > 0


def _whisper_states(
    encoder: nn.Module,
    speech: torch.Tensor,
    lengths: torch.Tensor,
    layer: int | tuple[int, ...] | None = -1,
) -> torch.Tensor:
    """Whisper states of each clip on its own length, padded: (B, N) → (B, T_s, D_s), or with
    `layer` None every layer: (B, T_s, K, D_s) (the embeddings, each block, the last normed),
    or with a tuple of layers those: (B, T_s, len(layer), D_s) (-1: the last, normed).

    Whisper's attention has no padding mask, so clips of different lengths are not batched
    together: each length is one forward (equal lengths share it).
    """
    mels = [
        whisper_backbone.log_mel(samples[:length], encoder.conv1.in_channels)
        for samples, length in zip(speech, lengths.tolist(), strict=True)
    ]  # B × (n_mels, F_b)
    rows: list = [None] * len(mels)
    by_length: dict[int, list[int]] = {}
    for index, mel in enumerate(mels):
        by_length.setdefault(mel.shape[1], []).append(index)
    for indices in by_length.values():
        stacked = torch.stack([mels[i] for i in indices])  # (b, n_mels, F)
        mel = stacked.to(encoder.conv1.weight.dtype)
        if layer is None:
            every = whisper_backbone.encode_layers(encoder, mel)  # L + 2 × (b, T_s, D_s)
            states = torch.stack([*every[:-2], every[-1]], dim=2)  # (b, T_s, L + 1, D_s)
        elif isinstance(layer, tuple):
            every = whisper_backbone.encode_layers(encoder, mel)  # L + 2 × (b, T_s, D_s)
            states = torch.stack([every[k] for k in layer], dim=2)  # (b, T_s, len(layer), D_s)
        else:
            states = whisper_backbone.encode(encoder, mel, layer)  # (b, T_s, D_s)
        for i, row in zip(indices, states, strict=True):
            rows[i] = row  # (T_s_b, D_s) or (T_s_b, K, D_s)
    return nn.utils.rnn.pad_sequence(rows, batch_first=True)  # (B, T_s, [K,] D_s)


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

    def __init__(
        self, config: TextEncoderConfig, dim: int, tokenizer, backbone: nn.Module | None = None
    ) -> None:
        super().__init__()
        self.config = config
        if backbone is None:
            extra = {}
            if config.from_scratch and config.hf_config is None:
                extra = {"vocab_size": len(tokenizer), "pad_token_id": tokenizer.pad_token_id}
            backbone = backbone_from_config(config, extra)
        self.backbone = backbone
        _drop_pooler(self.backbone)
        vocab = self.backbone.config.vocab_size
        if len(tokenizer) > vocab:
            raise ConfigError(
                f"the tokenizer has {len(tokenizer)} tokens but the text encoder only {vocab}"
            )
        freeze_backbone(self.backbone, config.trainable_layers)
        self.frozen = config.trainable_layers == 0
        hidden = self.backbone.config.hidden_size
        self.projection = nn.Sequential(nn.Linear(hidden, dim), nn.LayerNorm(dim))

    @property
    def hf_config(self) -> dict:
        """The backbone's resolved transformers config."""
        return self.backbone.config.to_dict()

    def train(self, mode: bool = True) -> TextEncoder:
        super().train(mode)
        if self.frozen:  # no dropout inside a frozen backbone: its features are cacheable
            self.backbone.eval()
        return self

    def backbone_states(self, input_ids: torch.Tensor, text_mask: torch.Tensor) -> torch.Tensor:
        """The backbone alone: (B, T_t) ids → (B, T_t, D_t)."""
        with torch.no_grad() if self.frozen else contextlib.nullcontext():
            return self.backbone(
                input_ids=input_ids,
                attention_mask=text_mask.long(),
                token_type_ids=torch.zeros_like(input_ids),
            ).last_hidden_state  # (B, T_t, D_t)

    def forward(
        self,
        input_ids: torch.Tensor | None,
        text_mask: torch.Tensor,
        states: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Project the backbone's states, computing them unless given: → (B, T_t, d)."""
        if states is None:
            states = self.backbone_states(input_ids, text_mask)
        return self.projection(states.to(self.projection[0].weight.dtype))  # (B, T_t, d)


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
