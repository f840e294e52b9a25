"""Experiments of notebook 05's completion section: early stopping on held-out NLL, and the
comparison of the completion cVAE with its deterministic baseline (which trains a second model)."""

from __future__ import annotations

import copy
import math

import torch

from ..data import Splits, as_splits
from ..errors import CondgenError
from ..models.completion import CompletionCVAE, CompletionRegressor
from ..training import fit


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


def completion_benchmark(model: CompletionCVAE, data: str | Splits = "digits", seed: int = 0,
                         baseline: CompletionRegressor | None = None, progress: bool = False) -> dict:
    """Test-split NLL of the bottom half given the top (nats per image) for the cVAE and for the
    deterministic baseline. Without a ``baseline``, one is trained on the training split for its
    default epochs and calibrated on the validation split."""
    splits = as_splits(data)
    train, val, test = splits.train, splits.val, splits.test
    if baseline is None:
        torch.manual_seed(seed)
        baseline = CompletionRegressor(model.image_shape, model.n_classes, model.device,
                                       rows=model.config.rows)
        fit(baseline, train, seed=seed, progress=progress)
        baseline.calibrate(val.images)
    g = torch.Generator().manual_seed(seed)
    cvae_nll = model.nll(test.images, generator=g).mean().item()
    base_nll = baseline.nll(test.images).mean().item()
    return {"test_nll_bottom_nats": round(cvae_nll, 3), "baseline_nll_bottom_nats": round(base_nll, 3),
            "nll_gain_nats": round(base_nll - cvae_nll, 3),
            "baseline_temperature": round(baseline.calibration.temperature.item(), 3),
            "iw_samples": model.config.iw_samples}


def completion_figures(model: CompletionCVAE, data: str | Splits = "digits", seed: int = 0) -> dict:
    """The pipeline's figures of a completion cVAE: :func:`completion_benchmark` with a baseline
    trained here on the same training split."""
    return completion_benchmark(model, data, seed)
