"""The weight average (`optim.ema_decay`): its arithmetic; training selects and ships it."""

from __future__ import annotations

import json

import pytest
import torch
from accelerate.utils import load
from safetensors.torch import load_file

from train.average import WeightAverage
from train.fit import fit
from train.settings import ConfigError


def _net() -> torch.nn.Module:
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Linear(4, 2))
    net[0].requires_grad_(False)  # a frozen "backbone"
    return net


def test_the_average_follows_the_closed_form_and_skips_frozen_weights():
    net, decay = _net(), 0.75
    average = WeightAverage(net, decay)
    assert average.names == ["1.weight", "1.bias"]  # the frozen layer is not copied
    start = net[1].weight.detach().clone()
    steps = [torch.randn(2, 4) for _ in range(3)]
    for value in steps:
        with torch.no_grad():
            net[1].weight.copy_(value)
        average.update(net)
    # a_0 = w_0; a_k = d·a_{k-1} + (1 − d)·w_k
    expected = start
    for value in steps:
        expected = decay * expected + (1 - decay) * value
    assert torch.allclose(average.shadow[0], expected, atol=1e-6)
    assert not torch.allclose(expected, steps[-1])  # the average is not the last weights


def test_applied_swaps_the_average_in_and_always_puts_the_weights_back():
    net = _net()
    average = WeightAverage(net, 0.5)
    with torch.no_grad():
        net[1].weight.add_(1.0)
    own = net[1].weight.detach().clone()
    frozen = net[0].weight.detach().clone()
    x = torch.randn(5, 3)
    with average.applied(net):
        assert torch.equal(net[1].weight, average.shadow[0])
        with_average = net(x)
    assert torch.equal(net[1].weight, own) and torch.equal(net[0].weight, frozen)
    assert not torch.allclose(net(x), with_average)
    with pytest.raises(RuntimeError), average.applied(net):
        raise RuntimeError("an evaluation that fails")
    assert torch.equal(net[1].weight, own)


def test_a_saved_average_of_another_model_is_refused():
    average = WeightAverage(_net(), 0.9)
    other = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Linear(4, 3))
    other[0].requires_grad_(False)  # the same trainable names, another head's shapes
    with pytest.raises(ValueError, match="other shapes"):
        WeightAverage(other, 0.9).load_state_dict(average.state_dict())
    with pytest.raises(ValueError, match="another model"):
        WeightAverage(torch.nn.Linear(4, 2), 0.9).load_state_dict(average.state_dict())
    with pytest.raises(ValueError, match="ema_decay"):
        WeightAverage(_net(), 1.0)


def test_the_setting_is_checked_where_the_experiment_is_read(tiny_corpus, tmp_path):
    from test_train import _experiment_file, _load

    path = _experiment_file(tmp_path, tiny_corpus, ema_decay=1.5)
    with pytest.raises(ConfigError, match="ema_decay"):
        _load(path)


def test_training_validates_and_saves_the_average_not_the_last_weights(tiny_corpus, tmp_path):
    from test_train import _experiment_file, _load

    path = _experiment_file(tmp_path, tiny_corpus, epochs=1, ema_decay=0.9)
    result = fit(_load(path), tmp_path / "run", progress=False)
    assert result["best_epoch"] == 1  # one epoch: its averaged weights are `best`
    best = load_file(tmp_path / "run" / "best" / "model.safetensors")
    last = load_file(tmp_path / "run" / "last" / "model" / "model.safetensors")
    state = load(tmp_path / "run" / "last" / "optimizer.pt", weights_only=True)["average"]
    assert state["decay"] == pytest.approx(0.9)
    progress = json.loads((tmp_path / "run" / "last" / "progress.json").read_text())
    assert progress["step"] >= 2
    differ = 0
    for name, shadow in zip(state["names"], state["shadow"], strict=True):
        assert torch.allclose(best[name], shadow, atol=1e-6), name  # best holds the average
        differ += not torch.allclose(last[name], shadow, atol=1e-4)
    assert differ > 0  # and the last weights (kept to resume) are the run's own
    for name in set(best) - set(state["names"]):  # what does not train is the same in both
        assert torch.equal(best[name], last[name]), name
