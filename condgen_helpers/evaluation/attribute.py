"""Figures of a model conditioned on attributes (notebook 05): is what was asked what is drawn?"""

from __future__ import annotations

import torch

from ..data import Splits, as_splits
from ..nn.conditioning import check_labels
from .classifier import load_classifier, predict


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
def attribute_control(model, labels: torch.Tensor, data: str | Splits = "digits",
                      attributes: torch.Tensor | None = None,
                      generator: torch.Generator | None = None, decode: str = "mean") -> dict:
    """Ask for attributes, measure them on the samples, and check the digit.

    Attributes default to draws from each class's training distribution. The samples are decoder
    means, their ``"mode"``, or with ``decode="draw"`` the model's pixel draws (what it samples). Returns, per attribute,
    ``<name>_corr`` (within-class correlation of asked and measured standardised values) and
    ``<name>_corr_pooled`` (plain correlation), ``conditional_accuracy`` of the evaluation
    classifier, and the tensors ``asked``, ``measured`` (N, k) and ``images``.
    """
    labels = check_labels(labels, model.n_classes)
    if attributes is None:
        attributes = model.scaler.sample(labels, generator).cpu()
    images = model.sample(len(labels), labels, generator, attributes=attributes, decode=decode)
    measured = model.scaler(images).cpu()
    out = {"n": len(labels)}
    for j, name in enumerate(model.attribute_names):
        out[f"{name}_corr"] = within_class_correlation(attributes[:, j], measured[:, j], labels)
        out[f"{name}_corr_pooled"] = torch.corrcoef(torch.stack([attributes[:, j], measured[:, j]]))[0, 1].item()
    out["conditional_accuracy"] = (predict(load_classifier(data), images) == labels).double().mean().item()
    out.update(asked=attributes, measured=measured, images=images)
    return out


def attribute_figures(model, data: str | Splits = "digits", seed: int = 0) -> dict:
    """Attribute control on the test split's labels (:func:`attribute_control`), as plain numbers.
    The digit's accuracy is left out: ``evaluate_model`` scores it, with the same kind of draws."""
    splits = as_splits(data)
    figures = attribute_control(model, splits.test.labels, splits, generator=torch.Generator().manual_seed(seed))
    return {k: v for k, v in figures.items()
            if not isinstance(v, torch.Tensor) and k not in ("n", "conditional_accuracy")}


def correlation_null(asked: torch.Tensor, measured: torch.Tensor, labels: torch.Tensor, shuffles: int = 2000,
                     generator: torch.Generator | None = None) -> dict:
    """:func:`within_class_correlation` of ``asked`` and ``measured`` against its null: the same figure
    with the asked values dealt at random among the samples *of the same class* (each image paired
    with another image's request), ``shuffles`` times. Returns ``r``, the null's ``null_q99`` and
    ``null_max``, and the permutation ``p`` value ((1 + #null >= r) / (1 + shuffles))."""
    asked, measured, labels = asked.double().cpu(), measured.double().cpu(), labels.cpu()
    r = within_class_correlation(asked, measured, labels)
    null = []
    for _ in range(shuffles):
        dealt = asked.clone()
        for c in labels.unique():
            idx = torch.nonzero(labels == c).flatten()
            dealt[idx] = asked[idx[torch.randperm(len(idx), generator=generator)]]
        null.append(within_class_correlation(dealt, measured, labels))
    null_t = torch.tensor(null)
    return {"r": r, "null_q99": torch.quantile(null_t, 0.99).item(), "null_max": null_t.max().item(),
            "p": (1 + int((null_t >= r).sum())) / (1 + shuffles)}
