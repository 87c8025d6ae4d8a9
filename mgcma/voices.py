"""The voice probe: a linear reading of human voices, fitted after training, and a voice gate.

A logistic regression on the frozen speech states, mean-pooled over the clip, reads unheard
RAVDESS actors better than the trained MGCMA layers do (README, "The voice probe"): the layers
learn from real actors and espeak-ng voices at once and from few actors, the probe is convex,
strongly regularised and fitted on the real voices alone. With ``classifier.voice_probe`` the
model carries both:

    logits = MGCMA(x) + (1 − w) · log p_probe(e | pooled backbone states)

and the speech head likewise, where w is how sure the voice gate (a linear layer on the pooled
speech states, trained with the network by a binary cross-entropy) is that the voice is
synthetic: a synthetic voice is read by the network alone, whose training the probe never saw.
The probe's weights are not trained by gradient: `train.voice_probe` fits them on the training
split's human voices after the network has trained (before temperature scaling), and until then
they are zero, which adds the same constant to every logit (nothing). Not in the paper.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class VoiceGate(nn.Module):
    """Pooled speech states (B, d) → (B,) logit that the voice is synthetic."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.layer = nn.Linear(dim, 1)

    def forward(self, speech_pooled: torch.Tensor) -> torch.Tensor:
        return self.layer(speech_pooled).squeeze(-1)  # (B,)


class VoiceProbe(nn.Module):
    """A fitted linear probe: (B, D_read) pooled backbone states → (B, C) log-probabilities.

    Its weight and bias hold the standardisation and the logistic regression folded into one
    linear map (`train.voice_probe.fit_voice_probe`); they never receive gradients.
    """

    def __init__(self, width: int, num_labels: int) -> None:
        super().__init__()
        self.layer = nn.Linear(width, num_labels)
        nn.init.zeros_(self.layer.weight)
        nn.init.zeros_(self.layer.bias)
        self.layer.requires_grad_(False)

    @property
    def fitted(self) -> bool:
        return bool(self.layer.weight.abs().sum() > 0)

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        return F.log_softmax(self.layer(pooled.to(self.layer.weight.dtype)).float(), dim=-1)


def synthetic_weight(gate_logit: torch.Tensor, known: torch.Tensor | None) -> torch.Tensor:
    """(B,) how synthetic the voice is: the known voice (1 synthetic, 0 human) where given
    (training), else the gate's probability (inference). No gradient reaches the gate through
    it: the gate learns from its own loss only."""
    if known is not None:
        return known.to(gate_logit.device, torch.float32)
    return torch.sigmoid(gate_logit.detach().float())
