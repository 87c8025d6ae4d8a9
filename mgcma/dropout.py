"""Dropout whose masks are cheap on the CPU.

On the CPU, ``torch.nn.functional.dropout`` draws its mask with `bernoulli_`: on the shipped
default's training step (2 cores) the masks cost about as much as the layers they regularise
(32 × 144 × 512 hidden units: 26 ms forward and backward). :class:`Dropout` draws the same
Bernoulli(1 − p) mask from torch's own generator as uniforms compared with p, in half the time
(13 ms; `benchmarks/dropout.py`), so `torch.manual_seed` still fixes every mask. On other devices
it is ``torch.nn.functional.dropout``. Its state dict is empty, like ``nn.Dropout``'s.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def dropout(states: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """Zero each element with probability `p` and scale the rest by 1 / (1 − p) (training only)."""
    if not training or p == 0.0:
        return states
    if states.device.type != "cpu" or p >= 1.0:
        return F.dropout(states, p, training=True)
    # uniform → 1/(1 − p) where it is ≥ p, else 0, in place: twice as fast as bernoulli_ here
    scale = torch.rand_like(states).ge_(p).div_(1.0 - p)  # same shape as states
    return states * scale


class Dropout(nn.Dropout):
    """``nn.Dropout`` (same arguments and behaviour) with the cheaper CPU mask of `dropout`."""

    def forward(self, states: torch.Tensor) -> torch.Tensor:
        if self.inplace:
            return super().forward(states)
        return dropout(states, self.p, self.training)


def use_fast_dropout(module: nn.Module) -> nn.Module:
    """Replace every plain ``nn.Dropout`` inside `module` (a Transformer layer's too) by
    :class:`Dropout` with the same p; returns `module`. Attention weights keep PyTorch's own."""
    for name, child in list(module.named_children()):
        if type(child) is nn.Dropout:
            setattr(module, name, Dropout(child.p, child.inplace))
        else:
            use_fast_dropout(child)
    return module
