"""The building blocks every family shares: the MLP builder, the reparameterised draw, eval mode."""

import pytest
import torch
from torch import nn

from condgen_helpers.nn.layers import eval_mode, mlp, reparameterise


def test_mlp_puts_the_activation_between_layers_only():
    net = mlp([4, 8, 8, 2], activation="silu", dropout=0.1)
    kinds = [type(m).__name__ for m in net]
    assert kinds == ["Linear", "SiLU", "Dropout", "Linear", "SiLU", "Dropout", "Linear"]
    assert type(mlp([4, 8, 2])[1]).__name__ == "LeakyReLU"
    with pytest.raises(ValueError, match="unknown activation 'relu6'"):
        mlp([4, 2], activation="relu6")


def test_reparameterise_is_a_draw_from_the_gaussian_and_differentiable():
    mu = torch.tensor([0.5, -1.0], requires_grad=True)
    logvar = torch.tensor([0.2, -0.6], requires_grad=True)
    eps = torch.randn(200_000, 2, generator=torch.Generator().manual_seed(0))
    z = reparameterise(mu, logvar, eps)
    want = torch.distributions.Normal(mu, (0.5 * logvar).exp())
    assert torch.allclose(z[:5], want.loc + want.scale * eps[:5])
    assert torch.allclose(z.mean(0), mu, atol=0.01) and torch.allclose(z.var(0), logvar.exp(), rtol=0.02)
    z.sum().backward()  # dz/dmu = 1 per draw
    assert torch.allclose(mu.grad, torch.full((2,), 200_000.0))


def test_eval_mode_gives_each_module_its_mode_back_even_after_an_error():
    a, b = nn.Dropout(0.5), nn.BatchNorm1d(3).eval()
    with pytest.raises(RuntimeError), eval_mode(a, b):
        assert not a.training and not b.training
        raise RuntimeError("inside")
    assert a.training and not b.training
