"""Voice experts: one final layer for human voices, one for synthetic ones, and a gate.

The shipped default learns from real actors (RAVDESS) and from espeak-ng voices (the synthetic
corpus) at once, and the two say emotions differently: espeak-ng's happy is a pitch and rate
setting, an actor's is not. One classifier has to serve both. A linear probe on the frozen
Whisper states shows the cost (README, "Voice experts"): trained on RAVDESS alone it reads
unheard actors at 0.78 UA, trained with the synthetic voices beside it (weighted ¼) at 0.73.

With ``classifier.voice_experts`` the last layer of the fused head and of the speech head is
doubled, one copy per kind of voice, and a gate (a linear layer on the pooled speech states)
says how likely the clip is a synthetic voice. Logits are

    logits = (1 − w) · human(x) + w · synthetic(x)

with w the gate's probability, or in training the voice the manifest says the clip has (so each
expert learns only its own voices; the gate learns apart, with a binary cross-entropy). A person
at a microphone is heard by the human expert as long as the gate knows a human voice, which it
is trained to (it is read out as ``synthetic_voice`` so the app can say so). Not in the paper.
"""

from __future__ import annotations

import torch
from torch import nn

HUMAN, SYNTHETIC = 0, 1


class VoiceExperts(nn.Module):
    """Two linear layers of the same shape and a gate that mixes them.

    Parameters
    ----------
    in_features : width of what each expert reads (the fused vector, or the pooled speech)
    num_labels : C
    """

    def __init__(self, in_features: int, num_labels: int) -> None:
        super().__init__()
        self.num_labels = num_labels
        self.layer = nn.Linear(in_features, 2 * num_labels)  # [human C | synthetic C]

    def forward(self, features: torch.Tensor, synthetic: torch.Tensor) -> torch.Tensor:
        """features (B, F), synthetic (B,) weight of the synthetic expert in [0, 1] → (B, C)."""
        both = self.layer(features).unflatten(-1, (2, self.num_labels))  # (B, 2, C)
        w = synthetic.to(both.dtype)[:, None]  # (B, 1)
        return both[:, HUMAN] + w * (both[:, SYNTHETIC] - both[:, HUMAN])


class VoiceGate(nn.Module):
    """Pooled speech states (B, d) → (B,) logit that the voice is synthetic."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.layer = nn.Linear(dim, 1)

    def forward(self, speech_pooled: torch.Tensor) -> torch.Tensor:
        return self.layer(speech_pooled).squeeze(-1)  # (B,)


def expert_weight(gate_logit: torch.Tensor, known: torch.Tensor | None) -> torch.Tensor:
    """(B,) how much the synthetic expert speaks: the known voice (1 synthetic, 0 human) where
    given (training), else the gate's probability (inference). Gradients do not reach the gate
    through the mix: it learns from its own loss only."""
    if known is not None:
        return known.to(gate_logit.device, torch.float32)
    return torch.sigmoid(gate_logit.detach().float())


class VoiceReadout(nn.Module):
    """A linear readout of the backbone's states mean-pooled over the clip (what a linear probe
    reads), added to the fused and speech heads' logits: (B, D_read) → (B, C).

    Not in the paper. A linear probe on the frozen Whisper states of the default reads unheard
    RAVDESS actors better than the trained speech side does (README, "Voice experts"); this
    gives the heads that reading directly, beside what the MGCMA layers learn. With voice
    experts it is one readout per voice, mixed like the heads.
    """

    def __init__(self, width: int, num_labels: int, dropout: float, experts: bool) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(width)
        self.dropout = nn.Dropout(dropout)
        self.experts = experts
        self.layer = VoiceExperts(width, num_labels) if experts else nn.Linear(width, num_labels)

    def forward(self, pooled: torch.Tensor, synthetic: torch.Tensor | None = None) -> torch.Tensor:
        x = self.dropout(self.norm(pooled))  # (B, D_read)
        return self.layer(x, synthetic) if self.experts else self.layer(x)  # (B, C)
