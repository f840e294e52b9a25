"""Variational autoencoders: the plain VAE (notebook 04) and the conditional VAE with a prior p(z|y).

On 8x8 digits the networks are small multilayer perceptrons; on 28x28 images (MNIST,
Fashion-MNIST) a convolutional encoder and decoder (``nn/conv.py``) take their place, chosen by image
size (the ``network`` setting overrides the choice). The encoder q(z | x[, y]) and the prior p(z[ | y]) are
diagonal Gaussians; the decoder p(x | z[, y]) is a proper discrete likelihood over the pixel values
(categorical over the 17 levels of the 8x8 digits, Bernoulli over binarised MNIST pixels), so the
training objective and the reported bounds are log-likelihoods in nats. (On 28x28 images a
categorical over 256 grey levels would need 200,704 outputs per image; binarised pixels with a
Bernoulli likelihood are the usual benchmark there, and still give nats.)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from ..errors import CondgenError
from ..nn import losses
from ..nn.conditioning import LabelEmbedding
from ..nn.conv import ConvDecoder, ConvEncoder, pick_network
from ..nn.layers import mlp, reparameterise
from ..nn.likelihoods import check_decode, decode_images, pixel_likelihood
from .base import Config, Recipe, check_range

# --- a latent-variable model where everything is closed-form ---------------------------------------

class LinearGaussian:
    """z ~ N(prior_mu, diag e^prior_logvar) (a prior p(z | y) when the mean depends on a label),
    x | z ~ N(W z + b, sigma2 I). Linear and Gaussian, so the evidence log p(x) and the true
    posterior p(z | x) are known exactly, which lets us check every step of the ELBO with numbers.

    W (D, d), b (D,); x (N, D) or (D,); codes z (..., d).
    """

    def __init__(self, W: torch.Tensor, b: torch.Tensor, sigma2: float,
                 prior_mu: torch.Tensor | float = 0.0, prior_logvar: torch.Tensor | float = 0.0):
        self.W, self.b, self.sigma2 = W.double(), b.double(), float(sigma2)
        d = W.shape[1]
        self.prior_mu = torch.as_tensor(prior_mu, dtype=torch.float64).expand(d)
        self.prior_logvar = torch.as_tensor(prior_logvar, dtype=torch.float64).expand(d)

    def log_likelihood(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """log p(x | z) in nats."""
        return losses.log_normal(x.double(), z.double() @ self.W.T + self.b, math.log(self.sigma2))

    def log_prior(self, z: torch.Tensor) -> torch.Tensor:
        return losses.log_normal(z.double(), self.prior_mu, self.prior_logvar)

    def log_joint(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        return self.log_likelihood(x, z) + self.log_prior(z)

    def evidence(self) -> torch.distributions.MultivariateNormal:
        """p(x) = N(W mu_z + b, W S_z W^T + sigma2 I): a linear map of Gaussians is Gaussian."""
        S = torch.diag(self.prior_logvar.exp())
        cov = self.W @ S @ self.W.T + self.sigma2 * torch.eye(len(self.b), dtype=torch.float64)
        return torch.distributions.MultivariateNormal(self.W @ self.prior_mu + self.b, cov)

    def log_evidence(self, x: torch.Tensor) -> torch.Tensor:
        """log p(x) in nats, exactly."""
        return self.evidence().log_prob(x.double())

    def posterior(self, x: torch.Tensor) -> torch.distributions.MultivariateNormal:
        """p(z | x) = N(m, S) with S = (S_z^-1 + W^T W / sigma2)^-1 and
        m = S (S_z^-1 mu_z + W^T (x - b) / sigma2) (Bishop 2006, eq. 2.116)."""
        prec_z = torch.diag((-self.prior_logvar).exp())
        S = torch.linalg.inv(prec_z + self.W.T @ self.W / self.sigma2)
        m = (prec_z @ self.prior_mu + (x.double() - self.b) @ self.W / self.sigma2) @ S.T
        return torch.distributions.MultivariateNormal(m, S)

    def elbo(self, x: torch.Tensor, mu_q: torch.Tensor, logvar_q: torch.Tensor) -> torch.Tensor:
        """The ELBO of a diagonal Gaussian q(z) = N(mu_q, diag e^logvar_q) in closed form:
        E_q log p(x | z) - KL(q || p(z)), where E_q ||x - W z - b||^2 = ||x - W mu_q - b||^2 + tr(W S_q W^T)."""
        x, mu_q, logvar_q = x.double(), mu_q.double(), logvar_q.double()
        D = self.W.shape[0]
        sq = ((x - mu_q @ self.W.T - self.b) ** 2).sum(-1) + (logvar_q.exp() * (self.W ** 2).sum(0)).sum(-1)
        expected_ll = -0.5 * D * math.log(2 * math.pi * self.sigma2) - sq / (2 * self.sigma2)
        return expected_ll - losses.gaussian_kl(mu_q, logvar_q, self.prior_mu, self.prior_logvar)

    def log_weights(self, x: torch.Tensor, mu_q: torch.Tensor, logvar_q: torch.Tensor, k: int,
                    generator: torch.Generator | None = None) -> torch.Tensor:
        """log p(x, z_k) - log q(z_k) for k draws z_k ~ q: shape (k, ...)."""
        mu_q, logvar_q = mu_q.double(), logvar_q.double()
        eps = torch.randn((k, *mu_q.shape), generator=generator, dtype=torch.float64)
        z = reparameterise(mu_q, logvar_q, eps)
        return self.log_joint(x, z) - losses.log_normal(z, mu_q, logvar_q)


def elbo_gradient_samples(log_joint, mu: torch.Tensor, logvar: torch.Tensor, n: int,
                          estimator: str = "reparam", generator: torch.Generator | None = None) -> torch.Tensor:
    """``n`` one-sample estimates (n, d) of the gradient of ELBO(mu) = E_q[log p(x, z) - log q(z)] with
    respect to the mean of q = N(mu, diag e^logvar); ``log_joint`` maps codes (n, d) to (n,).

    ``reparam`` (Kingma and Welling 2014, section 2.4): z = mu + sigma * eps, differentiate through z.
    ``score`` (the score-function or REINFORCE estimator, Williams 1992): (log p - log q) * d log q / d mu,
    which needs no gradient of log p but is far noisier. Both are unbiased.
    """
    if estimator not in ("reparam", "score"):
        raise CondgenError(f"unknown gradient estimator {estimator!r}: use 'reparam' or 'score'")
    mu_n = mu.detach().double().expand(n, -1).clone().requires_grad_(True)
    logvar = logvar.detach().double()
    eps = torch.randn(mu_n.shape, generator=generator, dtype=torch.float64)
    z = reparameterise(mu_n, logvar, eps)
    if estimator == "reparam":
        objective = log_joint(z) - losses.log_normal(z, mu_n, logvar)
    else:
        z = z.detach()
        log_q = losses.log_normal(z, mu_n, logvar)
        objective = (log_joint(z) - log_q).detach() * log_q
    grad, = torch.autograd.grad(objective.sum(), mu_n)
    return grad


# --- networks --------------------------------------------------------------------------------------

class Encoder(nn.Module):
    """q(z | x[, y]): images (N, C, H, W) in [0, 1] and an optional condition -> (mu, logvar), each (N, z_dim)."""

    def __init__(self, image_shape, z_dim: int, hidden=(256, 256), cond: nn.Module | None = None,
                 dropout: float = 0.0):
        super().__init__()
        self.cond = cond
        extra = cond.out_dim if cond is not None else 0
        self.net = mlp([math.prod(image_shape) + extra, *hidden, 2 * z_dim], dropout=dropout)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None):
        h = x.flatten(1)
        if self.cond is not None:
            h = torch.cat([h, self.cond(y)], dim=1)
        mu, logvar = self.net(h).chunk(2, dim=1)
        return mu, logvar


class Decoder(nn.Module):
    """p(x | z[, y]): codes (..., z_dim) and an optional condition -> likelihood parameters
    (..., pixels * params_per_pixel), e.g. 17 logits per pixel for the categorical likelihood."""

    def __init__(self, z_dim: int, n_outputs: int, hidden=(256, 256), cond: nn.Module | None = None,
                 dropout: float = 0.0):
        super().__init__()
        self.cond = cond
        extra = cond.out_dim if cond is not None else 0
        self.net = mlp([z_dim + extra, *hidden, n_outputs], dropout=dropout)

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        if self.cond is not None:
            c = self.cond(y)
            h = torch.cat([z, c.expand(*z.shape[:-1], c.shape[-1])], dim=-1)
        else:
            h = z
        return self.net(h)


class Prior(nn.Module):
    """p(z[ | y]) = N(mu_y, diag e^logvar_y): fixed at N(0, I), or one learned Gaussian per class."""

    def __init__(self, z_dim: int, n_rows: int = 1, learned: bool = False):
        super().__init__()
        self.learned = learned
        self.mu = nn.Parameter(torch.zeros(n_rows, z_dim), requires_grad=learned)
        self.logvar = nn.Parameter(torch.zeros(n_rows, z_dim), requires_grad=learned)

    def forward(self, y: torch.Tensor | None, n: int):
        """Parameters for ``n`` codes: (mu, logvar), each (n, z_dim)."""
        if y is None:
            return self.mu[0].expand(n, -1), self.logvar[0].expand(n, -1)
        return self.mu[y], self.logvar[y]


# --- the recipes -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class LatentConfig(Config):
    """Settings every model of the VAE family shares. Dropout and the KL warm-up keep the 1000
    training digits from being memorised; ``iw_samples`` is K of the importance-weighted bound.
    ``network``: ``"mlp"``, ``"conv"`` (28x28 images only; ``width`` channels, then twice that) or
    ``"auto"``, the convolutional networks on 28x28 images and the MLPs otherwise."""

    network: Literal["auto", "mlp", "conv"] = "auto"
    width: int = 32
    z_dim: int = 16
    hidden: tuple[int, ...] = (256, 256)
    lr: float = 5e-4
    weight_decay: float = 0.0
    dropout: float = 0.4
    kl_warmup_steps: int = 1500
    likelihood: Literal["auto", "categorical", "bernoulli"] = "auto"
    levels: int | None = None
    iw_samples: int = 1000

    def validate(self) -> None:
        check_range("dropout", self.dropout, 0.0, 1.0)
        if self.z_dim < 1 or self.width < 1 or self.iw_samples < 1 or self.kl_warmup_steps < 0 or self.lr <= 0:
            raise CondgenError("z_dim and iw_samples must be at least 1, kl_warmup_steps at least 0 "
                               f"and lr positive, got {self.z_dim}, {self.iw_samples}, "
                               f"{self.kl_warmup_steps}, {self.lr}")


@dataclass(frozen=True)
class VAEConfig(LatentConfig):
    """The VAE's and cVAE's settings: the label embedding's size and start, and the prior p(z[ | y])."""

    label_dim: int = 16
    label_init: Literal["one-hot", "normal"] = "one-hot"
    prior: Literal["standard", "learned"] = "standard"


@dataclass(frozen=True)
class CVAEConfig(VAEConfig):
    # a learned Gaussian per class scored slightly better on validation than N(0, I); see notebook 04
    prior: Literal["standard", "learned"] = "learned"


class VAE(Recipe):
    """The plain VAE (Kingma and Welling 2014): models p(x) through a latent code z ~ N(0, I).

    ``build`` is written once for the whole family: the conditional, attribute and completion models
    change only its hooks (what the encoder reads, how the condition enters, the prior)."""

    name = "vae"
    Config = VAEConfig
    conditional = False
    samples_draws = True
    figures = ("likelihood",)
    # chosen on the validation split (digits): the epochs are where the validation bound stops improving
    default_epochs = 200
    batch_size = 64
    # 28x28 (the convolutional networks): 8,000 steps, and less dropout than the 1000 digits need.
    # On 3,334 real MNIST digits the cVAE's pixel draws were the asked digit 0.74 of the time after
    # 4,000 steps and 0.83 after 8,000 (dropout 0.1; 0.70 after 4,000 with the digits' 0.4)
    dataset_steps = {"mnist": 8000, "fashion-mnist": 8000}
    dataset_settings = {"mnist": {"dropout": 0.1}, "fashion-mnist": {"dropout": 0.1}}

    def build(self) -> None:
        c = self.config
        self.likelihood = pixel_likelihood(c.likelihood, c.levels, self.image_shape)
        self.build_parts()
        shape = self.data_shape
        enc_cond, dec_cond = self.make_condition(), self.make_condition()
        self.network = pick_network(c.network, shape)
        if self.network == "conv":  # 28x28: convolutions, with the first hidden size as the dense layer
            self.encoder = ConvEncoder(shape, c.z_dim, enc_cond, c.width, c.hidden[0], c.dropout)
            self.decoder = ConvDecoder(c.z_dim, shape, self.likelihood.params_per_pixel, dec_cond,
                                       c.width, c.hidden[0], c.dropout)
        else:
            self.encoder = Encoder(shape, c.z_dim, c.hidden, enc_cond, c.dropout)
            self.decoder = Decoder(c.z_dim, math.prod(shape) * self.likelihood.params_per_pixel,
                                   c.hidden[::-1], dec_cond, c.dropout)
        self.prior = self.make_prior()
        self.opt = torch.optim.AdamW(self.trainable_parameters(), lr=c.lr, weight_decay=c.weight_decay)

    # -- the hooks of ``build`` ----------------------------------------------------------------------
    def build_parts(self) -> None:
        """Modules the networks need before they are built (none for the VAE and cVAE)."""

    @property
    def data_shape(self) -> tuple[int, ...]:
        """What the encoder reads and the decoder models: the whole image here."""
        return self.image_shape

    def make_condition(self) -> nn.Module | None:
        """The condition module of the encoder or the decoder (called once for each)."""
        return self._label_embedding() if self.conditional else None

    def make_prior(self) -> nn.Module:
        return Prior(self.config.z_dim, self.n_classes if self.conditional else 1,
                     self.config.prior == "learned")

    def _label_embedding(self) -> LabelEmbedding:
        """A learned vector per class that starts as the one-hot code (zero-padded to label_dim), or
        with ``label_init="normal"`` as torch's N(0, 1) draw. Random starting vectors, four times longer
        than a one-hot code, swamp the latent code early in training; on digits they cost the cVAE
        about a nat of validation likelihood (notebook 05 measures what they do to the attribute cVAE)."""
        emb = LabelEmbedding(self.n_classes, self.config.label_dim)
        if self.config.label_init == "one-hot":
            nn.init.eye_(emb.table.weight)
        return emb

    def modules(self) -> dict[str, nn.Module]:
        return {"encoder": self.encoder, "decoder": self.decoder, "prior": self.prior}

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"vae": self.opt}

    # -- the three distributions, with the label passed only when the model is conditional --------
    def _cond(self, y: torch.Tensor | None) -> torch.Tensor | None:
        if not self.conditional:
            return None
        if y is None:
            raise CondgenError(f"model {self.name!r} is conditional: pass the labels y")
        return y.to(self.device)

    def encode(self, x: torch.Tensor, y: torch.Tensor | None = None):
        """q(z | x[, y]) -> (mu, logvar), each (N, z_dim)."""
        return self.encoder(x.to(self.device), self._cond(y))

    def decode(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """p(x | z[, y]) parameters; ``decode_mean`` turns them into images."""
        return self.decoder(z.to(self.device), self._cond(y))

    def decode_mean(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """The decoder's expected image E[x | z, y], shape (N, C, H, W), in [0, 1]."""
        return self.likelihood.mean(self.decode(z, y)).view(-1, *self.data_shape)

    @torch.no_grad()
    def decode_draw(self, z: torch.Tensor, y: torch.Tensor | None = None,
                    generator: torch.Generator | None = None) -> torch.Tensor:
        """One draw x ~ p(x | z, y) instead of its mean: (N, C, H, W) in [0, 1], on the CPU."""
        return self.likelihood.draw(self.decode(z, y), generator).view(-1, *self.data_shape)

    @torch.no_grad()
    def decode_as(self, z: torch.Tensor, y, decode: str = "mean",
                  generator: torch.Generator | None = None) -> torch.Tensor:
        """p(x | z, y) as images (N, C, H, W) in [0, 1] on the CPU: its ``"mean"``, its ``"mode"``
        (each pixel at its most probable value) or a ``"draw"``."""
        return decode_images(self.likelihood, self.decode(z, y), decode, generator).view(-1, *self.data_shape).cpu()

    def prior_params(self, y: torch.Tensor | None, n: int):
        return self.prior(self._cond(y), n)

    def elbo_terms(self, x: torch.Tensor, y: torch.Tensor | None = None,
                   generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """One-sample ELBO of each image (Kingma and Welling 2014, eq. 10, with p(z | y) as prior):
        ELBO = E_q log p(x | z, y) - KL(q(z | x, y) || p(z | y)); all (N,) in nats."""
        target = self.likelihood.targets(x.to(self.device), generator)
        mu, logvar = self.encode(x, y)
        # reparameterisation: z = mu + sigma * eps keeps z differentiable in (mu, logvar)
        eps = torch.randn(mu.shape, generator=generator).to(self.device)
        z = reparameterise(mu, logvar, eps)
        log_px = self.likelihood.log_prob(self.decode(z, y), target)
        kl = losses.gaussian_kl(mu, logvar, *self.prior_params(y, len(x)))
        return {"elbo": losses.elbo(log_px, kl), "log_px": log_px, "kl": kl}

    def kl_weight(self) -> float:
        """Weight of the KL term at this step: it rises linearly from 0 to 1 over ``kl_warmup_steps``
        (the warm-up of Bowman et al. 2016 and Sonderby et al. 2016), then stays at 1, the true ELBO.
        Without it the decoder learns first to ignore the code, and the encoder collapses onto the prior."""
        warmup = self.config.kl_warmup_steps
        return min(1.0, (self.steps + 1) / warmup) if warmup else 1.0

    def train_step(self, x: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
        terms = self.elbo_terms(x, y)
        beta = self.kl_weight()
        loss = -(terms["log_px"] - beta * terms["kl"]).mean()
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        return {"loss": loss.item(), "nelbo": -terms["elbo"].mean().item(),
                "recon": -terms["log_px"].mean().item(), "kl": terms["kl"].mean().item(), "kl_weight": beta}

    @torch.no_grad()
    def bounds(self, x: torch.Tensor, y: torch.Tensor | None = None, k: int | None = None,
               generator: torch.Generator | None = None, chunk: int = 100) -> dict[str, torch.Tensor]:
        """Per-image ELBO and importance-weighted bound (Burda et al. 2016) with ``k`` samples from q,
        both (N,) in nats. The ELBO uses the closed-form KL and the mean of the k reconstructions."""
        k = k or self.config.iw_samples
        elbos, iws = [], []
        with self.evaluating():
            for start in range(0, len(x), chunk):
                xb = x[start:start + chunk].to(self.device)
                yb = None if y is None else y[start:start + chunk]
                target = self.likelihood.targets(xb, generator)
                mu, logvar = self.encode(xb, yb)
                mu_p, logvar_p = self.prior_params(yb, len(xb))
                eps = torch.randn((k, *mu.shape), generator=generator).to(self.device)
                z = reparameterise(mu, logvar, eps)                       # (k, N, z_dim)
                log_px = self.likelihood.log_prob(self.decode(z, yb), target)  # (k, N)
                log_w = log_px + losses.log_normal(z, mu_p, logvar_p) - losses.log_normal(z, mu, logvar)
                elbos.append(log_px.mean(0) - losses.gaussian_kl(mu, logvar, mu_p, logvar_p))
                iws.append(losses.iwae_bound(log_w))
        return {"elbo": torch.cat(elbos).cpu(), "iw": torch.cat(iws).cpu()}

    @torch.no_grad()
    def log_marginal(self, x: torch.Tensor, class_prior: torch.Tensor, k: int | None = None,
                     generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """A conditional model's own marginal, log p(x) = log sum_y p(y) p(x | y), per image.

        Each log p(x | y) is the importance-weighted bound with ``k`` samples (default: iw_samples
        spread over the classes, so the cost matches one bound per image); as the log of an
        unbiased estimate of p(x), the result is a stochastic lower bound of log p(x).
        Returns ``log_px`` (N,) and ``log_px_given_y`` (N, n_classes), in nats."""
        if not self.conditional:
            raise CondgenError(f"model {self.name!r} models p(x) directly: use bounds()")
        k = k or max(1, self.config.iw_samples // self.n_classes)
        prior = torch.as_tensor(class_prior, dtype=torch.float64)
        if prior.shape != (self.n_classes,) or (prior < 0).any() or abs(prior.sum().item() - 1) > 1e-6:
            raise CondgenError(f"class_prior must be {self.n_classes} probabilities that sum to 1")
        table = torch.stack([self.bounds(x, torch.full((len(x),), c, dtype=torch.long), k=k,
                                         generator=generator)["iw"].double()
                             for c in range(self.n_classes)], dim=1)
        return {"log_px": torch.logsumexp(table + prior.log()[None, :], dim=1), "log_px_given_y": table}

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """Decode the encoder's mean code: images (N, C, H, W) in [0, 1]."""
        mu, _ = self.encode(x, y)
        return self.decode_mean(mu, y).cpu()

    @torch.no_grad()
    def sample(self, n: int, labels=None, generator: torch.Generator | None = None,
               decode: str = "mean") -> torch.Tensor:
        """``n`` images (n, C, H, W) in [0, 1]: z from the prior, then p(x | z[, y]) as an image:
        ``decode="mean"`` its mean, ``"mode"`` every pixel at its most probable value, or ``"draw"``
        one draw x ~ p(x | z[, y]), the model's own distribution.

        The mean is what is usually shown, but it averages every pixel's uncertainty into grey, and
        given z the decoder treats pixels as independent, so a draw adds salt-and-pepper noise. The
        mode is sharp and noise-free. Only the draw is a sample of the model, so the evaluation scores
        draws (and the means and modes apart, labelled as such)."""
        check_decode(decode)
        if labels is not None and not self.conditional:
            raise CondgenError(f"model {self.name!r} is unconditional and takes no labels: "
                               "sample with n only, or train the conditional model cvae")
        with self.evaluating():
            y = self.sample_labels(n, labels, generator) if self.conditional else None
            mu, logvar = self.prior_params(y, n)
            z = reparameterise(mu, logvar, self.noise(n, self.config.z_dim, generator))
            return self.decode_as(z, y, decode, generator)


class CVAE(VAE):
    """The conditional VAE (Sohn et al. 2015): encoder, decoder and prior all see the label y."""

    name = "cvae"
    Config = CVAEConfig
    conditional = True
    default_epochs = 140
