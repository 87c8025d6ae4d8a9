"""mgcma.dropout: the same Bernoulli dropout as torch's, cheaper on the CPU, and seeded by torch."""

from __future__ import annotations

import torch
from torch import nn

from mgcma.dropout import Dropout, dropout, use_fast_dropout


def test_training_drops_p_of_the_units_and_scales_the_rest():
    torch.manual_seed(0)
    states = torch.rand(400, 2500) + 0.5  # (N, D), no zeros of its own
    out = dropout(states, 0.1, training=True)
    dropped = out == 0
    assert abs(dropped.float().mean().item() - 0.1) < 0.002  # 1M units: σ ≈ 0.0003
    assert torch.allclose(out[~dropped], states[~dropped] / 0.9)
    assert abs(out.mean().item() / states.mean().item() - 1.0) < 0.002  # unbiased
    rows = dropped.float().mean(dim=1)  # masks are independent of position
    assert rows.min() > 0.05 and rows.max() < 0.15


def test_evaluation_and_p_zero_leave_states_alone():
    states = torch.randn(8, 16)
    assert dropout(states, 0.1, training=False) is states
    assert dropout(states, 0.0, training=True) is states
    layer = Dropout(0.5).eval()
    assert torch.equal(layer(states), states)


def test_torch_seed_fixes_the_mask_and_gradients_follow_it():
    states = torch.randn(64, 64, requires_grad=True)
    torch.manual_seed(3)
    first = dropout(states, 0.3, training=True)
    torch.manual_seed(3)
    again = dropout(states, 0.3, training=True)
    other = dropout(states, 0.3, training=True)  # the generator moved on
    assert torch.equal(first, again) and not torch.equal(first, other)
    first.sum().backward()
    expected = (first != 0).float() / 0.7  # d out / d states: the kept units' scale
    assert torch.allclose(states.grad, expected)


def test_models_use_it_and_keep_their_parameters():
    layer = nn.TransformerEncoderLayer(16, 2, 32, dropout=0.2, batch_first=True)
    names = set(layer.state_dict())
    use_fast_dropout(layer)
    assert {type(m) for m in layer.modules() if isinstance(m, nn.Dropout)} == {Dropout}
    assert all(m.p == 0.2 for m in layer.modules() if isinstance(m, nn.Dropout))
    assert set(layer.state_dict()) == names  # checkpoints load as before
    from mgcma.config import MGCMAConfig
    from mgcma.model import MGCMA
    from mgcma.tokenizer import train_tokenizer

    model = MGCMA(MGCMAConfig.preset("compact"), train_tokenizer(["a b c"] * 4, 40))
    mgcma_layers = [model.speech_self_attention, model.text_self_attention, model.token]
    plain = [
        m for part in [*mgcma_layers, model.fusion] for m in part.modules() if type(m) is nn.Dropout
    ]
    assert plain == []
    assert sum(isinstance(m, Dropout) for m in model.token.modules()) == 4  # 2 per direction
