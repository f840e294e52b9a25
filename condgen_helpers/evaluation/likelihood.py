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
