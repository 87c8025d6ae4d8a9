"""The three alignment granularities of MGCMA, plus the intra-modal self-attention before them.

Coarse to fine:
- distribution level: each utterance is a diagonal Gaussian per modality; speech and text
  Gaussians of the same utterance are pulled together in squared 2-Wasserstein distance;
- instance level: projected, L2-normalised utterance embeddings, contrasted with InfoNCE;
- token level: bidirectional cross-attention between text tokens and speech frames.

These modules return features, temperatures and attention; the losses live in `mgcma.losses`.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

LOG_SIGMA_MIN, LOG_SIGMA_MAX = -7.0, 3.0  # σ in [1e-3, 20]: keeps W2 and its gradient finite
LOGIT_SCALE_MAX = math.log(100.0)  # CLIP's clamp: temperature never below 0.01


def masked_mean(states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over the real positions: (B, T, d), (B, T) → (B, d)."""
    weights = mask.to(states.dtype).unsqueeze(-1)  # (B, T, 1)
    return (states * weights).sum(dim=1) / weights.sum(dim=1).clamp_min(1.0)


def w2_squared(
    mu_a: torch.Tensor, sigma_a: torch.Tensor, mu_b: torch.Tensor, sigma_b: torch.Tensor
) -> torch.Tensor:
    """Squared 2-Wasserstein distance between diagonal Gaussians, all pairs.

    W2²(N(μa, diag σa²), N(μb, diag σb²)) = ‖μa − μb‖² + ‖σa − σb‖²  (closed form for diagonal
    covariances, which commute).

    Parameters
    ----------
    mu_a, sigma_a : (B_a, g)
    mu_b, sigma_b : (B_b, g)

    Returns
    -------
    (B_a, B_b) distances; entry (i, j) compares a_i with b_j.
    """
    mean_term = (mu_a[:, None, :] - mu_b[None, :, :]).pow(2).sum(-1)  # (B_a, B_b)
    scale_term = (sigma_a[:, None, :] - sigma_b[None, :, :]).pow(2).sum(-1)  # (B_a, B_b)
    return mean_term + scale_term


class LearnableTemperature(nn.Module):
    """τ = exp(−s) with s learnable and clamped as in CLIP; `scale` returns 1/τ."""

    def __init__(self, initial: float) -> None:
        super().__init__()
        self.log_scale = nn.Parameter(torch.tensor(math.log(1.0 / initial)))

    def forward(self) -> torch.Tensor:
        return self.log_scale.clamp(max=LOGIT_SCALE_MAX).exp()  # () = 1/τ


class SelfAttentionStack(nn.Module):
    """Intra-modal Transformer layers (pre-norm) with a key padding mask: (B, T, d) → (B, T, d)."""

    def __init__(self, dim: int, heads: int, layers: int, dropout: float) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            nn.TransformerEncoderLayer(
                dim, heads, 4 * dim, dropout=dropout, batch_first=True, norm_first=True
            )
            for _ in range(layers)
        )

    def forward(self, states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            states = layer(states, src_key_padding_mask=~mask)  # (B, T, d)
        return states


class GaussianHead(nn.Module):
    """Pooled state (B, d) → diagonal Gaussian: μ (B, g), log σ (B, g)."""

    def __init__(self, dim: int, gaussian_dim: int) -> None:
        super().__init__()
        self.hidden = nn.Sequential(nn.Linear(dim, dim), nn.GELU())
        self.mu = nn.Linear(dim, gaussian_dim)
        self.log_sigma = nn.Linear(dim, gaussian_dim)

    def forward(self, pooled: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        hidden = self.hidden(pooled)  # (B, d)
        log_sigma = self.log_sigma(hidden).clamp(LOG_SIGMA_MIN, LOG_SIGMA_MAX)  # (B, g)
        return self.mu(hidden), log_sigma


class DistributionAlignment(nn.Module):
    """Gaussian heads for both modalities and the temperature of their W2 contrast."""

    def __init__(self, dim: int, gaussian_dim: int, temperature_init: float) -> None:
        super().__init__()
        self.speech_head = GaussianHead(dim, gaussian_dim)
        self.text_head = GaussianHead(dim, gaussian_dim)
        self.logit_scale = LearnableTemperature(temperature_init)

    def forward(self, speech_pooled: torch.Tensor, text_pooled: torch.Tensor) -> dict:
        speech_mu, speech_log_sigma = self.speech_head(speech_pooled)  # (B, g) each
        text_mu, text_log_sigma = self.text_head(text_pooled)  # (B, g) each
        return {
            "speech_mu": speech_mu,
            "speech_log_sigma": speech_log_sigma,
            "text_mu": text_mu,
            "text_log_sigma": text_log_sigma,
            "distribution_logit_scale": self.logit_scale(),
        }


class InstanceAlignment(nn.Module):
    """Projection heads to a joint space; embeddings are L2-normalised: (B, d) → (B, k)."""

    def __init__(self, dim: int, instance_dim: int, temperature_init: float) -> None:
        super().__init__()
        self.speech_projection = _projection_head(dim, instance_dim)
        self.text_projection = _projection_head(dim, instance_dim)
        self.logit_scale = LearnableTemperature(temperature_init)

    def forward(self, speech_pooled: torch.Tensor, text_pooled: torch.Tensor) -> dict:
        return {
            "speech_embedding": F.normalize(self.speech_projection(speech_pooled), dim=-1),
            "text_embedding": F.normalize(self.text_projection(text_pooled), dim=-1),
            "instance_logit_scale": self.logit_scale(),
        }


def _projection_head(dim: int, out_dim: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(dim, dim), nn.GELU(), nn.Linear(dim, out_dim))


class CrossAttentionBlock(nn.Module):
    """Queries of one modality attend over keys of the other; residual, FFN, post-norm.

    Returns the updated queries (B, T_q, d) and per-head weights (B, H, T_q, T_k) when asked.
    """

    def __init__(self, dim: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.attention = nn.MultiheadAttention(dim, heads, dropout=dropout, batch_first=True)
        self.norm_attention = nn.LayerNorm(dim)
        self.feed_forward = nn.Sequential(
            nn.Linear(dim, 4 * dim), nn.GELU(), nn.Dropout(dropout), nn.Linear(4 * dim, dim)
        )
        self.norm_feed_forward = nn.LayerNorm(dim)
        self.dropout = nn.Dropout(dropout)

    def forward(
        self,
        queries: torch.Tensor,
        keys: torch.Tensor,
        key_mask: torch.Tensor,
        return_attention: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        attended, weights = self.attention(
            queries,
            keys,
            keys,
            key_padding_mask=~key_mask,  # padded keys get exactly zero weight
            need_weights=return_attention,
            average_attn_weights=False,
        )  # (B, T_q, d), (B, H, T_q, T_k)
        states = self.norm_attention(queries + self.dropout(attended))
        states = self.norm_feed_forward(states + self.dropout(self.feed_forward(states)))
        return states, weights


class TokenAlignment(nn.Module):
    """Bidirectional cross-attention: speech over text and text over speech, in parallel."""

    def __init__(self, dim: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.speech_to_text = CrossAttentionBlock(dim, heads, dropout)
        self.text_to_speech = CrossAttentionBlock(dim, heads, dropout)

    def forward(
        self,
        speech_states: torch.Tensor,
        speech_mask: torch.Tensor,
        text_states: torch.Tensor,
        text_mask: torch.Tensor,
        return_attention: bool = False,
    ) -> dict:
        speech_attended, speech_weights = self.speech_to_text(
            speech_states, text_states, text_mask, return_attention
        )  # (B, T_s, d), (B, H, T_s, T_t)
        text_attended, text_weights = self.text_to_speech(
            text_states, speech_states, speech_mask, return_attention
        )  # (B, T_t, d), (B, H, T_t, T_s)
        return {
            "speech_attended": speech_attended,
            "text_attended": text_attended,
            "attention_speech_to_text": speech_weights,
            "attention_text_to_speech": text_weights,
        }
