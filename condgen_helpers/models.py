"""The registry of trainable models: a name (as typed after ``condgen train``) -> a recipe class.

A *recipe* bundles the networks, their optimisers, one training step and a sampler, so the training
loop, the CLI, the checkpoints and the leaderboard treat every model of the course the same way.
"""

from __future__ import annotations

import importlib

import torch
from torch import nn

from .errors import CondgenError

# name -> "module:Class", imported on first use so `condgen --help` stays fast
MODELS: dict[str, str] = {
    "gan": "condgen_helpers.gan:GAN",
    "cgan": "condgen_helpers.gan:ConditionalGAN",
    "cgan-proj": "condgen_helpers.gan:ProjectionCGAN",
    "acgan": "condgen_helpers.gan:ACGAN",
    "vae": "condgen_helpers.vae:VAE",
    "cvae": "condgen_helpers.vae:CVAE",
    "cvae-attr": "condgen_helpers.beyond:AttributeCVAE",
    "cvae-complete": "condgen_helpers.beyond:CompletionCVAE",
    "regressor-complete": "condgen_helpers.beyond:CompletionRegressor",
    "cfm": "condgen_helpers.flow:ConditionalFlowMatching",
}


class Recipe:
    """Base class of every model of the course.

    Subclasses set ``name``, ``conditional`` (sampling needs labels), ``defaults`` (hyper-parameters
    with course values; a config key not listed there is an error) and ``default_epochs``, and
    implement ``build``, ``train_step`` and ``sample``.
    """

    name = "base"
    conditional = False
    guided = False  # sample() takes a guidance scale (the flow-matching model of notebook 07)
    defaults: dict = {}
    default_epochs = 100
    # epochs for the larger datasets, where the digits' default would take hours on a CPU
    dataset_epochs: dict[str, int] = {}
    batch_size = 64

    def __init__(self, image_shape: tuple[int, int, int], n_classes: int = 10,
                 device: str | torch.device = "cpu", **config):
        unknown = sorted(set(config) - set(self.defaults))
        if unknown:
            raise CondgenError(f"unknown setting(s) {unknown} for model {self.name!r}: "
                               f"known ones are {sorted(self.defaults)}")
        self.config = {**self.defaults, **config}
        self.image_shape = tuple(int(s) for s in image_shape)
        self.n_classes = int(n_classes)
        self.device = torch.device(device)
        self.steps = 0
        self.build()
        for module in self.modules().values():
            module.to(self.device)

    @classmethod
    def epochs_for(cls, dataset: str) -> int:
        """The course default number of epochs on ``dataset``."""
        return cls.dataset_epochs.get(dataset, cls.default_epochs)

    # -- to implement ------------------------------------------------------------------------------
    def build(self) -> None:
        raise NotImplementedError

    def modules(self) -> dict[str, nn.Module]:
        raise NotImplementedError

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {}

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
        from .conditioning import check_labels

        if labels is None:
            return torch.randint(self.n_classes, (n,), generator=generator).to(self.device)
        labels = check_labels(labels, self.n_classes)
        if labels.ndim == 0:
            labels = labels.expand(n)
        if len(labels) != n:
            raise CondgenError(f"got {len(labels)} labels for {n} samples: give one label per sample")
        return labels.to(self.device)


def model_class(name: str) -> type[Recipe]:
    """The recipe class registered under ``name``, or a one-line error listing the known names."""
    if name not in MODELS:
        raise CondgenError(f"unknown model {name!r}: use one of {', '.join(MODELS)}")
    module, cls = MODELS[name].split(":")
    return getattr(importlib.import_module(module), cls)


def build_model(name: str, image_shape, n_classes: int = 10, device="cpu", **config) -> Recipe:
    return model_class(name)(image_shape, n_classes, device, **config)
