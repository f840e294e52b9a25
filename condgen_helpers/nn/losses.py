"""Objectives of the course, each beside the equation it implements.

All GAN losses take discriminator *logits* (pre-sigmoid scores) and use the numerically stable
``binary_cross_entropy_with_logits``: applying a sigmoid first and then ``log`` loses precision
exactly where the generator needs gradient.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ..errors import CondgenError

GENERATOR_LOSSES = ("non_saturating", "minimax")


def discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """Negative of the GAN value the discriminator maximises (Goodfellow et al. 2014, eq. 1):
    -( E_x log D(x) + E_z log(1 - D(G(z))) ), with D = sigmoid(logit). Minimum 2 log 2 at D = 1/2
    is what an optimal D scores against a perfect generator."""
    real = F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
    fake = F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))
    return real + fake


def generator_loss(fake_logits: torch.Tensor, kind: str = "non_saturating") -> torch.Tensor:
    """The generator's loss on D's logits for its samples.

    ``minimax``: E log(1 - D(G(z))), the term of the original game (Goodfellow et al. 2014, eq. 1);
    it saturates: when D confidently rejects fakes, its gradient vanishes.
    ``non_saturating``: -E log D(G(z)) (same paper, section 3): same fixed point, strong gradient early.
    """
    if kind == "non_saturating":
        return F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))
    if kind == "minimax":
        # log(1 - sigmoid(l)) = -softplus(l)
        return -F.softplus(fake_logits).mean()
    raise ValueError(f"unknown generator loss {kind!r}: use one of {', '.join(GENERATOR_LOSSES)}")


def optimal_discriminator(p_data: torch.Tensor, p_model: torch.Tensor) -> torch.Tensor:
    """D*(x) = p_data(x) / (p_data(x) + p_g(x)) (Goodfellow et al. 2014, proposition 1)."""
    return p_data / (p_data + p_model)


def js_divergence(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """Jensen-Shannon divergence in nats between two discrete distributions (last axis sums to 1)."""
    m = 0.5 * (p + q)
    kl = lambda a, b: torch.where(a > 0, a * (a / b).log(), torch.zeros_like(a)).sum(-1)  # noqa: E731
    return 0.5 * kl(p, m) + 0.5 * kl(q, m)


def gaussian_kl(mu_q: torch.Tensor, logvar_q: torch.Tensor, mu_p: torch.Tensor | float = 0.0,
                logvar_p: torch.Tensor | float = 0.0) -> torch.Tensor:
    """KL( N(mu_q, diag e^logvar_q) || N(mu_p, diag e^logvar_p) ) in nats, summed over the last axis.

    Closed form per dimension: 0.5 * (logvar_p - logvar_q + (e^logvar_q + (mu_q - mu_p)^2) / e^logvar_p - 1);
    with a standard normal prior this is Kingma and Welling (2014), appendix B.
    """
    mu_p = torch.as_tensor(mu_p, dtype=mu_q.dtype, device=mu_q.device)
    logvar_p = torch.as_tensor(logvar_p, dtype=mu_q.dtype, device=mu_q.device)
    per_dim = 0.5 * (logvar_p - logvar_q + (logvar_q.exp() + (mu_q - mu_p) ** 2) / logvar_p.exp() - 1)
    return per_dim.sum(-1)


def log_normal(x: torch.Tensor, mu: torch.Tensor | float = 0.0,
               logvar: torch.Tensor | float = 0.0) -> torch.Tensor:
    """log N(x; mu, diag e^logvar) in nats, summed over the last axis."""
    mu = torch.as_tensor(mu, dtype=x.dtype, device=x.device)
    logvar = torch.as_tensor(logvar, dtype=x.dtype, device=x.device)
    return (-0.5 * (math.log(2 * math.pi) + logvar + (x - mu) ** 2 / logvar.exp())).sum(-1)


# --- likelihood models (notebook 04) ----------------------------------------------------------------

def categorical_log_likelihood(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """log p(x) in nats of integer pixel values under independent categoricals, summed over pixels.

    logits (..., D, L) unnormalised scores over L levels for D pixels; targets (..., D) int in 0..L-1.
    log_softmax normalises each pixel's scores, so the result is a proper log-probability (<= 0).
    """
    log_probs = F.log_softmax(logits, dim=-1)
    targets = targets.expand(log_probs.shape[:-1])
    return log_probs.gather(-1, targets.unsqueeze(-1)).squeeze(-1).sum(-1)


def bernoulli_log_likelihood(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """log p(x) in nats of binary pixels under independent Bernoullis with p = sigmoid(logit),
    summed over the last axis: sum x log p + (1 - x) log(1 - p), computed from logits for stability."""
    targets = targets.expand(logits.shape)
    return -F.binary_cross_entropy_with_logits(logits, targets, reduction="none").sum(-1)


def elbo(log_px_given_z: torch.Tensor, kl: torch.Tensor) -> torch.Tensor:
    """The evidence lower bound (Kingma and Welling 2014, eq. 7), per example in nats:
    ELBO = E_q[log p(x | z)] - KL(q(z | x) || p(z)) <= log p(x); with a label, every term also
    conditions on y and the prior is p(z | y)."""
    return log_px_given_z - kl


def iwae_bound(log_weights: torch.Tensor) -> torch.Tensor:
    """The importance-weighted bound (Burda et al. 2016, eq. 8) from K log weights per example:
    L_K = log (1/K) sum_k w_k, with w_k = p(x, z_k) / q(z_k | x), z_k ~ q.

    log_weights (K, ...) -> (...). L_1 is the ELBO; L_K grows with K towards log p(x).
    """
    k = log_weights.shape[0]
    return torch.logsumexp(log_weights, dim=0) - math.log(k)


# --- AC-GAN (notebook 03) ---------------------------------------------------------------------------

def source_log_likelihood(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """L_S of AC-GAN (Odena, Olah and Shlens 2017, section 3), in nats:
    E log P(S=real | x_real) + E log P(S=fake | x_fake), with P(S=real | x) = sigmoid(logit).
    It is the GAN value V(D, G) itself, so it equals minus :func:`discriminator_loss`."""
    return -discriminator_loss(real_logits, fake_logits)


def class_log_likelihood(class_logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """One term of AC-GAN's L_C (Odena, Olah and Shlens 2017, section 3): E log P(C=c | x) in nats,
    from class *logits* (N, K) and the classes c (N,). L_C adds this term for real and for generated
    images. The softmax happens inside (log_softmax in cross_entropy), so the input must be logits."""
    if class_logits.ndim != 2:
        raise CondgenError(f"class logits must have shape (N, K), got {tuple(class_logits.shape)}")
    rows_are_probabilities = (class_logits.min() >= 0) & (class_logits.max() <= 1) & \
        torch.allclose(class_logits.sum(1), torch.ones(len(class_logits), device=class_logits.device))
    if class_logits.shape[1] > 1 and bool(rows_are_probabilities):
        raise CondgenError("the class scores are already probabilities (each row sums to 1): pass the "
                           "logits, you may be applying a softmax before a loss that expects logits")
    return -F.cross_entropy(class_logits, labels)


def acgan_generator_loss(fake_logits: torch.Tensor, fake_class_logits: torch.Tensor,
                         fake_labels: torch.Tensor, kind: str = "non_saturating") -> torch.Tensor:
    """What AC-GAN's generator minimises: -(L_C - L_S) over the terms it can change, i.e. its
    samples' source term minus their class term (Odena, Olah and Shlens 2017, section 3).

    ``minimax``: E log(1 - D_S(G(z, c))) - E log P(C=c | G(z, c)), the paper's objective as written;
    ``non_saturating``: -E log D_S(G(z, c)) - E log P(C=c | G(z, c)), the usual swap of the source
    term (see :func:`generator_loss`); the class term is the same in both."""
    return generator_loss(fake_logits, kind) - class_log_likelihood(fake_class_logits, fake_labels)
