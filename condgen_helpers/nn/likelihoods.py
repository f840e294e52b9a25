"""Pixel likelihoods p(x | ...) of the VAE family: each turns a network's outputs into a
distribution over the pixel values, so every bound is a log-likelihood in nats."""

from __future__ import annotations

import torch

from ..data import quantise
from ..errors import CondgenError
from . import losses

LIKELIHOODS = ("auto", "categorical", "bernoulli")
# what a likelihood model hands back as an image: E[x | z], the most probable x, or a draw x ~ p(x | z)
DECODES = ("mean", "mode", "draw")


def check_decode(decode: str) -> str:
    if decode not in DECODES:
        raise CondgenError(f"unknown decode {decode!r}: use one of {', '.join(DECODES)}")
    return decode


def decode_images(likelihood, out: torch.Tensor, decode: str = "mean",
                  generator: torch.Generator | None = None) -> torch.Tensor:
    """The images a likelihood's parameters ``out`` (..., D * params) stand for, (..., D) in [0, 1]:
    the mean, the mode (every pixel at its most probable value; given z the pixels are independent,
    so this is the most probable image) or a draw. Draws come back on the CPU."""
    decode = check_decode(decode)
    if decode == "draw":
        return likelihood.draw(out, generator)
    return (likelihood.mode(out) if decode == "mode" else likelihood.mean(out)).clamp(0, 1)


class CategoricalPixels:
    """Each pixel is one of ``levels`` values 0..levels-1 with its own softmax over the levels.

    The decoder emits ``levels`` logits per pixel; images in [0, 1] map to levels with ``quantise``.
    """

    def __init__(self, levels: int):
        self.levels = int(levels)
        self.params_per_pixel = self.levels

    def targets(self, images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        return quantise(images.flatten(1), self.levels)

    def log_prob(self, out: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """out (..., D * levels), targets (..., D) int -> (...,) nats."""
        return losses.categorical_log_likelihood(out.unflatten(-1, (-1, self.levels)), targets)

    def mean(self, out: torch.Tensor) -> torch.Tensor:
        """Expected pixel value E[level] / (levels - 1), in [0, 1]."""
        probs = out.unflatten(-1, (-1, self.levels)).softmax(-1)
        values = torch.linspace(0, 1, self.levels, device=out.device, dtype=out.dtype)
        return (probs @ values).clamp(0, 1)  # rounding can push the sum a hair above 1

    def mode(self, out: torch.Tensor) -> torch.Tensor:
        """Every pixel at its most probable level, as level / (levels - 1) in [0, 1]."""
        return out.unflatten(-1, (-1, self.levels)).argmax(-1).to(out.dtype) / (self.levels - 1)

    def draw(self, out: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """One draw of every pixel, as level / (levels - 1) in [0, 1]."""
        probs = out.unflatten(-1, (-1, self.levels)).softmax(-1).flatten(0, -2).cpu()
        levels = torch.multinomial(probs, 1, generator=generator).view(out.shape[:-1] + (-1,))
        return levels.float() / (self.levels - 1)


class BernoulliPixels:
    """Each pixel is on or off. Grey images are binarised by drawing each pixel with its intensity
    as probability, afresh every time during training (dynamic binarisation, as in Burda et al. 2016)."""

    params_per_pixel = 1

    def targets(self, images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        return torch.bernoulli(images.flatten(1).clamp(0, 1), generator=generator)

    def log_prob(self, out: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return losses.bernoulli_log_likelihood(out, targets)

    def mean(self, out: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(out)

    def mode(self, out: torch.Tensor) -> torch.Tensor:
        """On where the probability exceeds one half (logit above 0)."""
        return (out > 0).to(out.dtype)

    def draw(self, out: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        return torch.bernoulli(torch.sigmoid(out).cpu(), generator=generator)


def pixel_likelihood(kind: str, levels: int | None, image_shape: tuple[int, ...]):
    """The likelihood named ``kind`` for images of ``image_shape``. ``auto``: categorical over the 17
    grey levels of the 8x8 digits, Bernoulli over binarised pixels for bigger images."""
    if kind not in LIKELIHOODS:
        raise CondgenError(f"unknown likelihood {kind!r}: use one of {', '.join(LIKELIHOODS)}")
    small = tuple(image_shape[1:]) == (8, 8)
    if kind == "auto":
        kind = "categorical" if small else "bernoulli"
    if kind == "bernoulli":
        return BernoulliPixels()
    levels = levels or (17 if small else 256)
    if not isinstance(levels, int) or levels < 2:
        raise CondgenError(f"levels must be an integer of at least 2, got {levels!r}")
    return CategoricalPixels(levels)
