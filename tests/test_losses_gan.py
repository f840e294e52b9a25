import math

import pytest
import torch

from condgen_helpers.nn import losses


def test_discriminator_loss_hand_values():
    # D undecided (logit 0 -> D = 1/2) on both sides: -(log 1/2 + log 1/2) = 2 log 2
    z = torch.zeros(4)
    assert losses.discriminator_loss(z, z).item() == pytest.approx(2 * math.log(2))
    # real logit 2, fake logit -1: -log s(2) - log(1 - s(-1))
    s = torch.sigmoid
    want = -(s(torch.tensor(2.0)).log() + (1 - s(torch.tensor(-1.0))).log()).item()
    got = losses.discriminator_loss(torch.tensor([2.0]), torch.tensor([-1.0])).item()
    assert got == pytest.approx(want, rel=1e-6)


def test_generator_losses_hand_values():
    logit = torch.tensor([0.5])
    d = torch.sigmoid(logit)
    assert losses.generator_loss(logit, "non_saturating").item() == pytest.approx(-d.log().item(), rel=1e-6)
    assert losses.generator_loss(logit, "minimax").item() == pytest.approx((1 - d).log().item(), rel=1e-6)
    with pytest.raises(ValueError, match="non_saturating"):
        losses.generator_loss(logit, "wasserstein")


def test_non_saturating_loss_keeps_gradient_when_d_rejects_fakes():
    # when D confidently rejects a fake (D = 0.001) the minimax gradient nearly vanishes
    logit = torch.tensor([math.log(0.001 / 0.999)], requires_grad=True)
    g_min, = torch.autograd.grad(losses.generator_loss(logit, "minimax"), logit)
    g_ns, = torch.autograd.grad(losses.generator_loss(logit, "non_saturating"), logit)
    assert abs(g_min.item()) == pytest.approx(0.001, rel=1e-3)   # d/dl log(1 - s(l)) = -s(l)
    assert abs(g_ns.item()) == pytest.approx(0.999, rel=1e-3)    # d/dl -log s(l) = s(l) - 1
    assert abs(g_ns.item()) > 500 * abs(g_min.item())


def test_optimal_discriminator_and_js():
    p = torch.tensor([0.5, 0.5, 0.0])
    q = torch.tensor([0.0, 0.5, 0.5])
    assert losses.optimal_discriminator(torch.tensor(3.0), torch.tensor(1.0)).item() == 0.75
    assert losses.js_divergence(p, p).item() == pytest.approx(0.0, abs=1e-7)
    disjoint = losses.js_divergence(torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0]))
    assert disjoint.item() == pytest.approx(math.log(2))
    # hand value: m = (.25, .5, .25); KL(p||m) = .5 log 2 ; JS = .5 log 2
    assert losses.js_divergence(p, q).item() == pytest.approx(0.5 * math.log(2), rel=1e-6)


def test_value_at_optimal_d_is_minus_log4_plus_2js():
    # Goodfellow et al. (2014), theorem 1: C(G) = -log 4 + 2 JS(p_data || p_g)
    p = torch.tensor([0.1, 0.4, 0.3, 0.2])
    q = torch.tensor([0.25, 0.25, 0.25, 0.25])
    d = losses.optimal_discriminator(p, q)
    value = (p * d.log()).sum() + (q * (1 - d).log()).sum()
    assert value.item() == pytest.approx(-math.log(4) + 2 * losses.js_divergence(p, q).item(), rel=1e-6)
