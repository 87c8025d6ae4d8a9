"""MGCMA: speech and text encoders, three alignment granularities, and a fusion classifier.

Read top to bottom: encoders → intra-modal self-attention → distribution level (Gaussians) →
instance level (embeddings) → token level (cross-attention) → fusion MLP → logits.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
from torch import nn

from mgcma.alignment import (
    DistributionAlignment,
    InstanceAlignment,
    SelfAttentionStack,
    TokenAlignment,
    masked_mean,
)
from mgcma.batch import tokenize_texts
from mgcma.config import ConfigError, MGCMAConfig
from mgcma.dropout import use_fast_dropout
from mgcma.encoders import SpeechEncoder, TextEncoder
from mgcma.model_output import MGCMAOutput
from mgcma.prior import voice_first_log_prior
from mgcma.voices import VoiceGate, VoiceProbe, synthetic_weight


class MGCMA(nn.Module):
    """Multi-Granularity Cross-Modal Alignment for speech + text emotion recognition.

    Constructing one reads no file: pretrained backbones and their tokenizer are loaded by
    :func:`mgcma.build_model` (a new model) or :func:`mgcma.load_model` (a checkpoint) and
    passed in; an architecture with random weights (trained from scratch, or a checkpoint's
    `hf_config`) is built here.

    Parameters
    ----------
    config : the architecture; ablations switch modules off (their parameters do not exist).
        The model keeps a copy (``self.config``) that also records each transformers backbone's
        resolved ``hf_config``; the caller's config is not changed.
    tokenizer : a transformers tokenizer for the text encoder (required when it is used)
    speech_backbone, text_backbone : pretrained backbones, as :mod:`mgcma.backbones` loads them
    """

    def __init__(
        self,
        config: MGCMAConfig,
        tokenizer=None,
        *,
        speech_backbone: nn.Module | None = None,
        text_backbone: nn.Module | None = None,
    ) -> None:
        super().__init__()
        config.validate()
        self.config = config = copy.deepcopy(config)
        if config.uses_text and tokenizer is None:
            raise ConfigError(
                "the text encoder needs a tokenizer: mgcma.build_model(config) loads a "
                "pretrained backbone's; one trained from scratch takes "
                "tokenizer=mgcma.tokenizer.train_tokenizer(training_transcripts)"
            )
        self.tokenizer = tokenizer
        a = config.alignment
        self.speech_encoder = (
            SpeechEncoder(config.speech, a.dim, speech_backbone) if config.uses_speech else None
        )
        self.text_encoder = (
            TextEncoder(config.text, a.dim, tokenizer, text_backbone) if config.uses_text else None
        )
        for encoder in (self.speech_encoder, self.text_encoder):
            if encoder is not None and encoder.hf_config is not None:
                # in the model's own copy: a checkpoint rebuilds the architecture from it offline
                encoder.config.hf_config = encoder.hf_config
        self.speech_self_attention = (
            SelfAttentionStack(a.dim, a.heads, a.self_attention_layers, a.dropout)
            if config.uses_speech
            else None
        )
        self.text_self_attention = (
            SelfAttentionStack(a.dim, a.heads, a.self_attention_layers, a.dropout)
            if config.uses_text
            else None
        )
        self.distribution = (
            DistributionAlignment(a.dim, a.gaussian_dim, a.temperature_init)
            if a.distribution
            else None
        )
        self.instance = (
            InstanceAlignment(a.dim, a.instance_dim, a.temperature_init) if a.instance else None
        )
        self.token = TokenAlignment(a.dim, a.heads, a.dropout) if a.token else None
        head = config.classifier
        streams = 2 if config.modalities == "both" else 1
        streams *= 2 if (a.token and head.read_pooled) else 1
        num_labels = len(config.emotions)
        self.fusion = nn.Sequential(
            nn.Linear(streams * a.dim, head.hidden), nn.GELU(), nn.Dropout(head.dropout)
        )
        self.classifier = nn.Linear(head.hidden, num_labels)
        self.speech_head = nn.Linear(a.dim, num_labels) if head.auxiliary_heads else None
        self.text_head = nn.Linear(a.dim, num_labels) if head.auxiliary_heads else None
        probe = head.voice_probe
        self.voice_gate = VoiceGate(a.dim) if probe else None  # is the voice synthetic?
        self.voice_probe = VoiceProbe(self.speech_encoder.read_width, num_labels) if probe else None
        for layers in (self.speech_self_attention, self.text_self_attention, self.token):
            if layers is not None:  # the MGCMA layers' dropout masks, cheaper on the CPU
                use_fast_dropout(layers)
        use_fast_dropout(self.fusion)

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    @property
    def emotions(self) -> tuple[str, ...]:
        return tuple(self.config.emotions)

    def forward(
        self,
        speech: torch.Tensor | None = None,
        speech_mask: torch.Tensor | None = None,
        input_ids: torch.Tensor | None = None,
        text_mask: torch.Tensor | None = None,
        return_attention: bool = False,
        speech_features: torch.Tensor | None = None,
        speech_feature_mask: torch.Tensor | None = None,
        text_features: torch.Tensor | None = None,
        text_only: dict[str, torch.Tensor] | None = None,
        synthetic_voice: torch.Tensor | None = None,
    ) -> MGCMAOutput:
        """Run the model on a padded batch.

        Parameters
        ----------
        speech : (B, N) float32 waveforms at 16 kHz, right-padded with zeros
        speech_mask : (B, N) bool, True on real samples
        input_ids : (B, T_t) long token ids from `self.tokenizer`
        text_mask : (B, T_t) bool, True on real tokens
        return_attention : also return the per-head cross-attention weights (costs a little)
        speech_features, speech_feature_mask : (B, T_s, D_s) and (B, T_s) bool, the speech
            backbone's output computed beforehand (a feature cache); then `speech` is not read
        text_features : (B, T_t, D_t), the text backbone's output for `input_ids`; then
            `input_ids` is not read (`text_mask` still is)
        text_only : extra text rows without audio (a text corpus): ``text_mask`` (B_x, T_x)
            and ``input_ids`` or ``text_features``; only the text side and its head read them
            (`text_only_logits`). Passed through forward so that data-parallel training sees
            every parameter the step uses.
        synthetic_voice : (B,) float, 1 for a synthetic voice and 0 for a human one, where known
            (training): with ``classifier.voice_probe`` it says which clips the probe reads
            instead of the voice gate (:mod:`mgcma.voices`); at inference leave it None
        """
        out: dict = {}
        streams = []
        if self.speech_encoder is not None:
            if speech_features is None:
                _require(speech, speech_mask, "speech", "speech_mask")
            frames, frame_mask, *raw = self.speech_encoder(
                speech,
                speech_mask,
                speech_features,
                speech_feature_mask,
                return_pooled=self.voice_probe is not None,
            )  # (B, T_s, d), (B, T_s) and with the probe (B, D_read)
            speech_states = self.speech_self_attention(frames, frame_mask)  # (B, T_s, d)
            speech_pooled = masked_mean(speech_states, frame_mask)  # (B, d)
            out.update(
                speech_mask=frame_mask,
                frame_times=self.speech_encoder.frame_times(frame_mask.shape[1]).to(frames.device),
                speech_states=speech_states,
                speech_pooled=speech_pooled,
            )
        if self.text_encoder is not None:
            if text_features is None:
                _require(input_ids, text_mask, "input_ids", "text_mask")
            text_states, text_pooled = self.read_text(input_ids, text_mask, text_features)
            out.update(text_mask=text_mask, text_states=text_states, text_pooled=text_pooled)
            if text_only is not None:
                _, extra_pooled = self.read_text(
                    text_only.get("input_ids"),
                    text_only["text_mask"],
                    text_only.get("text_features"),
                )  # (B_x, d)
                out.update(text_only_logits=self.text_alone_logits(extra_pooled))  # (B_x, C)

        if self.distribution is not None:
            out.update(self.distribution(speech_pooled, text_pooled))
        if self.instance is not None:
            out.update(self.instance(speech_pooled, text_pooled))
        if self.token is not None:
            token = self.token(speech_states, frame_mask, text_states, text_mask, return_attention)
            out.update(
                attention_speech_to_text=token["attention_speech_to_text"],
                attention_text_to_speech=token["attention_text_to_speech"],
            )
            streams = [
                masked_mean(token["speech_attended"], frame_mask),  # (B, d)
                masked_mean(token["text_attended"], text_mask),  # (B, d)
            ]
            if self.config.classifier.read_pooled:
                streams += [speech_pooled, text_pooled]  # (B, d) each
        else:  # without token alignment, fusion reads the self-attended streams directly
            if self.speech_encoder is not None:
                streams.append(speech_pooled)
            if self.text_encoder is not None:
                streams.append(text_pooled)

        fused = self.fusion(torch.cat(streams, dim=-1))  # (B, h)
        logits = self.classifier(fused)  # (B, C)
        probe = 0.0
        if self.voice_probe is not None:  # a human voice: what the linear probe reads, added
            gate = self.voice_gate(speech_pooled)  # (B,)
            human = 1.0 - synthetic_weight(gate, synthetic_voice)  # (B,)
            probe = human[:, None] * self.voice_probe(raw[0])  # (B, C)
            out.update(voice_gate_logit=gate, probe_log_probs=probe)
            logits = logits + probe.to(logits.dtype)
        if self.speech_head is not None:
            out.update(
                speech_logits=self.speech_head(speech_pooled) + probe,  # (B, C)
                text_logits=self.text_head(text_pooled),  # (B, C)
            )
        if self.config.classifier.voice_first:  # the MLP corrects the voice-first reading
            neutral = self.emotions.index("neutral")
            prior = voice_first_log_prior(out["speech_logits"], out["text_logits"], neutral)
            out.update(prior_logits=prior)  # (B, C)
            logits = logits + prior.to(logits.dtype)
        return MGCMAOutput(logits=logits, fused=fused, **out)

    def read_text(self, input_ids, text_mask, text_features):
        """Text encoder → self-attention → masked mean: (B, T_t, d) states and (B, d) pooled."""
        tokens = self.text_encoder(input_ids, text_mask, text_features)  # (B, T_t, d)
        text_states = self.text_self_attention(tokens, text_mask)  # (B, T_t, d)
        return text_states, masked_mean(text_states, text_mask)

    def text_alone_logits(self, text_pooled: torch.Tensor) -> torch.Tensor:
        """(B, d) pooled text states → (B, C): the text-only head, or for a text-only model
        its own classifier (it reads nothing else)."""
        if self.text_head is not None:
            return self.text_head(text_pooled)
        if self.speech_encoder is None:
            return self.classifier(self.fusion(text_pooled))
        raise ValueError("this model cannot predict from text alone (no text-only head)")

    def probabilities(self, output: MGCMAOutput) -> dict[str, torch.Tensor]:
        """Calibrated probabilities per head: ``{"fused": (B, C), "speech": …, "text": …}``.

        softmax(logits / T) with each head's temperature from ``config.calibration`` (1.0 when
        the checkpoint was not calibrated); heads the model does not have are absent. Where the
        checkpoint has a human voice's temperature and the output its voice gate, a clip's T is
        w · T + (1 − w) · T_human, w the gate's probability that the voice is synthetic.
        """
        calibration = self.config.calibration
        gate = output.voice_gate_logit  # (B,) or None
        heads = {
            "fused": (output.logits, calibration.fused, calibration.fused_human),
            "speech": (output.speech_logits, calibration.speech, calibration.speech_human),
            "text": (output.text_logits, calibration.text, None),
        }
        probabilities = {}
        for name, (logits, temperature, human) in heads.items():
            if logits is None:
                continue
            if human is not None and gate is not None:
                synthetic = torch.sigmoid(gate.float())[:, None]  # (B, 1)
                temperature = synthetic * temperature + (1.0 - synthetic) * human  # (B, 1)
            probabilities[name] = torch.softmax(logits.float() / temperature, dim=-1)
        return probabilities

    def tokenize(self, texts: Sequence[str]) -> dict[str, torch.Tensor]:
        """Transcripts → {"input_ids": (B, T_t), "text_mask": (B, T_t)} on the model's device."""
        batch = tokenize_texts(self.tokenizer, texts, self.config.text.max_tokens)
        return {name: tensor.to(self.device) for name, tensor in batch.items()}


def _require(values, mask, name: str, mask_name: str) -> None:
    if values is None or mask is None:
        raise ValueError(f"this model reads {name}: pass both {name} and {mask_name}")
