"""The training loop shared by every model: mini-batches, a progress bar, a loss history, a NaN guard.

``tqdm.auto`` shows a widget bar inside Jupyter and a text bar in a terminal.
"""

from __future__ import annotations

import math
import time
from collections import defaultdict
from collections.abc import Callable

import torch
from tqdm.auto import tqdm

from ..data import ImageData, batches
from ..errors import CondgenError
from ..models import Recipe


class TrainingDiverged(CondgenError):
    """A loss became NaN or infinite; the message names the step and what to try."""


class History(dict):
    """Loss name -> list of per-step values, with ``epoch_means`` for smoother curves."""

    def __init__(self):
        super().__init__()
        self.steps_per_epoch = 0
        self.seconds = 0.0

    def append(self, values: dict[str, float]) -> None:
        for k, v in values.items():
            self.setdefault(k, []).append(float(v))

    def epoch_means(self, key: str) -> list[float]:
        values, k = self[key], max(1, self.steps_per_epoch)
        return [sum(values[i:i + k]) / len(values[i:i + k]) for i in range(0, len(values), k)]


def fit(model: Recipe, data: ImageData | tuple[torch.Tensor, torch.Tensor], epochs: int | None = None,
        batch_size: int | None = None, seed: int = 0, progress: bool = True,
        callback: Callable[[int, Recipe], None] | None = None, desc: str | None = None) -> History:
    """Train ``model`` for ``epochs`` passes over ``data`` (an ImageData, or (inputs, labels)).

    ``callback(epoch, model)`` runs after each epoch (e.g. to keep snapshots of samples). The model's
    ``prepare(inputs, labels)`` sees the whole training set once, before the first step.
    Raises :class:`TrainingDiverged` as soon as a loss stops being finite.
    """
    epochs = model.default_epochs if epochs is None else epochs
    batch_size = batch_size or model.batch_size
    if not isinstance(epochs, int) or epochs < 0:
        raise CondgenError(f"epochs must be a non-negative integer, got {epochs!r}")
    x, y = (data.images, data.labels) if isinstance(data, ImageData) else data
    model.prepare(x, y)  # set-up that needs the whole training set, e.g. attribute statistics
    if len(x) < batch_size:
        batch_size = len(x)
    gen = torch.Generator().manual_seed(seed)
    history = History()
    history.steps_per_epoch = len(x) // batch_size
    model.train()
    start = time.perf_counter()
    bar = tqdm(range(epochs), desc=desc or f"training {model.name}", disable=not progress,
               unit="epoch", leave=True)
    for epoch in bar:
        sums: dict[str, float] = defaultdict(float)
        for xb, yb in batches(x, y, batch_size=batch_size, generator=gen):
            values = model.train_step(xb, yb)
            model.steps += 1
            bad = [k for k, v in values.items() if not math.isfinite(v)]
            if bad:
                raise TrainingDiverged(
                    f"training diverged at step {model.steps} (epoch {epoch + 1}): {bad[0]} is "
                    f"{values[bad[0]]}; lower the learning rate or restart from the last checkpoint")
            history.append(values)
            for k, v in values.items():
                sums[k] += v
        if history.steps_per_epoch:
            bar.set_postfix({k: f"{v / history.steps_per_epoch:.3f}" for k, v in list(sums.items())[:3]},
                            refresh=False)
        if callback is not None:
            model.eval()
            callback(epoch + 1, model)
            model.train()
    bar.close()
    model.eval()
    history.seconds = time.perf_counter() - start
    return history
