"""Conditioning beyond class labels (notebook 05): the cVAE of ``vae.py`` with other conditions.

- :class:`AttributeCVAE` (``cvae-attr``): p(x | digit, thickness, slant). The condition is the
  label plus attributes measured from the training images themselves (``attributes.py``).
- :class:`CompletionCVAE` (``cvae-complete``): p(bottom half | top half), image-to-image, the
  structured-output cVAE of Sohn, Lee and Yan (2015) with a prior network p(z | top).
- :class:`CompletionRegressor` (``regressor-complete``): the same task without a latent variable,
  the deterministic baseline the completion cVAE is compared with, in nats.

All reuse the encoder, decoder, prior and pixel likelihoods of ``vae.py``; only the conditioning
modules (``conditioning.py``) change.
"""

from __future__ import annotations

import copy
import math

import torch
from torch import nn

from .attributes import ATTRIBUTES, AttributeScaler
from .conditioning import (
    AttributeCondition,
    CombinedCondition,
    LabelEmbedding,
    PartialImageCondition,
    check_labels,
)
from .errors import CondgenError
from .gan import mlp
from .models import Recipe
from .vae import PRIORS, VAE, Decoder, Encoder, Prior


def _optimizer(recipe: Recipe) -> torch.optim.Optimizer:
    c = recipe.config
    params = [p for m in recipe.modules().values() for p in m.parameters() if p.requires_grad]
    return torch.optim.AdamW(params, lr=c["lr"], weight_decay=c.get("weight_decay", 0.0))


# --- attributes ------------------------------------------------------------------------------------

class ConditionBatch(tuple):
    """A tuple of per-example conditions, e.g. (labels, attributes), that slices like one batch
    (``c[a:b]`` slices every member), so code written for a single condition tensor can chunk it."""

    def __getitem__(self, index):
        if isinstance(index, slice):
            return ConditionBatch(t[index] for t in self)
        return tuple.__getitem__(self, index)


class AttributeCVAE(VAE):
    """cVAE conditioned on (digit, standardised attributes): encoder q(z | x, y, a), decoder
    p(x | z, y, a), prior p(z | y). The attributes of a training image are measured from its pixels,
    so training needs only images and labels; ``prepare`` fits the standardisation on them."""

    name = "cvae-attr"
    conditional = True
    # Settings are pinned here rather than inherited, so the figures of notebook 05 do not move when
    # the plain VAE's defaults do. Dropout and 50 epochs: the validation likelihood is best there.
    defaults = {**VAE.defaults, "z_dim": 16, "hidden": (256, 256), "lr": 1e-3, "dropout": 0.3,
                "kl_warmup_steps": 0, "label_dim": 16, "prior": "standard", "attributes": list(ATTRIBUTES)}
    default_epochs = 50

    def build(self) -> None:
        c = self.config
        if c["prior"] not in PRIORS:
            raise CondgenError(f"unknown prior {c['prior']!r}: use one of {', '.join(PRIORS)}")
        self.likelihood = self._likelihood()
        self.scaler = AttributeScaler(self.n_classes, tuple(c["attributes"]))

        def condition() -> CombinedCondition:
            return CombinedCondition(LabelEmbedding(self.n_classes, c["label_dim"]),
                                     AttributeCondition(self.scaler.names))

        hidden = tuple(c["hidden"])
        self.encoder = Encoder(self.image_shape, c["z_dim"], hidden, condition(), c.get("dropout", 0.0))
        self.decoder = Decoder(c["z_dim"], math.prod(self.image_shape) * self.likelihood.params_per_pixel,
                               hidden[::-1], condition(), c.get("dropout", 0.0))
        self.prior = Prior(c["z_dim"], self.n_classes, c["prior"] == "learned")
        self.opt = _optimizer(self)

    def modules(self) -> dict[str, nn.Module]:
        return {**super().modules(), "attributes": self.scaler}

    @property
    def attribute_names(self) -> tuple[str, ...]:
        return self.scaler.names

    def prepare(self, images: torch.Tensor, labels: torch.Tensor) -> None:
        """Fit the attribute standardisation on the training split (once; later calls keep it)."""
        if not bool(self.scaler.fitted):
            self.scaler.fit(images, labels)

    def condition(self, images: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The condition of real images: (labels (N,), their standardised attributes (N, k))."""
        return ConditionBatch((labels, self.scaler(images)))

    def _cond(self, y):
        if not isinstance(y, (tuple, list)) or len(y) != 2:
            raise CondgenError(f"model {self.name!r} is conditioned on (labels, attributes): pass both")
        labels, attrs = y
        return ConditionBatch((check_labels(labels, self.n_classes).to(self.device),
                               torch.as_tensor(attrs).to(self.device)))

    def prior_params(self, y, n: int):
        return self.prior(self._cond(y)[0], n)  # p(z | digit): the attributes act through the decoder

    def train_step(self, x: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
        return super().train_step(x, self.condition(x, y))

    @torch.no_grad()
    def sample(self, n: int, labels=None, generator: torch.Generator | None = None,
               attributes: torch.Tensor | None = None, draw: bool = False) -> torch.Tensor:
        """``n`` images (n, C, H, W) in [0, 1] for the asked digits and standardised ``attributes``
        (n, k). Without attributes, each is drawn from the training distribution of its digit's class
        (a Gaussian per class); without labels, digits are drawn uniformly. Decoder means, or with
        ``draw=True`` pixel draws (see :meth:`VAE.sample`)."""
        labels = self.sample_labels(n, labels, generator)
        if attributes is None:
            attributes = self.scaler.sample(labels, generator)
        attributes = torch.as_tensor(attributes, dtype=torch.float32)
        if attributes.ndim == 1:
            attributes = attributes.expand(n, -1)
        y = self._cond((labels, attributes))
        was_training = self.encoder.training
        self.eval()
        mu, logvar = self.prior_params(y, n)
        z = mu + (0.5 * logvar).exp() * self.noise(n, self.config["z_dim"], generator)
        # clamp: the expected pixel value can exceed 1 by a rounding error
        out = self.decode_draw(z, y, generator) if draw else self.decode_mean(z, y).clamp(0, 1).cpu()
        if was_training:
            self.train()
        return out

    def extra_metrics(self, dataset: str = "digits", seed: int = 0) -> dict:
        """Attribute control on the test split's labels: see :func:`attribute_control`."""
        from .data import load_dataset

        test = load_dataset(dataset, "test")
        figures = attribute_control(self, test.labels, dataset, generator=torch.Generator().manual_seed(seed))
        # the digit's accuracy comes from evaluate_model, with the same kind of draws
        return {k: v for k, v in figures.items()
                if not isinstance(v, torch.Tensor) and k not in ("n", "conditional_accuracy")}


def within_class_correlation(asked: torch.Tensor, measured: torch.Tensor, labels: torch.Tensor) -> float:
    """Pearson correlation of two (N,) series after removing each class's mean from both, so that
    differences *between* digits (7s lean right, 6s lean left) cannot make the figure look good."""
    a, m = asked.double().clone(), measured.double().clone()
    for c in labels.unique():
        idx = labels == c
        a[idx] -= a[idx].mean()
        m[idx] -= m[idx].mean()
    return (a @ m / (a.norm() * m.norm()).clamp_min(1e-12)).item()


@torch.no_grad()
def attribute_control(model: AttributeCVAE, labels: torch.Tensor, dataset: str = "digits",
                      attributes: torch.Tensor | None = None,
                      generator: torch.Generator | None = None) -> dict:
    """Ask for attributes, measure them on the samples, and check the digit.

    Attributes default to draws from each class's training distribution. Returns, per attribute,
    ``<name>_corr`` (within-class correlation of asked and measured standardised values) and
    ``<name>_corr_pooled`` (plain correlation), ``conditional_accuracy`` of the evaluation
    classifier, and the tensors ``asked``, ``measured`` (N, k) and ``images``.
    """
    from .evaluation import load_classifier, predict

    labels = check_labels(labels, model.n_classes)
    if attributes is None:
        attributes = model.scaler.sample(labels, generator).cpu()
    images = model.sample(len(labels), labels, generator, attributes=attributes)
    measured = model.scaler(images).cpu()
    out = {"n": len(labels)}
    for j, name in enumerate(model.attribute_names):
        out[f"{name}_corr"] = within_class_correlation(attributes[:, j], measured[:, j], labels)
        out[f"{name}_corr_pooled"] = torch.corrcoef(torch.stack([attributes[:, j], measured[:, j]]))[0, 1].item()
    out["conditional_accuracy"] = (predict(load_classifier(dataset), images) == labels).double().mean().item()
    out.update(asked=attributes, measured=measured, images=images)
    return out


# --- completion: the bottom half given the top half ------------------------------------------------

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
        self.part = PartialImageCondition(self.image_shape, c["rows"])
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


class CompletionCVAE(_Completion, VAE):
    """p(bottom | top) as a cVAE (Sohn, Lee and Yan 2015): recognition q(z | bottom, top), prior
    network p(z | top), decoder p(bottom | z, top). Different z give different plausible bottoms."""

    name = "cvae-complete"
    # pinned like AttributeCVAE's; chosen on the validation split's NLL of the bottom half
    defaults = {**VAE.defaults, "z_dim": 8, "hidden": (256, 256), "lr": 1e-3, "dropout": 0.3,
                "kl_warmup_steps": 0, "rows": None, "prior_hidden": (128,)}
    default_epochs = 75

    def build(self) -> None:
        c = self.config
        self._build_parts()
        self.likelihood = self._likelihood()
        hidden = tuple(c["hidden"])
        self.encoder = Encoder(self.part.bottom_shape, c["z_dim"], hidden, self.part, c.get("dropout", 0.0))
        self.decoder = Decoder(c["z_dim"], self.n_bottom * self.likelihood.params_per_pixel,
                               hidden[::-1], self.part, c.get("dropout", 0.0))
        self.prior = ConditionalPrior(self.part, c["z_dim"], tuple(c["prior_hidden"]))
        self.opt = _optimizer(self)

    def modules(self) -> dict[str, nn.Module]:
        return {**super().modules(), "pool": self.pool}

    def decode_mean(self, z: torch.Tensor, y=None) -> torch.Tensor:
        """The expected bottom half E[bottom | z, top], shape (N, C, H - rows, W), in [0, 1]."""
        return self.likelihood.mean(self.decode(z, y)).view(-1, *self.part.bottom_shape)

    def train_step(self, x: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
        top, bottom = self.part.split(x)
        return super().train_step(bottom, top)  # the ELBO of ``vae.py`` with x = bottom, y = top

    @torch.no_grad()
    def complete(self, tops: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """One completion per top half: z ~ p(z | top), bottom = E[bottom | z, top]; full images."""
        was_training = self.encoder.training
        self.eval()
        tops = tops.to(self.device)
        mu, logvar = self.prior_params(tops, len(tops))
        z = mu + (0.5 * logvar).exp() * self.noise(len(tops), self.config["z_dim"], generator)
        out = self.part.join(tops, self.decode_mean(z, tops).clamp(0, 1)).cpu()
        if was_training:
            self.train()
        return out

    def nll(self, images: torch.Tensor, k: int | None = None,
            generator: torch.Generator | None = None) -> torch.Tensor:
        """-log p(bottom | top) per image (N,) in nats, estimated with the importance-weighted bound
        (Burda et al. 2016, eq. 8) with ``k`` samples: an upper bound that tightens as k grows."""
        top, bottom = self.part.split(images)
        return -self.bounds(bottom, top, k=k, generator=generator)["iw"]

    def extra_metrics(self, dataset: str = "digits", seed: int = 0) -> dict:
        """Test-split NLL of the bottom half given the top, in nats, for this model and for the
        deterministic baseline (:class:`CompletionRegressor`, trained here on the same data)."""
        return completion_benchmark(self, dataset, seed)


class CompletionRegressor(_Completion, Recipe):
    """The deterministic baseline: one network maps the top half to a distribution for each bottom
    pixel, independently (the cVAE's decoder without z). Its categorical noise model is learned by
    maximum likelihood on the training split; one temperature, fitted on the validation split with
    ``calibrate``, softens its over-confidence, which only helps it."""

    name = "regressor-complete"
    # the same network width, dropout and likelihood as the cVAE; epochs chosen on validation NLL
    defaults = {"hidden": (256, 256), "lr": 1e-3, "weight_decay": 0.0, "dropout": 0.3, "rows": None,
                "likelihood": "auto", "levels": None}
    default_epochs = 70
    batch_size = 64

    def build(self) -> None:
        c = self.config
        self._build_parts()
        self.likelihood = VAE._likelihood(self)  # the same pixel likelihood as the cVAE
        self.net = mlp([self.part.out_dim, *tuple(c["hidden"]),
                        self.n_bottom * self.likelihood.params_per_pixel], dropout=c["dropout"])
        self.calibration = nn.Module()
        self.calibration.register_buffer("temperature", torch.ones(()))
        self.opt = _optimizer(self)

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
        self.net.eval()
        return -self.log_prob(images).cpu()

    @torch.no_grad()
    def calibrate(self, images: torch.Tensor, grid: torch.Tensor | None = None) -> float:
        """Set the temperature T (logits / T) that minimises the NLL of held-out ``images``; returns T."""
        grid = torch.linspace(0.5, 3.0, 51) if grid is None else grid
        self.calibration.temperature.fill_(1.0)
        top, bottom = self.part.split(images.to(self.device))
        logits, target = self.net.eval()(self.part(top)), self.likelihood.targets(bottom)
        scores = torch.stack([-self.likelihood.log_prob(logits / t, target).mean() for t in grid])
        self.calibration.temperature.fill_(grid[scores.argmin()].item())
        return self.calibration.temperature.item()

    @torch.no_grad()
    def complete(self, tops: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """The one answer a deterministic model has: the expected bottom half; full images."""
        self.net.eval()
        tops = tops.to(self.device)
        bottom = self.likelihood.mean(self.logits(tops)).view(-1, *self.part.bottom_shape).clamp(0, 1)
        return self.part.join(tops, bottom).cpu()


class KeepBest:
    """Early stopping as a ``fit`` callback: every ``every`` epochs it scores ``model.nll`` on held-out
    images (mean nats per image, ``k`` importance samples, a fixed seed) and keeps a copy of the
    weights with the lowest score; ``restore(model)`` loads that copy back. ``curve`` holds
    (epoch, nll) pairs."""

    def __init__(self, images: torch.Tensor, every: int = 5, k: int = 50, seed: int = 0):
        self.images, self.every, self.k, self.seed = images, int(every), int(k), int(seed)
        self.curve: list[tuple[int, float]] = []
        self.best_epoch, self.best_nll, self.state = 0, math.inf, None

    def __call__(self, epoch: int, model) -> None:
        if epoch % self.every:
            return
        g = torch.Generator().manual_seed(self.seed)
        nll = model.nll(self.images, k=self.k, generator=g).mean().item()
        self.curve.append((epoch, nll))
        if nll < self.best_nll:
            self.best_epoch, self.best_nll, self.state = epoch, nll, copy.deepcopy(model.state_dict())

    def restore(self, model):
        if self.state is None:
            raise CondgenError(f"no score was taken: train for at least {self.every} epochs")
        model.load_state_dict(self.state)
        return model


def completion_benchmark(model: CompletionCVAE, dataset: str = "digits", seed: int = 0,
                         baseline: CompletionRegressor | None = None, progress: bool = False) -> dict:
    """Test-split NLL of the bottom half given the top (nats per image) for the cVAE and for the
    deterministic baseline. Without a ``baseline``, one is trained on the training split for its
    default epochs and calibrated on the validation split."""
    from .data import load_dataset
    from .training import fit

    train, val, test = (load_dataset(dataset, s) for s in ("train", "val", "test"))
    if baseline is None:
        torch.manual_seed(seed)
        baseline = CompletionRegressor(model.image_shape, model.n_classes, model.device,
                                       rows=model.config["rows"])
        fit(baseline, train, seed=seed, progress=progress)
        baseline.calibrate(val.images)
    g = torch.Generator().manual_seed(seed)
    cvae_nll = model.nll(test.images, generator=g).mean().item()
    base_nll = baseline.nll(test.images).mean().item()
    return {"test_nll_bottom_nats": round(cvae_nll, 3), "baseline_nll_bottom_nats": round(base_nll, 3),
            "nll_gain_nats": round(base_nll - cvae_nll, 3),
            "baseline_temperature": round(baseline.calibration.temperature.item(), 3),
            "iw_samples": model.config["iw_samples"]}
