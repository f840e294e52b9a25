"""The one path from a model's name to a trained model and its figures.

``condgen train``, ``condgen evaluate``, the benchmark and the leaderboard all call it:
:func:`train_and_evaluate` loads the data once, trains, then calls :func:`evaluate`, which is also
all that ``condgen evaluate RUN`` runs, so both print the same figures. What a model family adds
to the common figures is declared on its class (``Recipe.figures``) and looked up in ``FIGURES``.
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable

from ..data import Splits, as_splits
from ..errors import CondgenError
from ..evaluation import evaluate_model, real_floor
from ..models import Recipe, model_class
from ..reproducibility import pick_device, seed_everything
from ..training import History, fit

# figure set -> "module:function(model, splits, seed) -> dict"; imported when a model declares it
FIGURES: dict[str, str] = {
    "likelihood": "condgen_helpers.evaluation.likelihood:likelihood_figures",
    "attribute_control": "condgen_helpers.evaluation.attribute:attribute_figures",
    "completion": "condgen_helpers.experiments.completion:completion_figures",
    "guidance": "condgen_helpers.experiments.pipeline:guidance_figures",
}


def figure_function(name: str) -> Callable[[Recipe, Splits, int], dict]:
    if name not in FIGURES:
        raise CondgenError(f"unknown figure set {name!r}: use one of {', '.join(FIGURES)}")
    module, function = FIGURES[name].split(":")
    return getattr(importlib.import_module(module), function)


def evaluate(model: Recipe, data: str | Splits = "digits", seed: int = 0) -> dict:
    """Every figure of a trained model: its samples scored against the reference split (the
    common figures), the extra figures its family declares, and real data's floor to read them by."""
    splits = as_splits(data)
    out = evaluate_model(model, splits, seed=seed)
    for name in model.figures:
        out.update(figure_function(name)(model, splits, seed))
    out["floor"] = real_floor(splits, conditional=model.conditional)
    return out


def train(name: str, data: str | Splits = "digits", epochs: int | None = None, seed: int = 0,
          device: str = "auto", progress: bool = True, **config) -> tuple[Recipe, History, int]:
    """Model ``name`` built with ``config`` (over the model's defaults for the dataset,
    ``settings_for``) and trained on ``data``'s training split from seed ``seed`` for ``epochs``
    (default: ``epochs_for`` the dataset); returns (model, history, epochs)."""
    splits = as_splits(data)
    cls = model_class(name)
    dev = pick_device(device)
    seed_everything(seed)
    model = cls(splits.train.image_shape, splits.train.n_classes, dev, **{**cls.settings_for(splits.name), **config})
    epochs = cls.epochs_for(splits.name, len(splits.train), model.batch_size) if epochs is None else epochs
    history = fit(model, splits.train, epochs=epochs, seed=seed, progress=progress)
    return model, history, epochs


def train_and_evaluate(name: str, data: str | Splits = "digits", epochs: int | None = None, seed: int = 0,
                       device: str = "auto", progress: bool = True, **config):
    """Train model ``name`` on ``data`` (a Splits object or a dataset's name) and evaluate it;
    return (model, history, metrics)."""
    splits = as_splits(data)
    start = time.perf_counter()
    model, history, epochs = train(name, splits, epochs, seed, device, progress, **config)
    seconds = time.perf_counter() - start
    metrics = {"model": name, "dataset": splits.name, "epochs": epochs, "seed": seed,
               "device": str(model.device), "train_seconds": round(seconds, 2), "steps": model.steps,
               "final_losses": {k: v[-1] for k, v in history.items()},
               **evaluate(model, splits, seed)}
    return model, history, metrics


def guidance_figures(model: Recipe, data: str | Splits = "digits", seed: int = 0) -> dict:
    """A guided model at its plain conditional scale (g = 1, the main figures) and at its best g.

    The best g is chosen on data the figures are not scored on: a sweep over ``GUIDANCE_GRID`` with
    the held-out splits' roles swapped (:func:`selection_splits`: the floor split as reference) and
    another noise seed (``seed + 1``), by :func:`pick_guidance` (accuracy at the floor, then nearest
    the floor in precision and recall). The figures at that g are then scored as every model's are.
    ``guidance_curve`` is the sweep scored by the usual protocol with ``seed`` (a description of the
    dial, not used to choose)."""
    from ..evaluation import guidance_sweep, pick_guidance, selection_splits

    splits = as_splits(data)
    held = selection_splits(splits)
    sweep = guidance_sweep(model, held, seed=seed + 1)
    best = pick_guidance(sweep, real_floor(held, conditional=model.conditional))
    at_best = evaluate_model(model, splits, seed=seed, guidance=best)
    curve = guidance_sweep(model, splits, seed=seed)
    return {"guidance": 1.0, "guidance_sweep": {f"{g:g}": f for g, f in sweep.items()},
            "guidance_curve": {f"{g:g}": f for g, f in curve.items()},
            "best_guidance": {**at_best, "guidance": best, "chosen_on": "held-out splits swapped, noise seed + 1"}}
