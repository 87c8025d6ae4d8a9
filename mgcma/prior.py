"""The voice-first prior: what the two single-modality heads say together, before fusion.

A listener takes the emotion from the voice; when the voice is neutral, from the words. With
``p_s`` what the voice alone says (the auxiliary speech head) and ``p_t`` what the words alone say
(the text head), that reading is a distribution over the emotions:

    P(e)       = p_s(e) + p_s(neutral) · p_t(e)     for every emotion e ≠ neutral
    P(neutral) = p_s(neutral) · p_t(neutral)

It sums to one. With ``classifier.voice_first`` the fused logits are ``log P`` plus the fusion
MLP's output, so the three granularities correct a reading that already defers to the right side
(not in the paper).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def voice_first_log_prior(
    speech_logits: torch.Tensor, text_logits: torch.Tensor, neutral: int
) -> torch.Tensor:
    """(B, C) and (B, C) logits, the index of neutral → (B, C) log P (float32, logsumexp = 0)."""
    log_voice = F.log_softmax(speech_logits.float(), dim=-1)  # (B, C)
    log_words = F.log_softmax(text_logits.float(), dim=-1)  # (B, C)
    via_words = log_voice[:, neutral : neutral + 1] + log_words  # (B, C): voice neutral, words e
    either = torch.logaddexp(log_voice, via_words)  # (B, C): voice e, or voice neutral and words e
    is_neutral = torch.arange(either.shape[-1], device=either.device) == neutral  # (C,)
    return torch.where(is_neutral, via_words, either)
