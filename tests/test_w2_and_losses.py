"""Distribution- and instance-level objectives: the W2 distance and both contrastive losses."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from mgcma.alignment import w2_squared
from mgcma.config import MGCMAConfig
from mgcma.losses import (
    DistributionLoss,
    InstanceLoss,
    MGCMALoss,
    contrastive_targets,
    symmetric_cross_entropy,
)
from mgcma.model_output import MGCMAOutput


def test_w2_is_zero_for_identical_gaussians_and_symmetric():
    torch.manual_seed(0)
    mu, sigma = torch.randn(5, 8), torch.rand(5, 8) + 0.1
    other_mu, other_sigma = torch.randn(5, 8), torch.rand(5, 8) + 0.1
    assert torch.allclose(torch.diagonal(w2_squared(mu, sigma, mu, sigma)), torch.zeros(5))
    forward = w2_squared(mu, sigma, other_mu, other_sigma)
    backward = w2_squared(other_mu, other_sigma, mu, sigma)
    assert torch.allclose(forward, backward.T)
    assert (forward >= 0).all()


def test_w2_hand_computed_case():
    # N((1, 2), diag(1, 4)) vs N((4, 6), diag(9, 1)): ‖Δμ‖² = 9 + 16, ‖Δσ‖² = (1-3)² + (2-1)²
    mu_a, sigma_a = torch.tensor([[1.0, 2.0]]), torch.tensor([[1.0, 2.0]])
    mu_b, sigma_b = torch.tensor([[4.0, 6.0]]), torch.tensor([[3.0, 1.0]])
    assert w2_squared(mu_a, sigma_a, mu_b, sigma_b).item() == pytest.approx(25.0 + 5.0)


def test_w2_matches_monte_carlo_in_one_dimension():
    # In 1-D the optimal coupling is monotone: W2² = E[(F⁻¹(U) − G⁻¹(U))²], estimated by sorting.
    rng = np.random.default_rng(0)
    for mu_a, sigma_a, mu_b, sigma_b in [(0.0, 1.0, 2.0, 0.5), (-1.0, 3.0, 1.5, 2.0)]:
        a = np.sort(rng.normal(mu_a, sigma_a, 400_000))
        b = np.sort(rng.normal(mu_b, sigma_b, 400_000))
        estimate = np.mean((a - b) ** 2)
        exact = w2_squared(
            torch.tensor([[mu_a]]),
            torch.tensor([[sigma_a]]),
            torch.tensor([[mu_b]]),
            torch.tensor([[sigma_b]]),
        ).item()
        assert estimate == pytest.approx(exact, rel=0.02)


def test_w2_gradients_are_finite_even_at_zero_distance():
    mu = torch.randn(4, 6, requires_grad=True)
    log_sigma = torch.randn(4, 6, requires_grad=True)
    w2 = w2_squared(mu, log_sigma.exp(), mu, log_sigma.exp())
    w2.sum().backward()
    assert torch.isfinite(mu.grad).all() and torch.isfinite(log_sigma.grad).all()


def _distribution_output(speech_mu, speech_log_sigma, text_mu, text_log_sigma, scale=10.0):
    batch = speech_mu.shape[0]
    return MGCMAOutput(
        logits=torch.zeros(batch, 4),
        fused=torch.zeros(batch, 2),
        speech_mu=speech_mu,
        speech_log_sigma=speech_log_sigma,
        text_mu=text_mu,
        text_log_sigma=text_log_sigma,
        distribution_logit_scale=torch.tensor(scale),
    )


def _instance_output(speech, text, scale=10.0):
    return MGCMAOutput(
        logits=torch.zeros(len(speech), 4),
        fused=torch.zeros(len(speech), 2),
        speech_embedding=F.normalize(speech, dim=-1),
        text_embedding=F.normalize(text, dim=-1),
        instance_logit_scale=torch.tensor(scale),
    )


def test_distribution_loss_prefers_aligned_pairs_and_is_symmetric():
    torch.manual_seed(0)
    mu, log_sigma = torch.randn(8, 16) * 5, torch.randn(8, 16) * 0.3
    text_mu = mu + 0.1 * torch.randn(8, 16)
    loss = DistributionLoss(scale=1 / 20, shift=4.0, label_aware=False)
    aligned = loss(_distribution_output(mu, log_sigma, text_mu, log_sigma))
    order = torch.roll(torch.arange(8), 1)
    shuffled = loss(_distribution_output(mu, log_sigma, text_mu[order], log_sigma[order]))
    assert aligned < shuffled
    swapped = loss(_distribution_output(text_mu, log_sigma, mu, log_sigma))
    assert aligned.item() == pytest.approx(swapped.item(), rel=1e-5)


def test_instance_loss_prefers_aligned_pairs_and_is_symmetric():
    torch.manual_seed(0)
    speech = torch.randn(8, 16)
    text = speech + 0.2 * torch.randn(8, 16)
    loss = InstanceLoss(label_aware=False)
    aligned = loss(_instance_output(speech, text))
    shuffled = loss(_instance_output(speech, text[torch.roll(torch.arange(8), 3)]))
    assert aligned < shuffled
    assert aligned.item() == pytest.approx(loss(_instance_output(text, speech)).item(), rel=1e-5)


def test_label_aware_targets_treat_same_emotion_pairs_as_positives():
    labels = torch.tensor([0, 1, 0, 2])
    targets = contrastive_targets(4, labels, "cpu")
    assert torch.allclose(targets.sum(dim=1), torch.ones(4))
    assert targets[0, 2] == targets[0, 0] == 0.5 and targets[0, 1] == 0
    assert targets[1, 1] == 1.0
    assert torch.equal(contrastive_targets(4, None, "cpu"), torch.eye(4))


def test_label_aware_loss_does_not_punish_same_emotion_neighbours():
    # Two utterances of the same emotion share one embedding: the plain loss cannot tell them
    # apart and pays for it; the label-aware loss counts both as positives.
    base = torch.eye(3, 8)
    speech = torch.stack([base[0], base[0], base[1], base[2]])
    labels = torch.tensor([1, 1, 2, 3])
    output = _instance_output(speech, speech.clone(), scale=20.0)
    plain = InstanceLoss(label_aware=False)(output, labels)
    aware = InstanceLoss(label_aware=True)(output, labels)
    # the best a plain loss can do on the tied pair is log 2 for each of its two rows
    assert plain.item() > 0.3
    # label-aware: soft targets (½, ½) match the softmax, so only the target entropy remains
    entropy = (
        -(
            contrastive_targets(4, labels, "cpu").clamp_min(1e-12).log()
            * contrastive_targets(4, labels, "cpu")
        )
        .sum(1)
        .mean()
    )
    assert aware.item() == pytest.approx(entropy.item(), abs=1e-3)


def test_symmetric_cross_entropy_averages_both_directions():
    logits = torch.tensor([[2.0, 0.0], [1.0, 3.0]])
    targets = torch.eye(2)
    rows = F.cross_entropy(logits, torch.arange(2))
    cols = F.cross_entropy(logits.T, torch.arange(2))
    assert symmetric_cross_entropy(logits, targets).item() == pytest.approx(
        0.5 * (rows + cols).item()
    )


@pytest.mark.parametrize("modality_targets", [False, True])
def test_auxiliary_heads_learn_each_modality_alone_when_asked(modality_targets):
    config = MGCMAConfig.preset("compact").ablation("no_token")
    config.alignment.distribution = config.alignment.instance = False
    config.loss.modality_targets = modality_targets
    generator = torch.Generator().manual_seed(0)
    speech_logits, text_logits = torch.randn(2, 3, 4, generator=generator)
    output = MGCMAOutput(
        logits=torch.zeros(3, 4), fused=torch.zeros(3, 2),
        speech_logits=speech_logits, text_logits=text_logits,
    )  # fmt: skip
    labels = torch.tensor([2, 3, 1])  # angry (the voice), sad (the words), happy (both)
    voice, words = torch.tensor([2, 0, 1]), torch.tensor([1, 3, 1])
    terms = MGCMALoss(config)(output, labels, modality_labels=(voice, words))
    speech_target, text_target = (voice, words) if modality_targets else (labels, labels)
    assert torch.isclose(terms["aux_speech"], F.cross_entropy(speech_logits, speech_target))
    assert torch.isclose(terms["aux_text"], F.cross_entropy(text_logits, text_target))
