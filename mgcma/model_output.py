"""What one forward pass of MGCMA returns: features, temperatures and attention, no losses."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class MGCMAOutput:
    """Fields are None when the module that makes them is switched off.

    Shapes: B batch, T_s speech frames, T_t text tokens, d shared width, g Gaussian width,
    k instance width, h fusion width, H heads, C emotions.
    """

    logits: torch.Tensor  # (B, C) fused prediction
    fused: torch.Tensor  # (B, h) hidden vector of the fusion MLP ("fused embedding")
    speech_mask: torch.Tensor | None = None  # (B, T_s) True on real frames
    frame_times: torch.Tensor | None = None  # (T_s,) centre of each speech frame, seconds
    text_mask: torch.Tensor | None = None  # (B, T_t) True on real tokens
    speech_states: torch.Tensor | None = None  # (B, T_s, d) after intra-modal self-attention
    text_states: torch.Tensor | None = None  # (B, T_t, d)
    speech_pooled: torch.Tensor | None = None  # (B, d) masked mean of speech_states
    text_pooled: torch.Tensor | None = None  # (B, d) masked mean of text_states
    speech_logits: torch.Tensor | None = None  # (B, C) auxiliary speech-only head
    text_logits: torch.Tensor | None = None  # (B, C) auxiliary text-only head
    # (B, C) log P of the voice-first reading of the two heads (classifier.voice_first), already
    # added into `logits`
    prior_logits: torch.Tensor | None = None
    # (B,) logit that the voice is synthetic (classifier.voice_probe; mgcma/voices.py)
    voice_gate_logit: torch.Tensor | None = None
    # (B, C) the voice probe's log-probabilities times how human the voice is, already added into
    # `logits` and `speech_logits`
    probe_log_probs: torch.Tensor | None = None
    # (B_x, C) the text-only head on extra text rows without audio (a text corpus), when given
    text_only_logits: torch.Tensor | None = None
    speech_mu: torch.Tensor | None = None  # (B, g)
    speech_log_sigma: torch.Tensor | None = None  # (B, g)
    text_mu: torch.Tensor | None = None  # (B, g)
    text_log_sigma: torch.Tensor | None = None  # (B, g)
    distribution_logit_scale: torch.Tensor | None = None  # () = 1/τ_dist
    speech_embedding: torch.Tensor | None = None  # (B, k) L2-normalised
    text_embedding: torch.Tensor | None = None  # (B, k) L2-normalised
    instance_logit_scale: torch.Tensor | None = None  # () = 1/τ_inst
    attention_speech_to_text: torch.Tensor | None = None  # (B, H, T_s, T_t) when asked for
    attention_text_to_speech: torch.Tensor | None = None  # (B, H, T_t, T_s) when asked for
