"""Network building blocks every model family shares: the one MLP builder, the feature body of
discriminators with heads, the reparameterised draw, and a context that puts modules in eval mode."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn

ACTIVATIONS = ("leaky_relu", "silu")


def _activation(kind: str, slope: float) -> nn.Module:
    return nn.LeakyReLU(slope) if kind == "leaky_relu" else nn.SiLU()


def mlp(sizes: list[int], slope: float = 0.2, dropout: float = 0.0, batch_norm: bool = False,
        activation: str = "leaky_relu") -> nn.Sequential:
    """Linear layers with an activation (LeakyReLU by default, or SiLU) and optional batch norm and
    dropout between them, none after the last."""
    if activation not in ACTIVATIONS:
        raise ValueError(f"unknown activation {activation!r}: use one of {', '.join(ACTIVATIONS)}")
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            if batch_norm:
                layers.append(nn.BatchNorm1d(b))
            layers.append(_activation(activation, slope))
            if dropout:
                layers.append(nn.Dropout(dropout))
    return nn.Sequential(*layers)


def feature_layers(in_dim: int, hidden, dropout: float = 0.0) -> nn.Sequential:
    """phi(x) for discriminators with heads: the hidden layers of ``mlp`` with the activation (and
    dropout) after the last one too, so a head on top sees what a plain Discriminator's output layer sees."""
    layers = list(mlp([in_dim, *hidden], dropout=dropout)) + [nn.LeakyReLU(0.2)]
    return nn.Sequential(*layers, *([nn.Dropout(dropout)] if dropout else []))


def reparameterise(mu: torch.Tensor, logvar: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    """z = mu + sigma * eps with sigma = exp(logvar / 2): a draw from N(mu, diag sigma^2) that stays
    differentiable in (mu, logvar), because the randomness is all in eps ~ N(0, I)
    (Kingma and Welling 2014, section 2.4)."""
    return mu + (0.5 * logvar).exp() * eps


@contextmanager
def eval_mode(*modules: nn.Module) -> Iterator[None]:
    """Put ``modules`` in eval mode (batch norm uses its running statistics, dropout is off) and
    give each back the mode it had, whatever happens inside."""
    was = [m.training for m in modules]
    for m in modules:
        m.eval()
    try:
        yield
    finally:
        for m, training in zip(modules, was, strict=True):
            m.train(training)
