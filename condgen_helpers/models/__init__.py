"""The models of the course, and the registry that names them.

A name (as typed after ``condgen train``) maps to a recipe class; the classes are imported on
first use, so ``condgen --help`` stays fast. Every model file imports torch and the building
blocks of ``condgen_helpers.nn`` only (``tests/test_layers.py`` holds it to that).
"""

from __future__ import annotations

import importlib

from ..errors import CondgenError
from .base import Config, Recipe

# name -> "module:Class"
MODELS: dict[str, str] = {
    "gan": "condgen_helpers.models.gan:GAN",
    "cgan": "condgen_helpers.models.gan:ConditionalGAN",
    "cgan-proj": "condgen_helpers.models.gan:ProjectionCGAN",
    "acgan": "condgen_helpers.models.gan:ACGAN",
    "tacgan": "condgen_helpers.models.gan:TACGAN",
    "vae": "condgen_helpers.models.vae:VAE",
    "cvae": "condgen_helpers.models.vae:CVAE",
    "cvae-attr": "condgen_helpers.models.attribute:AttributeCVAE",
    "cvae-complete": "condgen_helpers.models.completion:CompletionCVAE",
    "regressor-complete": "condgen_helpers.models.completion:CompletionRegressor",
    "cfm": "condgen_helpers.models.flow:ConditionalFlowMatching",
}


def model_class(name: str) -> type[Recipe]:
    """The recipe class registered under ``name``, or a one-line error naming the closest one."""
    if name not in MODELS:
        from .base import _closest

        raise CondgenError(f"unknown model {name!r}: {_closest(name, MODELS)}(models: {', '.join(MODELS)})")
    module, cls = MODELS[name].split(":")
    return getattr(importlib.import_module(module), cls)


def model_module(name: str) -> str:
    """The module (inside the package, e.g. ``models.gan``) that defines model ``name``."""
    model_class(name)
    return MODELS[name].split(":")[0].split(".", 1)[1]


def build_model(name: str, image_shape, n_classes: int = 10, device="cpu", **config) -> Recipe:
    return model_class(name)(image_shape, n_classes, device, **config)


__all__ = ["MODELS", "Config", "Recipe", "build_model", "model_class", "model_module"]
