"""Datasets of the course: 8x8 digits (offline default), MNIST / Fashion-MNIST, and the 2-D ring.

Every image dataset comes back as an :class:`ImageData`: ``images`` of shape (N, 1, H, W), float32
in [0, 1], and ``labels`` of shape (N,), int64 in ``range(n_classes)``.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import torch

from .errors import CondgenError

DATASETS = ("digits", "mnist", "fashion-mnist")
SPLITS = ("train", "val", "test")

# The digits split: class-stratified and shuffled with a fixed seed, 1000 / 350 / 447 images.
# scikit-learn stores the digits writer by writer, so a split by position would put other writers
# in the held-out splits, and held-out real images would then score worse than a perfect generator
# of the training writers. Shuffling puts every writer's digits in every split.
DIGITS_SIZES = {"train": 1000, "val": 350, "test": 447}
DIGITS_SPLIT_SEED = 0
DIGITS_LEVELS = 17  # raw digits pixels are integers 0..16; we divide by 16 so they lie in [0, 1]

FASHION_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                   "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")


@dataclass
class ImageData:
    """Images (N, 1, H, W) float32 in [0, 1] with labels (N,) int64."""

    name: str
    split: str
    images: torch.Tensor
    labels: torch.Tensor
    class_names: tuple[str, ...]
    levels: int | None = None  # number of distinct pixel values, if the data is quantised

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(self.images.shape[1:])

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, n: int | None = None, fraction: float | None = None, seed: int = 0) -> ImageData:
        """A class-stratified random subset of ``n`` images (or a ``fraction`` of them)."""
        if fraction is not None:
            if not 0 < fraction <= 1:
                raise CondgenError(f"fraction must lie in (0, 1], got {fraction}")
            n = max(self.n_classes, round(fraction * len(self)))
        if n is None or not 0 < n <= len(self):
            raise CondgenError(f"subset size must lie in 1..{len(self)}, got {n}")
        g = torch.Generator().manual_seed(seed)
        keep = []
        for c in range(self.n_classes):
            idx = torch.nonzero(self.labels == c).flatten()
            idx = idx[torch.randperm(len(idx), generator=g)]
            keep.append(idx[: max(1, round(n * len(idx) / len(self)))])
        keep = torch.cat(keep).sort().values
        return ImageData(self.name, self.split, self.images[keep], self.labels[keep],
                         self.class_names, self.levels)


@dataclass
class Splits:
    """A dataset's three splits, loaded once and handed down: ``train`` (what models and the
    evaluation classifier fit), ``val`` (the evaluation's reference set), ``test`` (the real-data floor).
    Evaluation scores against the splits it is handed, so a model trained on a subset is checked
    for copying against that subset (:meth:`with_train`)."""

    train: ImageData
    val: ImageData
    test: ImageData

    @property
    def name(self) -> str:
        return self.train.name

    def with_train(self, train: ImageData) -> Splits:
        """The same held-out splits with another training split (e.g. a subset of this one)."""
        if train.image_shape != self.train.image_shape or train.n_classes != self.train.n_classes:
            raise CondgenError(f"the new training split ({train.image_shape}, {train.n_classes} classes) "
                               f"must match the held-out ones ({self.train.image_shape}, "
                               f"{self.train.n_classes} classes)")
        return Splits(train, self.val, self.test)


_SPLITS: dict[str, Splits] = {}


def load_splits(name: str = "digits") -> Splits:
    """All three splits of a course dataset, loaded once per process (see :func:`load_dataset`)."""
    if name not in _SPLITS:
        _SPLITS[name] = Splits(*(load_dataset(name, s) for s in SPLITS))
    return _SPLITS[name]


def as_splits(data: str | Splits) -> Splits:
    """Splits handed over as they are, or loaded by a dataset's name (a convenience for notebooks)."""
    if isinstance(data, Splits):
        return data
    if isinstance(data, str):
        return load_splits(data)
    raise CondgenError(f"expected a dataset name such as 'digits' or a Splits object, got "
                       f"{type(data).__name__}")


def default_root() -> Path:
    """Where downloaded datasets and cached classifiers live (``$CONDGEN_DATA`` or ~/.cache/condgen)."""
    return Path(os.environ.get("CONDGEN_DATA", Path.home() / ".cache" / "condgen"))


def load_dataset(name: str = "digits", split: str = "train", root: str | Path | None = None,
                 download: bool = True) -> ImageData:
    """Load one split of a course dataset.

    ``digits`` ships with scikit-learn (1797 images, 8x8) and needs no network; the split is
    class-stratified and shuffled with a fixed seed (:func:`digits_split_indices`): 1000 images
    train, 350 validation (the evaluation's reference set), 447 test (the real-data floor).
    ``mnist`` and ``fashion-mnist`` (28x28) come through torchvision: the last 10000 (a sixth) of
    the official training set is our validation split, the official test set our test split.
    """
    if name not in DATASETS:
        raise CondgenError(f"unknown dataset {name!r}: use one of {', '.join(DATASETS)}")
    if split not in SPLITS:
        raise CondgenError(f"unknown split {split!r}: use one of {', '.join(SPLITS)}")
    if name == "digits":
        return _digits(split)
    return _torchvision(name, split, Path(root) if root is not None else default_root(), download)


def digits_split_indices(labels) -> dict[str, torch.Tensor]:
    """Indices of each split into scikit-learn's 1797 digits: every class is shuffled with
    ``DIGITS_SPLIT_SEED`` and dealt to train / val / test in proportion to ``DIGITS_SIZES``."""
    from sklearn.model_selection import train_test_split

    idx = list(range(len(labels)))
    train, rest = train_test_split(idx, train_size=DIGITS_SIZES["train"], stratify=labels,
                                   random_state=DIGITS_SPLIT_SEED)
    val, test = train_test_split(rest, train_size=DIGITS_SIZES["val"],
                                 stratify=[labels[i] for i in rest], random_state=DIGITS_SPLIT_SEED)
    return {k: torch.tensor(sorted(v)) for k, v in (("train", train), ("val", val), ("test", test))}


def _digits(split: str) -> ImageData:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    sl = digits_split_indices(bunch.target.tolist())[split].numpy()
    images = torch.tensor(bunch.images[sl], dtype=torch.float32).unsqueeze(1) / (DIGITS_LEVELS - 1)
    labels = torch.tensor(bunch.target[sl], dtype=torch.int64)
    return ImageData("digits", split, images, labels, tuple(str(d) for d in range(10)), DIGITS_LEVELS)


def _torchvision(name: str, split: str, root: Path, download: bool) -> ImageData:
    from torchvision import datasets

    cls = datasets.MNIST if name == "mnist" else datasets.FashionMNIST
    try:
        ds = cls(str(root), train=split != "test", download=download)
    except Exception as exc:  # torchvision raises URLError, RuntimeError or OSError when offline
        raise CondgenError(
            f"could not load {name} from {root} ({type(exc).__name__}): connect to the internet once "
            f"so torchvision can download it, or use the offline dataset with --dataset digits"
        ) from None
    images = ds.data.to(torch.float32).unsqueeze(1) / 255.0
    labels = ds.targets.to(torch.int64)
    if split != "test":
        n_val = len(labels) // 6
        sl = slice(0, len(labels) - n_val) if split == "train" else slice(len(labels) - n_val, None)
        images, labels = images[sl], labels[sl]
    names = tuple(str(d) for d in range(10)) if name == "mnist" else FASHION_CLASSES
    return ImageData(name, split, images, labels, names, 256)


def batches(*tensors: torch.Tensor, batch_size: int, generator: torch.Generator | None = None,
            drop_last: bool = True):
    """Yield shuffled mini-batches of equally long tensors (faster than a DataLoader for tiny data)."""
    n = len(tensors[0])
    order = torch.randperm(n, generator=generator)
    stop = n - n % batch_size if drop_last and n >= batch_size else n
    for start in range(0, stop, batch_size):
        idx = order[start:start + batch_size]
        yield tuple(t[idx] for t in tensors)


# --- the 2-D ring: a mixture of Gaussians whose modes are easy to count ---------------------------

RING_MODES, RING_RADIUS, RING_STD = 8, 2.0, 0.05


def ring_centres(n_modes: int = RING_MODES, radius: float = RING_RADIUS) -> torch.Tensor:
    """Centres of the ring's components, shape (n_modes, 2), the first on the positive x-axis."""
    angles = torch.arange(n_modes, dtype=torch.float32) * (2 * math.pi / n_modes)
    return radius * torch.stack([angles.cos(), angles.sin()], dim=1)


def ring(n: int, n_modes: int = RING_MODES, radius: float = RING_RADIUS, std: float = RING_STD,
         seed: int | None = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` points (n, 2) from an equal mixture of Gaussians on a circle, with the component index
    (n,) int64 as label."""
    if n <= 0:
        raise CondgenError(f"number of ring points must be positive, got {n}")
    g = torch.Generator().manual_seed(seed) if seed is not None else None
    labels = torch.randint(n_modes, (n,), generator=g)
    points = ring_centres(n_modes, radius)[labels] + std * torch.randn(n, 2, generator=g)
    return points, labels


def quantise(images: torch.Tensor, levels: int) -> torch.Tensor:
    """Integer pixel levels 0..levels-1 of images in [0, 1] (the categorical decoder's targets)."""
    return (images.clamp(0, 1) * (levels - 1)).round().long()
