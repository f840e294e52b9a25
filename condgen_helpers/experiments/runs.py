"""A run store: a model is trained once and loaded wherever the same training comes back.

Notebooks 02 and 03 both train the course's cGAN at seed 0 on the same split; with the store the
second one loads the first one's weights and loss history instead of spending the same half minute
again. A stored run is found by a key made of everything that decides its weights:

- the model's name, its settings, the image shape and number of classes;
- the epochs, batch size and seed of the training;
- the training images and labels themselves (a hash of their bytes);
- the code that trains it: the model's module and everything it imports from this package, and the
  training loop (parsed, docstrings dropped; see :mod:`condgen_helpers.provenance`), and torch's version.

So a change to any of these trains afresh. The store lives in ``$CONDGEN_RUN_STORE`` (the course
runner and the test run point it at a fresh folder, so each of their runs trains every model at least
once) or else ``~/.cache/condgen/runs``. ``retrain=True`` always trains (and replaces the stored run).
Two kernels asking for the same run at once (two notebooks side by side) take turns: the second
waits for the first and loads its result.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
from contextlib import contextmanager
from pathlib import Path

import torch

from ..data import ImageData, default_root
from ..files import write_text
from ..models import model_class, model_module
from ..reproducibility import seed_everything
from ..training import History, fit, load_checkpoint, save_checkpoint

STORE_ENV = "CONDGEN_RUN_STORE"


def store_dir() -> Path:
    return Path(os.environ.get(STORE_ENV) or default_root() / "runs")


def _data_hash(images: torch.Tensor, labels: torch.Tensor) -> str:
    h = hashlib.sha256()
    for t in (images, labels):
        t = t.detach().cpu().contiguous()
        h.update(str((tuple(t.shape), str(t.dtype))).encode())
        h.update(t.numpy().tobytes())
    return h.hexdigest()[:16]


def run_key(name: str, data, epochs: int, seed: int, batch_size: int, config: dict) -> str:
    """The store key of training model ``name`` on ``data`` (an ImageData or (images, labels))."""
    from .provenance import code_hash, reachable

    images, labels = (data.images, data.labels) if isinstance(data, ImageData) else data
    cls = model_class(name)
    settings = cls.Config.from_dict(config, name).as_dict()
    parts = {"model": name, "settings": json.loads(json.dumps(settings)),
             "shape": list(images.shape[1:]), "n_classes": int(getattr(data, "n_classes", 0) or
                                                               int(labels.max()) + 1),
             "epochs": epochs, "seed": seed, "batch_size": batch_size,
             "data": _data_hash(images, labels),
             "code": {m: code_hash(m) for m in reachable([model_module(name), "training"])},
             "torch": torch.__version__.split("+")[0]}
    return f"{name}-" + hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:16]


@contextmanager
def _locked(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _save_history(history: History, path: Path) -> None:
    write_text(path, json.dumps({"values": dict(history), "steps_per_epoch": history.steps_per_epoch,
                                 "seconds": history.seconds}))


def _load_history(path: Path) -> History:
    raw = json.loads(path.read_text())
    history = History()
    history.update(raw["values"])
    history.steps_per_epoch, history.seconds = raw["steps_per_epoch"], raw["seconds"]
    return history


def trained(name: str, data, epochs: int | None = None, seed: int = 0, device="cpu",
            retrain: bool = False, desc: str | None = None, progress: bool = True, **config):
    """Model ``name`` trained on ``data`` for ``epochs`` at ``seed``: loaded from the run store when
    the same training is stored there, else trained (exactly as ``seed_everything(seed)``, build,
    ``fit`` would) and stored. Returns (model, history, origin) with origin "trained here" or
    "loaded from the run store"; either way it prints one line saying which, and how to retrain.
    Afterwards the global random state is ``seed_everything(seed)``'s, whichever happened."""
    cls = model_class(name)
    images, labels = (data.images, data.labels) if isinstance(data, ImageData) else data
    n_classes = data.n_classes if isinstance(data, ImageData) else int(labels.max()) + 1
    epochs = cls.default_epochs if epochs is None else epochs
    batch_size = min(cls.batch_size, len(images))
    key = run_key(name, data, epochs, seed, batch_size, config)
    folder = store_dir() / key
    with _locked(store_dir() / f"{key}.lock"):
        if not retrain and (folder / "model.pt").exists() and (folder / "history.json").exists():
            model, _ = load_checkpoint(folder, device)
            history = _load_history(folder / "history.json")
            origin = "loaded from the run store"
            print(f"{name}: loaded from the run store ({epochs} epochs, seed {seed}; trained earlier in "
                  f"{history.seconds:.0f} s); set RETRAIN = True at the top to train it here")
        else:
            seed_everything(seed)
            model = cls(tuple(images.shape[1:]), n_classes, device, **config)
            history = fit(model, data, epochs=epochs, seed=seed, progress=progress, desc=desc)
            _save_history(history, folder / "history.json")
            save_checkpoint(model, folder / "model.pt")  # last: a stored run is one with a model.pt
            origin = "trained here"
            print(f"{name}: trained here in {history.seconds:.0f} s ({model.steps} steps) and kept in the "
                  f"run store for the next notebook that asks for the same training")
    seed_everything(seed)
    return model, history, origin
