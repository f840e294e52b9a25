"""Checkpoints: state dicts plus the config needed to rebuild the model, nothing executable.

Loading always uses ``torch.load(..., weights_only=True)``: a file that carries pickled code is
refused, not run.
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import torch

from ..errors import CondgenError
from ..files import atomic_write
from ..models import Recipe, model_class

FORMAT = "condgen-checkpoint/1"


def _plain(value):
    """Config values as JSON-friendly lists/numbers/strings (tuples become lists)."""
    return json.loads(json.dumps(value))


def save_checkpoint(model: Recipe, path: str | Path, dataset: str = "digits", **extra) -> Path:
    """Write ``path`` (a model.pt) holding the model's name, config, data shape and weights."""
    content = {"format": FORMAT, "model": model.name, "config": _plain(model.config.as_dict()),
               "image_shape": list(model.image_shape), "n_classes": model.n_classes,
               "dataset": dataset, "steps": model.steps, "extra": _plain(extra),
               "state": model.state_dict()}
    return atomic_write(path, lambda p: torch.save(content, p))


def load_checkpoint(path: str | Path, device: str | torch.device = "cpu") -> tuple[Recipe, dict]:
    """Rebuild a model from ``path`` (a model.pt or the run folder holding one).

    Returns the model (in eval mode) and the checkpoint's metadata (without the weights).
    """
    path = Path(path)
    run = path if path.is_dir() or path.suffix != ".pt" else path.parent
    if path.is_dir() or path.suffix != ".pt":
        path = path / "model.pt"
    if not path.exists():
        raise CondgenError(f"no checkpoint at {path}: train one first with "
                           f"`condgen train MODEL --out {run}`")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, AttributeError, OSError):
        raise CondgenError(f"{path} is not a condgen checkpoint (unreadable, or it carries code, which "
                           "is never run): use a model.pt written by `condgen train`") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise CondgenError(f"{path} is not a condgen checkpoint (no '{FORMAT}' marker): "
                           "use a model.pt written by `condgen train`")
    cls = model_class(ckpt["model"])
    # settings checked as they are today; ones that old checkpoints carry and no model reads are dropped
    config = cls.Config.from_dict(ckpt["config"], ckpt["model"], legacy=True).as_dict()
    model = cls(ckpt["image_shape"], ckpt["n_classes"], device, **config)
    model.load_state_dict(ckpt["state"])
    model.steps = ckpt.get("steps", 0)
    model.eval()
    meta = {k: v for k, v in ckpt.items() if k != "state"}
    return model, meta
