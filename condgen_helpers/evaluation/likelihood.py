"""Likelihood figures of the VAE family on the test split, per image in nats."""

from __future__ import annotations

import math

import torch

from ..data import Splits, as_splits


@torch.no_grad()
def likelihood_figures(model, data: str | Splits = "digits", seed: int = 0, k: int | None = None) -> dict:
    """Negative ELBO, importance-weighted NLL (``k`` samples, default the model's ``iw_samples``)
    and bits per dimension (IW NLL / (pixels * ln 2)), on the test split. The NLL is -log p(x) for
    the VAE and -log p(x | y) for the cVAE; the cVAE also gets -log p(x) from its own marginal
    (``log_marginal``, with p(y) = the training split's class shares) and the accuracy of the Bayes
    classifier argmax_y p(y) p(x | y) it implies, so both models meet on one quantity."""
    splits = as_splits(data)
    test = splits.test
    k = k or model.config.iw_samples
    g = torch.Generator().manual_seed(seed)
    b = model.bounds(test.images, test.labels if model.conditional else None, k=k, generator=g)
    nelbo, iw_nll = -b["elbo"].mean().item(), -b["iw"].mean().item()
    bits = math.prod(model.image_shape) * math.log(2)
    out = {"test_nelbo_nats": round(nelbo, 3), "test_iw_nll_nats": round(iw_nll, 3),
           "test_bits_per_dim": round(iw_nll / bits, 4), "iw_samples": k}
    if not model.conditional:
        out["test_nll_x_nats"] = out["test_iw_nll_nats"]
        return out
    train_labels = splits.train.labels
    prior = torch.bincount(train_labels, minlength=model.n_classes).double() / len(train_labels)
    marg = model.log_marginal(test.images, prior, k=max(1, k // model.n_classes), generator=g)
    out.update({"test_nll_x_given_y_nats": out["test_iw_nll_nats"],
                "test_nll_x_nats": round(-marg["log_px"].mean().item(), 3),
                "bayes_accuracy": round((marg["log_px_given_y"].argmax(1) == test.labels).double().mean().item(), 4)})
    return out


ACTIVE_THRESHOLD = 0.01  # Burda, Grosse and Salakhutdinov (2016), section 5.2


@torch.no_grad()
def latent_usage(model, images: torch.Tensor, condition=None, threshold: float = ACTIVE_THRESHOLD) -> dict:
    """How much of the code z a model of the VAE family uses on ``images`` (with their ``condition``:
    labels, or what the model's ``condition`` returns; None for the plain VAE).

    ``kl_per_dim`` (z_dim,): KL(q(z_j | x, y) || p(z_j | y)) averaged over the images, in nats; its sum
    is the KL term of the ELBO. ``activity`` (z_dim,): the variance over the images of the encoder's
    mean, measured in units of the prior's standard deviation (for a fixed N(0, I) prior, the mean
    itself). A dimension is **active** when its activity exceeds ``threshold`` (Burda et al. 2016):
    the encoder's answer in that dimension depends on the image. ``active_units`` counts them."""
    mu, logvar = model.encode(images, condition)
    prior_mu, prior_logvar = model.prior_params(condition, len(images))
    q = torch.distributions.Normal(mu, (0.5 * logvar).exp())
    p = torch.distributions.Normal(prior_mu.expand_as(mu), (0.5 * prior_logvar).exp().expand_as(mu))
    kl = torch.distributions.kl_divergence(q, p).mean(0).cpu()
    activity = ((mu - prior_mu) / (0.5 * prior_logvar).exp()).var(0).cpu()
    return {"kl_per_dim": kl, "kl": kl.sum().item(), "activity": activity,
            "active_units": int((activity > threshold).sum()), "z_dim": int(mu.shape[1])}
