"""What every model of the course is: a :class:`Recipe` (networks, optimisers, one training step, a
sampler) built from a typed, frozen :class:`Config`.

A recipe's settings are a dataclass, one per model family, checked when the model is built: an
unknown key or a value outside a setting's choices fails at once, with one line naming the closest
valid one. Models import torch and the building blocks of ``condgen_helpers.nn`` only: training,
evaluation and datasets live above them.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import types
import typing
from collections.abc import Iterator
from contextlib import contextmanager
from typing import ClassVar, Literal, get_args, get_origin, get_type_hints

import torch
from torch import nn

from ..errors import CondgenError
from ..nn.conditioning import check_labels
from ..nn.layers import eval_mode


def _closest(word: str, choices) -> str:
    close = difflib.get_close_matches(str(word).strip(), [str(c) for c in choices], n=1, cutoff=0.5)
    return f"did you mean {close[0]!r}? " if close else ""


def _coerce(name: str, value, kind):
    """``value`` as the type ``kind`` of setting ``name`` (JSON lists become tuples), or a one-line error."""
    origin, args = get_origin(kind), get_args(kind)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return _coerce(name, value, inner)
    if origin is Literal:
        if value not in args:
            raise CondgenError(f"setting {name}={value!r} is not a choice: {_closest(value, args)}"
                               f"(choices: {', '.join(map(repr, args))})")
        return value
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise CondgenError(f"setting {name} must be a sequence such as (128, 256), got {value!r}")
        return tuple(_coerce(name, v, args[0]) for v in value)
    if kind is bool:
        if not isinstance(value, bool):
            raise CondgenError(f"setting {name} must be True or False, got {value!r}")
        return value
    if kind is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise CondgenError(f"setting {name} must be a whole number, got {value!r}")
        return value
    if kind is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise CondgenError(f"setting {name} must be a number, got {value!r}")
        return float(value)
    if kind is str:
        if not isinstance(value, str):
            raise CondgenError(f"setting {name} must be a string, got {value!r}")
        return value
    return value


@dataclasses.dataclass(frozen=True)
class Config:
    """A model family's settings, typed and frozen. Subclasses list their fields with course
    defaults and may add range checks in :meth:`validate`; ``RETIRED`` names settings that old
    checkpoints carry and that no longer exist (dropped when such a checkpoint is loaded)."""

    RETIRED: ClassVar[tuple[str, ...]] = ()

    def __post_init__(self) -> None:
        hints = get_type_hints(type(self))
        for f in dataclasses.fields(self):
            object.__setattr__(self, f.name, _coerce(f.name, getattr(self, f.name), hints[f.name]))
        self.validate()

    def validate(self) -> None:
        """Range checks beyond the types (subclasses add theirs)."""

    @classmethod
    def from_dict(cls, values: dict, model: str = "model", legacy: bool = False) -> Config:
        """Settings from keyword values; an unknown key fails with the closest valid one named.
        ``legacy=True`` (loading a checkpoint) drops the ``RETIRED`` keys first."""
        names = [f.name for f in dataclasses.fields(cls)]
        if legacy:
            values = {k: v for k, v in values.items() if k not in cls.RETIRED}
        for key in values:
            if key not in names:
                raise CondgenError(f"unknown setting {key!r} for model {model!r}: {_closest(key, names)}"
                                   f"(settings: {', '.join(names)})")
        return cls(**values)

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)

    def replace(self, **changes) -> Config:
        """A copy with ``changes`` applied (and checked)."""
        return type(self).from_dict({**self.as_dict(), **changes})


def check_range(name: str, value: float, low: float, high: float, closed_high: bool = False) -> None:
    """One-line error unless low <= value < high (or <= high with ``closed_high``)."""
    ok = low <= value <= high if closed_high else low <= value < high
    if not ok:
        bracket = "]" if closed_high else ")"
        raise CondgenError(f"setting {name} must lie in [{low:g}, {high:g}{bracket}, got {value!r}")


# MNIST's and Fashion-MNIST's training split (the official 60,000 less our 10,000 for validation)
FULL_TRAIN_SIZE = 50_000


class Recipe:
    """Base class of every model of the course.

    Subclasses set ``name``, ``Config`` (the settings dataclass), ``conditional`` (sampling needs
    labels) and ``default_epochs``, and implement ``build``, ``modules``, ``train_step`` and ``sample``.
    What a family adds to the evaluation is declared, not discovered: ``samples_draws`` (``sample``
    takes ``decode="draw"``: pixel draws of a likelihood model, or ``"mode"``: its most probable image) and ``figures`` (the names of the extra
    figure sets the pipeline computes for it, e.g. ``("likelihood",)``).
    """

    name = "base"
    Config: ClassVar[type[Config]] = Config
    conditional = False
    guided = False  # sample() takes a guidance scale (the flow-matching model of notebook 07)
    samples_draws = False
    figures: tuple[str, ...] = ()
    default_epochs = 100
    # the larger datasets' default length in optimiser steps, where the digits' epochs would take
    # hours on a CPU. Epochs follow from the training split's size, so a subset (such as the
    # 3,334 real digits of ``real_digits.py``) trains for as many steps as MNIST's 50,000 images.
    dataset_steps: dict[str, int] = {}
    # settings that differ on the larger datasets (what a setting passed by hand still overrides)
    dataset_settings: dict[str, dict] = {}
    # the batch size on those datasets, where it differs from ``batch_size`` (what epochs are counted in)
    dataset_batch_size: dict[str, int] = {}
    batch_size = 64

    def __init__(self, image_shape: tuple[int, int, int], n_classes: int = 10,
                 device: str | torch.device = "cpu", **config):
        self.config = self.Config.from_dict(config, self.name)
        self.image_shape = tuple(int(s) for s in image_shape)
        self.n_classes = int(n_classes)
        self.device = torch.device(device)
        self.steps = 0
        self.build()
        for module in self.modules().values():
            module.to(self.device)

    @classmethod
    def default_settings(cls) -> dict:
        """The course defaults of this model's settings, as a plain dict."""
        return cls.Config().as_dict()

    @classmethod
    def settings_for(cls, dataset: str) -> dict:
        """The course defaults' changes on ``dataset`` (e.g. less dropout on MNIST's many images)."""
        return dict(cls.dataset_settings.get(dataset, {}))

    @classmethod
    def epochs_for(cls, dataset: str, n_train: int | None = None, batch_size: int | None = None) -> int:
        """The course default number of epochs on ``dataset``: ``default_epochs``, or on a dataset
        with a default in steps, the epochs that make at least that many steps over ``n_train``
        training images (default: the full training split, 50,000 images) in batches of
        ``batch_size`` (default: the model's batch size on that dataset). The last epoch is
        completed, so a run makes at least the default's steps (a few hundred more on 50,000 images)."""
        if dataset not in cls.dataset_steps:
            return cls.default_epochs
        n = FULL_TRAIN_SIZE if n_train is None else n_train
        size = batch_size or cls.dataset_batch_size.get(dataset, cls.batch_size)
        per_epoch = max(1, n // size)
        return max(1, math.ceil(cls.dataset_steps[dataset] / per_epoch))

    # -- to implement ------------------------------------------------------------------------------
    def build(self) -> None:
        raise NotImplementedError

    def modules(self) -> dict[str, nn.Module]:
        raise NotImplementedError

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {}

    def prepare(self, images: torch.Tensor, labels: torch.Tensor) -> None:
        """Set-up that needs the whole training set once, before the first step (none by default)."""

    def train_step(self, x: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
        raise NotImplementedError

    def sample(self, n: int, labels: torch.Tensor | None = None,
               generator: torch.Generator | None = None) -> torch.Tensor:
        raise NotImplementedError

    # -- shared ------------------------------------------------------------------------------------
    def train(self) -> Recipe:
        for m in self.modules().values():
            m.train()
        return self

    def eval(self) -> Recipe:
        for m in self.modules().values():
            m.eval()
        return self

    @contextmanager
    def evaluating(self) -> Iterator[None]:
        """Every network in eval mode for the block, each given back its mode afterwards."""
        with eval_mode(*self.modules().values()):
            yield

    def n_parameters(self) -> int:
        return sum(p.numel() for m in self.modules().values() for p in m.parameters())

    def state_dict(self) -> dict:
        state = {k: m.state_dict() for k, m in self.modules().items()}
        state.update({f"opt_{k}": o.state_dict() for k, o in self.optimizers().items()})
        return state

    def load_state_dict(self, state: dict) -> None:
        for k, m in self.modules().items():
            m.load_state_dict(state[k])
        for k, o in self.optimizers().items():
            if f"opt_{k}" in state:
                o.load_state_dict(state[f"opt_{k}"])

    def noise(self, n: int, dim: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Standard normal noise drawn on the CPU (so a seed gives the same samples on every device)."""
        return torch.randn(n, dim, generator=generator).to(self.device)

    def sample_labels(self, n: int, labels, generator: torch.Generator | None = None) -> torch.Tensor:
        """Check requested labels, or draw ``n`` uniformly if none are given."""
        if labels is None:
            return torch.randint(self.n_classes, (n,), generator=generator).to(self.device)
        labels = check_labels(labels, self.n_classes)
        if labels.ndim == 0:
            labels = labels.expand(n)
        if len(labels) != n:
            raise CondgenError(f"got {len(labels)} labels for {n} samples: give one label per sample")
        return labels.to(self.device)

    def trainable_parameters(self) -> list[nn.Parameter]:
        return [p for m in self.modules().values() for p in m.parameters() if p.requires_grad]
