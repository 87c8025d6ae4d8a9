"""MGCMA's objectives as modules that return a dict of named terms.

Total = CE + λ_dist·L_dist + λ_inst·L_inst (+ λ_aux·(CE_speech + CE_text)); a term is absent
(not zero) when its module is switched off, so logs say what was actually trained.
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
        return -self.scale * w2 + self.shift

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
        }

    def forward(self, output: MGCMAOutput, labels: torch.Tensor) -> dict[str, torch.Tensor]:
        smoothing = self.config.loss.label_smoothing
        terms = {"ce": F.cross_entropy(output.logits, labels, label_smoothing=smoothing)}
        if self.distribution is not None:
            terms["distribution"] = self.distribution(output, labels)
        if self.instance is not None:
            terms["instance"] = self.instance(output, labels)
        if output.speech_logits is not None:
            terms["aux_speech"] = F.cross_entropy(output.speech_logits, labels)
            terms["aux_text"] = F.cross_entropy(output.text_logits, labels)
        terms["total"] = sum(self.weights[name] * value for name, value in terms.items())
        return terms
