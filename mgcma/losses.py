"""MGCMA's objectives as modules that return a dict of named terms.

Total = CE + λ_dist·L_dist + λ_inst·L_inst (+ λ_aux·(CE_speech + CE_text)) (+ λ_guide·L_guide)
(+ λ_text·CE on a text corpus) (+ λ_gate·BCE of the voice gate);
a term is absent (not zero) when its module is switched off, so logs say what was actually trained.
The auxiliary heads learn the label, or with ``loss.modality_targets`` what each modality says by
itself (CE_speech on the voice's emotion, CE_text on the words'), where the data knows it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from mgcma.alignment import w2_squared
from mgcma.config import MGCMAConfig
from mgcma.model_output import MGCMAOutput


def contrastive_targets(batch_size: int, labels: torch.Tensor | None, device) -> torch.Tensor:
    """Target distribution over the batch for each row: (B, B), rows sum to 1.

    Without labels the matching pair is the only positive (identity). With labels (label-aware
    variant) every same-emotion pair is a positive, weighted equally.
    """
    if labels is None:
        return torch.eye(batch_size, device=device)
    positives = (labels[:, None] == labels[None, :]).float()  # (B, B), diagonal always 1
    return positives / positives.sum(dim=1, keepdim=True)


def symmetric_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean of speech→text (rows) and text→speech (columns) cross-entropy with soft targets.

    logits : (B, B), entry (i, j) scores speech i against text j
    targets : (B, B), symmetric, rows sum to 1
    """
    speech_to_text = -(targets * F.log_softmax(logits, dim=1)).sum(dim=1).mean()
    text_to_speech = -(targets.T * F.log_softmax(logits.T, dim=1)).sum(dim=1).mean()
    return 0.5 * (speech_to_text + text_to_speech)


def w2_similarity(w2: torch.Tensor | float, scale: float, shift: float) -> torch.Tensor | float:
    """Sim = −a·W2² + b (a = `scale`, b = `shift`), elementwise: the score the loss contrasts."""
    return -scale * w2 + shift


class DistributionLoss(nn.Module):
    """Contrast of speech and text Gaussians with Sim = −a·W2² + b and a learnable temperature."""

    def __init__(self, scale: float, shift: float, label_aware: bool) -> None:
        super().__init__()
        self.scale, self.shift, self.label_aware = scale, shift, label_aware

    def similarity(self, output: MGCMAOutput) -> torch.Tensor:
        """Sim(speech i, text j): (B, B)."""
        w2 = w2_squared(
            output.speech_mu,
            output.speech_log_sigma.exp(),
            output.text_mu,
            output.text_log_sigma.exp(),
        )  # (B, B)
        return w2_similarity(w2, self.scale, self.shift)

    def forward(self, output: MGCMAOutput, labels: torch.Tensor | None = None) -> torch.Tensor:
        logits = self.similarity(output) * output.distribution_logit_scale  # (B, B) = Sim / τ
        targets = contrastive_targets(
            logits.shape[0], labels if self.label_aware else None, logits.device
        )
        return symmetric_cross_entropy(logits, targets)


class InstanceLoss(nn.Module):
    """Symmetric InfoNCE between L2-normalised speech and text embeddings."""

    def __init__(self, label_aware: bool) -> None:
        super().__init__()
        self.label_aware = label_aware

    def forward(self, output: MGCMAOutput, labels: torch.Tensor | None = None) -> torch.Tensor:
        cosine = output.speech_embedding @ output.text_embedding.T  # (B, B)
        logits = cosine * output.instance_logit_scale
        targets = contrastive_targets(
            logits.shape[0], labels if self.label_aware else None, logits.device
        )
        return symmetric_cross_entropy(logits, targets)


def token_guidance(output: MGCMAOutput, token_spans: torch.Tensor) -> torch.Tensor:
    """Cross-attention guidance from known word timings: −log of the mass on the right places.

    Text→speech: each timed token should put its attention on the frames inside its word's span;
    speech→text: each frame inside a word should attend to that word's tokens. The loss is the
    mean over heads and over such tokens (and frames) of −log(mass inside), so attention may
    spread within the word freely. Tokens without a known span and silent frames are left out.

    token_spans : (B, T_t, 2) start and end in seconds of each token's word; NaN where unknown
    """
    times = output.frame_times  # (T_s,)
    start, end = token_spans[..., :1], token_spans[..., 1:]  # (B, T_t, 1) each
    inside = (times >= start) & (times < end)  # (B, T_t, T_s); NaN compares False
    inside &= output.speech_mask[:, None, :] & output.text_mask[:, :, None]
    token_mass = (output.attention_text_to_speech.float() * inside[:, None]).sum(-1)  # (B,H,T_t)
    inside_t = inside.transpose(1, 2)  # (B, T_s, T_t)
    frame_mass = (output.attention_speech_to_text.float() * inside_t[:, None]).sum(-1)  # (B,H,T_s)
    terms = []
    for mass, valid in ((token_mass, inside.any(-1)), (frame_mass, inside_t.any(-1))):
        if valid.any():  # valid: (B, T) → (B, H, T) by broadcasting over heads
            nll = -mass.clamp_min(1e-6).log()  # (B, H, T)
            terms.append(nll.masked_select(valid[:, None].expand_as(nll)).mean())
    if not terms:  # no timed word in this batch: a zero that still depends on the attention
        return 0.0 * output.attention_text_to_speech.sum()
    return sum(terms) / len(terms)


class MGCMALoss(nn.Module):
    """Every term the config switches on, weighted; returns {name: scalar tensor, "total": …}."""

    def __init__(self, config: MGCMAConfig) -> None:
        super().__init__()
        self.config = config
        alignment, weights = config.alignment, config.loss
        self.distribution = (
            DistributionLoss(alignment.w2_scale, alignment.w2_shift, alignment.label_aware)
            if alignment.distribution
            else None
        )
        self.instance = InstanceLoss(alignment.label_aware) if alignment.instance else None
        self.weights = {
            "ce": 1.0,
            "distribution": weights.distribution_weight,
            "instance": weights.instance_weight,
            "aux_speech": weights.auxiliary_weight,
            "aux_text": weights.auxiliary_weight,
            "token_guidance": weights.token_guidance_weight,
            "text_corpus": weights.text_corpus_weight,
            "voice_gate": weights.voice_gate_weight,
        }

    @property
    def needs_attention(self) -> bool:
        """Whether forward needs the model run with `return_attention=True` (the guidance term)."""
        return self.config.alignment.token and self.config.loss.token_guidance_weight > 0

    def forward(
        self,
        output: MGCMAOutput,
        labels: torch.Tensor,
        token_spans: torch.Tensor | None = None,
        text_only_labels: torch.Tensor | None = None,
        modality_labels: tuple[torch.Tensor, torch.Tensor] | None = None,
        synthetic_voice: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """labels : (B,) long; token_spans : (B, T_t, 2) seconds, NaN where unknown (guidance);
        text_only_labels : (B_x,) long, the labels of the text-only rows (`text_only_logits`);
        modality_labels : (B,) and (B,) long, what the voice alone and the words alone say, the
        auxiliary heads' targets with `loss.modality_targets` (else they learn `labels`);
        synthetic_voice : (B,) float, 1 where the clip's voice is synthetic, the voice gate's
        target (`classifier.voice_probe`)."""
        smoothing = self.config.loss.label_smoothing
        terms = {"ce": F.cross_entropy(output.logits, labels, label_smoothing=smoothing)}
        if self.distribution is not None:
            terms["distribution"] = self.distribution(output, labels)
        if self.instance is not None:
            terms["instance"] = self.instance(output, labels)
        if output.speech_logits is not None:
            speech_labels = text_labels = labels
            if self.config.loss.modality_targets and modality_labels is not None:
                speech_labels, text_labels = (t.to(labels.device) for t in modality_labels)
            terms["aux_speech"] = F.cross_entropy(output.speech_logits, speech_labels)
            terms["aux_text"] = F.cross_entropy(output.text_logits, text_labels)
        if self.needs_attention and token_spans is not None:
            if output.attention_text_to_speech is None:
                raise ValueError("token guidance needs the model run with return_attention=True")
            terms["token_guidance"] = token_guidance(output, token_spans.to(output.logits.device))
        if output.text_only_logits is not None and text_only_labels is not None:
            terms["text_corpus"] = F.cross_entropy(
                output.text_only_logits, text_only_labels.to(output.logits.device)
            )
        if output.voice_gate_logit is not None and synthetic_voice is not None:
            terms["voice_gate"] = F.binary_cross_entropy_with_logits(
                output.voice_gate_logit.float(), synthetic_voice.to(output.logits.device).float()
            )
        terms["total"] = sum(self.weights[name] * value for name, value in terms.items())
        return terms
