"""The evaluation classifier: a small CNN trained on the training split only, whose predictions
and 32-d features every figure of the course is built on (notebook 06 teaches how it is used)."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..data import Splits, as_splits, batches, default_root
from ..files import atomic_write

WEIGHTS_DIR = Path(__file__).with_name("weights")
FEATURE_DIM = 32
CLASSIFIER_VERSION = 2  # bump when the architecture or its training data change (cache file names)
# 28x28 images: a budget of optimiser steps rather than epochs, so a small set trains as long as a
# large one (about 100 s on 2 CPU cores; about 8 epochs of MNIST's 50,000 training images)
CLASSIFIER_STEPS_28 = 3000
CLASSIFIER_VERSION_28 = 3  # 3: trained for CLASSIFIER_STEPS_28 steps (2: for 3 epochs)


class EvalClassifier(nn.Module):
    """Two 3x3 convolutions, pooled to 4x4, then a 32-d feature layer and a linear class head.
    For 8x8 digits the convolutions run at full resolution; for larger images (28x28 MNIST) each
    convolution is followed by 2x2 max-pooling, which makes it about 15 times cheaper."""

    def __init__(self, n_classes: int = 10, feature_dim: int = FEATURE_DIM, width: int = 64,
                 image_size: int = 8):
        super().__init__()
        pool = [nn.MaxPool2d(2)] if image_size > 16 else []
        self.body = nn.Sequential(
            nn.Conv2d(1, width, 3, padding=1), nn.ReLU(), *pool,
            nn.Conv2d(width, 2 * width, 3, padding=1), nn.ReLU(), *pool,
            nn.AdaptiveAvgPool2d(4), nn.Flatten(), nn.Dropout(0.3),
            nn.Linear(2 * width * 16, feature_dim), nn.ReLU(),
        )
        self.head = nn.Linear(feature_dim, n_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def _classifier_for(image_size: int, n_classes: int = 10) -> EvalClassifier:
    return EvalClassifier(n_classes, width=64 if image_size <= 16 else 32, image_size=image_size)


def random_affine(x: torch.Tensor, g: torch.Generator, rotate: float = 0.2, scale: float = 0.1,
                  shift: float = 0.2, shear: float = 0.2) -> torch.Tensor:
    """Small random rotations (radians), scalings, shears and shifts (fractions of the half-width):
    the writers of the test digits differ from those of the training digits, and this closes the gap."""
    n = len(x)
    u = lambda *shape: torch.rand(*shape, generator=g) * 2 - 1  # noqa: E731
    angle, s, sh, t = u(n) * rotate, 1 + u(n) * scale, u(n) * shear, u(n, 2) * shift
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0], theta[:, 0, 1] = s * angle.cos(), -s * angle.sin() + sh
    theta[:, 1, 0], theta[:, 1, 1] = s * angle.sin(), s * angle.cos()
    theta[:, :, 2] = t
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, align_corners=False, padding_mode="zeros")


def train_classifier(data: str | Splits = "digits", epochs: int | None = None, seed: int = 0,
                     progress: bool = False) -> tuple[EvalClassifier, float]:
    """Train the evaluation classifier on the *training split only* (the reference and floor splits
    stay unseen); return it and its accuracy on the floor (test) split.

    The shipped digits weights come from ``train_classifier("digits")`` (60 epochs, about 30 s on
    2 CPU cores): ``python -m condgen_helpers.evaluation.classifier`` retrains and saves them. MNIST-sized
    data gets ``CLASSIFIER_STEPS_28`` optimiser steps with the pooled network.
    """
    from tqdm.auto import tqdm

    splits = as_splits(data)
    train, test = splits.train, splits.test
    x, y = train.images, train.labels
    size = train.image_shape[-1]
    lr, batch = 3e-3, 64 if size <= 16 else 128
    if epochs is None:
        epochs = 60 if size <= 16 else -(-CLASSIFIER_STEPS_28 // max(1, len(x) // batch))
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    clf = _classifier_for(size, train.n_classes)
    opt = torch.optim.Adam(clf.parameters(), lr=lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, lr, total_steps=max(1, epochs * (len(x) // batch)))
    for _ in tqdm(range(epochs), desc="evaluation classifier", disable=not progress):
        clf.train()
        for xb, yb in batches(x, y, batch_size=batch, generator=g):
            loss = F.cross_entropy(clf(random_affine(xb, g)), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    clf.eval()
    return clf, accuracy(clf, test.images, test.labels)


@torch.no_grad()
def accuracy(clf: EvalClassifier, images: torch.Tensor, labels: torch.Tensor) -> float:
    return (predict(clf, images) == labels).float().mean().item()


_CACHE: dict[str, EvalClassifier] = {}


def classifier_file(dataset: str) -> str:
    """The weights' file name (shipped for digits, cached for 28x28 datasets), versioned."""
    return f"{dataset}_classifier_v{CLASSIFIER_VERSION if dataset == 'digits' else CLASSIFIER_VERSION_28}.pt"


def load_classifier(data: str | Splits = "digits") -> EvalClassifier:
    """The evaluation classifier for ``dataset``: shipped weights for digits; for MNIST-sized data,
    trained on first use (about 100 s on 2 cores), cached under ``$CONDGEN_DATA/classifiers``
    and reported with its accuracy. One classifier per dataset name: it is trained on the dataset's
    whole training split, whatever subset a model saw."""
    dataset = data if isinstance(data, str) else data.name
    if dataset in _CACHE:
        return _CACHE[dataset]
    name = classifier_file(dataset)
    shipped, cached = WEIGHTS_DIR / name, default_root() / "classifiers" / name
    size = 8 if dataset == "digits" else 28
    clf = _classifier_for(size)
    for path in (shipped, cached):
        if path.exists():
            clf.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
            break
    else:
        clf, acc = train_classifier(dataset, progress=True)
        atomic_write(cached, partial(torch.save, clf.state_dict()))
        print(f"evaluation classifier for {dataset}: {acc:.2%} on its test split, cached at {cached}")
    clf.eval()
    _CACHE[dataset] = clf
    return clf


@torch.no_grad()
def predict(clf: EvalClassifier, images: torch.Tensor) -> torch.Tensor:
    return torch.cat([clf(b.cpu()).argmax(1) for b in images.split(1024)])


@torch.no_grad()
def classifier_features(clf: EvalClassifier, images: torch.Tensor) -> torch.Tensor:
    return torch.cat([clf.features(b.cpu()) for b in images.split(1024)]).double()


if __name__ == "__main__":  # python -m condgen_helpers.evaluation.classifier: remake the shipped weights
    clf, acc = train_classifier("digits", progress=True)
    WEIGHTS_DIR.mkdir(exist_ok=True)
    torch.save(clf.state_dict(), WEIGHTS_DIR / f"digits_classifier_v{CLASSIFIER_VERSION}.pt")
    print(f"digits evaluation classifier: test accuracy {acc:.4f}, saved to {WEIGHTS_DIR}")
