"""Image-to-image conditioning (notebook 05): the bottom half of a digit given its top half.

- :class:`CompletionCVAE` (``cvae-complete``): p(bottom | top), the structured-output cVAE of Sohn,
  Lee and Yan (2015) with a prior network p(z | top). Different z give different plausible bottoms.
- :class:`CompletionRegressor` (``regressor-complete``): the same task without a latent variable,
  the deterministic baseline the completion cVAE is compared with, in nats.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from ..errors import CondgenError
from ..nn.conditioning import PartialImageCondition
from ..nn.layers import eval_mode, mlp, reparameterise
from ..nn.likelihoods import check_decode, decode_images, pixel_likelihood
from .base import Config, Recipe
from .vae import VAE, LatentConfig


class ConditionalPrior(nn.Module):
    """p(z | y) = N(mu(y), diag exp(logvar(y))) from a network: the prior network of Sohn et al. (2015),
    needed when the condition is an image rather than one of a few classes."""

    def __init__(self, cond: nn.Module, z_dim: int, hidden=(128,)):
        super().__init__()
        self.cond = cond
        self.net = mlp([cond.out_dim, *hidden, 2 * z_dim])

    def forward(self, y, n: int):
        mu, logvar = self.net(self.cond(y)).chunk(2, dim=-1)
        if len(mu) != n:
            raise CondgenError(f"got {len(mu)} conditions for {n} codes: give one per code")
        return mu, logvar


class TopPool(nn.Module):
    """Top halves of up to ``per_class`` training images per class, kept in buffers so that a saved
    completion model can be sampled by label alone (``condgen sample``, ``evaluate``)."""

    def __init__(self, n_classes: int, top_shape: tuple[int, ...], per_class: int = 20):
        super().__init__()
        self.register_buffer("tops", torch.zeros(n_classes, per_class, *top_shape))
        self.register_buffer("counts", torch.zeros(n_classes, dtype=torch.long))

    def fill(self, tops: torch.Tensor, labels: torch.Tensor) -> None:
        per_class = self.tops.shape[1]
        for c in range(len(self.counts)):
            keep = tops[labels == c][:per_class]
            self.tops[c, :len(keep)] = keep.to(self.tops.device)
            self.counts[c] = len(keep)

    def draw(self, labels: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        counts = self.counts.cpu()[labels.cpu()]
        if (counts == 0).any():
            raise CondgenError("this completion model holds no top halves of that digit (train it first), "
                               "or pass the tops to complete with tops=...")
        pick = (torch.rand(len(labels), generator=generator) * counts).long()
        return self.tops[labels.cpu(), pick]


class _Completion:
    """What both completion models share: the split into (top, bottom), the pool of training tops,
    and ``sample`` = complete the top halves of pooled training digits of the asked classes."""

    conditional = True  # sampling takes labels: they pick which digits' tops to complete

    def _build_parts(self) -> None:
        c = self.config
        self.part = PartialImageCondition(self.image_shape, c.rows)
        self.pool = TopPool(self.n_classes, self.part.top_shape)
        self.n_bottom = math.prod(self.part.bottom_shape)

    def prepare(self, images: torch.Tensor, labels: torch.Tensor) -> None:
        """Keep the top halves of the first training images of each class, for ``sample``."""
        if int(self.pool.counts.sum()) == 0:
            self.pool.fill(self.part.split(images)[0], labels)

    @torch.no_grad()
    def sample(self, n: int, labels=None, generator: torch.Generator | None = None,
               tops: torch.Tensor | None = None) -> torch.Tensor:
        """Full images (n, C, H, W): the given ``tops`` (n, C, rows, W) completed, or, without tops,
        the tops of training digits of the asked (or uniformly drawn) classes, completed."""
        if tops is None:
            tops = self.pool.draw(self.sample_labels(n, labels, generator), generator)
        elif len(tops) != n:
            raise CondgenError(f"got {len(tops)} top halves for {n} samples: give one per sample")
        return self.complete(tops, generator)


@dataclass(frozen=True)
class CompletionCVAEConfig(LatentConfig):
    """Pinned like the attribute model's; chosen on the validation split's NLL of the bottom half.
    ``rows``: how many top rows are the condition (None: half the image). There is no label
    embedding and no class prior: the prior is a network of the top half."""

    RETIRED = ("prior", "label_dim")  # checkpoints of before the typed settings carry them, unused
    z_dim: int = 8
    hidden: tuple[int, ...] = (256, 256)
    lr: float = 1e-3
    dropout: float = 0.3
    kl_warmup_steps: int = 0
    rows: int | None = None
    prior_hidden: tuple[int, ...] = (128,)


class CompletionCVAE(_Completion, VAE):
    """p(bottom | top) as a cVAE (Sohn, Lee and Yan 2015): recognition q(z | bottom, top), prior
    network p(z | top), decoder p(bottom | z, top). Different z give different plausible bottoms.
    Its networks are the VAE's (one ``build``); the hooks below make x the bottom half, y the top."""

    name = "cvae-complete"
    Config = CompletionCVAEConfig
    samples_draws = False  # a completion is the decoder's mean bottom half
    figures = ("completion",)
    default_epochs = 75
    # its networks read half an image and stay MLPs at 28x28: it keeps its own dropout there
    dataset_settings: dict[str, dict] = {}

    def build_parts(self) -> None:
        self._build_parts()

    @property
    def data_shape(self) -> tuple[int, ...]:
        """The encoder reads, and the decoder models, the bottom half (C, H - rows, W)."""
        return self.part.bottom_shape

    def make_condition(self) -> nn.Module:
        return self.part  # encoder and decoder both read the top half through the same module

    def make_prior(self) -> nn.Module:
        """The prior network p(z | top) of Sohn et al. (2015)."""
        return ConditionalPrior(self.part, self.config.z_dim, self.config.prior_hidden)

    def modules(self) -> dict[str, nn.Module]:
        return {**super().modules(), "pool": self.pool}

    def train_step(self, x: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
        top, bottom = self.part.split(x)
        return super().train_step(bottom, top)  # the ELBO of ``vae.py`` with x = bottom, y = top

    @torch.no_grad()
    def complete(self, tops: torch.Tensor, generator: torch.Generator | None = None,
                 decode: str = "mean") -> torch.Tensor:
        """One completion per top half: z ~ p(z | top), then the bottom E[bottom | z, top] (the
        decoder mean), its ``"mode"``, or with ``decode="draw"`` a pixel draw bottom ~ p(bottom | z,
        top); full images."""
        check_decode(decode)
        with self.evaluating():
            tops = tops.to(self.device)
            mu, logvar = self.prior_params(tops, len(tops))
            z = reparameterise(mu, logvar, self.noise(len(tops), self.config.z_dim, generator))
            bottom = self.decode_as(z, tops, decode, generator)
            return self.part.join(tops.cpu(), bottom)

    def nll(self, images: torch.Tensor, k: int | None = None,
            generator: torch.Generator | None = None) -> torch.Tensor:
        """-log p(bottom | top) per image (N,) in nats, estimated with the importance-weighted bound
        (Burda et al. 2016, eq. 8) with ``k`` samples: an upper bound that tightens as k grows."""
        top, bottom = self.part.split(images)
        return -self.bounds(bottom, top, k=k, generator=generator)["iw"]



@dataclass(frozen=True)
class CompletionRegressorConfig(Config):
    """The same network width, dropout and likelihood as the cVAE; epochs chosen on validation NLL."""

    hidden: tuple[int, ...] = (256, 256)
    lr: float = 1e-3
    weight_decay: float = 0.0
    dropout: float = 0.3
    rows: int | None = None
    likelihood: Literal["auto", "categorical", "bernoulli"] = "auto"
    levels: int | None = None


class CompletionRegressor(_Completion, Recipe):
    """The deterministic baseline: one network maps the top half to a distribution for each bottom
    pixel, independently (the cVAE's decoder without z). Its categorical noise model is learned by
    maximum likelihood on the training split; one temperature, fitted on the validation split with
    ``calibrate``, softens its over-confidence, which only helps it."""

    name = "regressor-complete"
    Config = CompletionRegressorConfig
    default_epochs = 70
    batch_size = 64

    def build(self) -> None:
        c = self.config
        self._build_parts()
        self.likelihood = pixel_likelihood(c.likelihood, c.levels, self.image_shape)  # the cVAE's
        self.net = mlp([self.part.out_dim, *c.hidden, self.n_bottom * self.likelihood.params_per_pixel],
                       dropout=c.dropout)
        self.calibration = nn.Module()
        self.calibration.register_buffer("temperature", torch.ones(()))
        self.opt = torch.optim.AdamW(self.trainable_parameters(), lr=c.lr, weight_decay=c.weight_decay)

    def modules(self) -> dict[str, nn.Module]:
        return {"net": self.net, "calibration": self.calibration, "pool": self.pool}

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"net": self.opt}

    def logits(self, tops: torch.Tensor) -> torch.Tensor:
        return self.net(self.part(tops.to(self.device))) / self.calibration.temperature

    def log_prob(self, images: torch.Tensor) -> torch.Tensor:
        """log p(bottom | top) per image (N,) in nats, exact (pixels independent given the top)."""
        top, bottom = self.part.split(images.to(self.device))
        return self.likelihood.log_prob(self.logits(top), self.likelihood.targets(bottom))

    def train_step(self, x: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
        loss = -self.log_prob(x).mean()  # cross-entropy of each bottom pixel: maximum likelihood
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        return {"loss_nll": loss.item()}

    @torch.no_grad()
    def nll(self, images: torch.Tensor, k: int | None = None,
            generator: torch.Generator | None = None) -> torch.Tensor:
        """-log p(bottom | top) per image (N,) in nats (exact; ``k`` is ignored)."""
        with eval_mode(self.net):
            return -self.log_prob(images).cpu()

    @torch.no_grad()
    def calibrate(self, images: torch.Tensor, grid: torch.Tensor | None = None) -> float:
        """Set the temperature T (logits / T) that minimises the NLL of held-out ``images``; returns T."""
        grid = torch.linspace(0.5, 3.0, 51) if grid is None else grid
        self.calibration.temperature.fill_(1.0)
        top, bottom = self.part.split(images.to(self.device))
        with eval_mode(self.net):
            logits, target = self.net(self.part(top)), self.likelihood.targets(bottom)
        scores = torch.stack([-self.likelihood.log_prob(logits / t, target).mean() for t in grid])
        self.calibration.temperature.fill_(grid[scores.argmin()].item())
        return self.calibration.temperature.item()

    @torch.no_grad()
    def complete(self, tops: torch.Tensor, generator: torch.Generator | None = None,
                 decode: str = "mean") -> torch.Tensor:
        """The one answer a deterministic model has: the expected bottom half, its ``"mode"``, or
        with ``decode="draw"`` a draw of its independent pixels (the calibrated distribution); full
        images."""
        check_decode(decode)
        tops = tops.to(self.device)
        with eval_mode(self.net):
            bottom = decode_images(self.likelihood, self.logits(tops), decode, generator).cpu()
        return self.part.join(tops.cpu(), bottom.view(-1, *self.part.bottom_shape))
