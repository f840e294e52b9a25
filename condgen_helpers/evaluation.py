"""How the course measures samples: an evaluation classifier and the figures built on it.

The classifier is a small CNN trained on the real training and validation images. Its class
predictions give *class coverage* (which digits come out, and how often) and *conditional accuracy*
(share of samples classified as the class they were asked for); its penultimate layer gives the
feature space for the *Frechet distance* (overall and per class, "intra-FD") and for *within-class
diversity*. Every figure is also computed for held-out real images (the test split) in place of
samples: that is the *floor* a perfect generator would reach with the same number of images.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .data import ImageData, batches, default_root, load_dataset, ring_centres
from .errors import CondgenError

WEIGHTS_DIR = Path(__file__).with_name("weights")
FEATURE_DIM = 32


class EvalClassifier(nn.Module):
    """Two 3x3 convolutions, pooled to 4x4, then a 32-d feature layer and a linear class head.
    Works for 8x8 digits and 28x28 MNIST alike (adaptive pooling)."""

    def __init__(self, n_classes: int = 10, feature_dim: int = FEATURE_DIM, width: int = 64):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(1, width, 3, padding=1), nn.ReLU(),
            nn.Conv2d(width, 2 * width, 3, padding=1), nn.ReLU(),
            nn.AdaptiveAvgPool2d(4), nn.Flatten(), nn.Dropout(0.3),
            nn.Linear(2 * width * 16, feature_dim), nn.ReLU(),
        )
        self.head = nn.Linear(feature_dim, n_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


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


def train_classifier(dataset: str = "digits", epochs: int = 60, seed: int = 0,
                     progress: bool = False) -> tuple[EvalClassifier, float]:
    """Train the evaluation classifier on train + validation images; return it and its test accuracy.

    The shipped digits weights come from ``train_classifier("digits")`` (60 epochs, about 30 s on
    2 CPU cores): ``python -m condgen_helpers.evaluation`` retrains and saves them.
    """
    from tqdm.auto import tqdm

    train, val, test = (load_dataset(dataset, s) for s in ("train", "val", "test"))
    x = torch.cat([train.images, val.images])
    y = torch.cat([train.labels, val.labels])
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    clf = EvalClassifier(train.n_classes)
    lr, batch = 3e-3, 64
    opt = torch.optim.Adam(clf.parameters(), lr=lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, lr, total_steps=epochs * (len(x) // batch))
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


def load_classifier(dataset: str = "digits") -> EvalClassifier:
    """The evaluation classifier for ``dataset``: shipped weights for digits; for MNIST-sized data,
    trained on first use and cached under ``$CONDGEN_DATA/classifiers``."""
    if dataset in _CACHE:
        return _CACHE[dataset]
    shipped = WEIGHTS_DIR / f"{dataset}_classifier.pt"
    cached = default_root() / "classifiers" / f"{dataset}_classifier.pt"
    clf = EvalClassifier()
    for path in (shipped, cached):
        if path.exists():
            clf.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
            break
    else:
        clf, _ = train_classifier(dataset, epochs=5 if dataset != "digits" else 60, progress=True)
        cached.parent.mkdir(parents=True, exist_ok=True)
        torch.save(clf.state_dict(), cached)
    clf.eval()
    _CACHE[dataset] = clf
    return clf


@torch.no_grad()
def predict(clf: EvalClassifier, images: torch.Tensor) -> torch.Tensor:
    return torch.cat([clf(b.cpu()).argmax(1) for b in images.split(1024)])


@torch.no_grad()
def features(clf: EvalClassifier, images: torch.Tensor) -> torch.Tensor:
    return torch.cat([clf.features(b.cpu()) for b in images.split(1024)]).double()


# --- the figures ---------------------------------------------------------------------------------

def frechet_distance(feats_a: torch.Tensor, feats_b: torch.Tensor) -> float:
    """Frechet distance between Gaussians fitted to two feature sets (Heusel et al. 2017, the FID formula):
    ||mu_a - mu_b||^2 + Tr(C_a + C_b - 2 (C_a^{1/2} C_b C_a^{1/2})^{1/2}).
    The symmetric form under the square root keeps the computation real and stable."""
    a, b = np.asarray(feats_a, dtype=np.float64), np.asarray(feats_b, dtype=np.float64)
    if len(a) < 2 or len(b) < 2:
        raise CondgenError("the Frechet distance needs at least two images on each side")
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.atleast_2d(np.cov(a, rowvar=False)), np.atleast_2d(np.cov(b, rowvar=False))
    w, v = np.linalg.eigh(cov_a)
    root_a = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    middle = np.linalg.eigvalsh(root_a @ cov_b @ root_a)
    trace_sqrt = np.sqrt(np.clip(middle, 0, None)).sum()
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(cov_a) + np.trace(cov_b) - 2 * trace_sqrt)


def mean_pairwise_distance(feats: torch.Tensor) -> float:
    """Average Euclidean distance between distinct pairs: 0 for identical images."""
    if len(feats) < 2:
        return float("nan")
    d = torch.cdist(feats, feats)
    n = len(feats)
    return (d.sum() / (n * (n - 1))).item()


def class_shares(pred: torch.Tensor, n_classes: int) -> list[float]:
    return (torch.bincount(pred, minlength=n_classes).double() / max(1, len(pred))).tolist()


def _per_class(values: dict[int, float]) -> float:
    finite = [v for v in values.values() if np.isfinite(v)]
    return float(np.mean(finite)) if finite else float("nan")


def image_metrics(images: torch.Tensor, labels: torch.Tensor | None = None, dataset: str = "digits",
                  reference: ImageData | None = None, floor_data: ImageData | None = None) -> dict:
    """Every figure for a set of images (N, 1, H, W) in [0, 1].

    ``labels`` are the classes the images were *asked* for (conditional models, or real labels);
    without them the classifier's predictions group the images by class.
    The reference distribution is the training split; diversity is relative to held-out real images.
    """
    if images.ndim != 4 or images.shape[1] != 1:
        raise CondgenError(f"images must have shape (N, 1, H, W), got {tuple(images.shape)}")
    if images.min() < 0 or images.max() > 1:
        raise CondgenError("images must lie in [0, 1]: apply a sigmoid or rescale before evaluating")
    clf = load_classifier(dataset)
    reference = reference or load_dataset(dataset, "train")
    floor_data = floor_data or load_dataset(dataset, "test")
    n_classes = reference.n_classes
    pred = predict(clf, images)
    groups = labels if labels is not None else pred
    f_gen, f_ref, f_real = (features(clf, x) for x in (images, reference.images, floor_data.images))
    intra = {c: frechet_distance(f_gen[groups == c], f_ref[reference.labels == c])
             for c in range(n_classes) if (groups == c).sum() >= 2}
    div_gen = {c: mean_pairwise_distance(f_gen[groups == c]) for c in range(n_classes)}
    div_real = {c: mean_pairwise_distance(f_real[floor_data.labels == c]) for c in range(n_classes)}
    shares = class_shares(pred, n_classes)
    pr = precision_recall(f_ref, f_gen)
    out = {
        "n": len(images),
        "fd": frechet_distance(f_gen, f_ref),
        "intra_fd": _per_class(intra),
        "diversity": _per_class({c: div_gen[c] / div_real[c] for c in range(n_classes)}),
        "min_class_share": min(shares),
        "classes_covered": int(sum(s >= 0.5 / n_classes for s in shares)),
        "class_shares": shares,
        "precision": pr["precision"],
        "recall": pr["recall"],
        "nn_ratio": memorisation(images, reference.images, floor_data.images)["nn_ratio"],
    }
    if labels is not None:
        out["conditional_accuracy"] = (pred == labels.cpu()).double().mean().item()
    return out


def precision_recall(real_feats: torch.Tensor, gen_feats: torch.Tensor, k: int = 3) -> dict:
    """Improved precision and recall (Kynkaanniemi et al. 2019, section 2).

    Each set's manifold is the union of balls around its points, each ball reaching that point's k-th
    nearest neighbour within the set. *Precision*: share of generated points inside the real manifold
    (are samples realistic?). *Recall*: share of real points inside the generated manifold (is the
    data's variety covered?). A collapsed generator keeps precision and loses recall.
    """
    real, gen = torch.as_tensor(real_feats).double(), torch.as_tensor(gen_feats).double()
    if len(real) <= k or len(gen) <= k:
        raise CondgenError(f"precision/recall with k={k} needs more than {k} points on each side")

    def radii(x):  # distance to the k-th nearest other point (column 0 is the point itself)
        return torch.cdist(x, x).kthvalue(k + 1, dim=1).values

    inside = lambda pts, centres, r: (torch.cdist(pts, centres) <= r[None, :]).any(1)  # noqa: E731
    return {"precision": inside(gen, real, radii(real)).double().mean().item(),
            "recall": inside(real, gen, radii(gen)).double().mean().item()}


def memorisation(images: torch.Tensor, train_images: torch.Tensor, heldout_images: torch.Tensor) -> dict:
    """How close samples sit to their nearest *training* image, in pixels, relative to held-out real
    images: ``nn_ratio`` = median nearest-training distance of the samples / that of held-out images.
    About 1: as novel as new real data; well below 1: the model copies its training set.
    ``copy_share``: share of samples closer to a training image than 99% of held-out images are."""
    train = train_images.flatten(1).double()
    d_gen = torch.cdist(images.flatten(1).double(), train).min(1).values
    d_real = torch.cdist(heldout_images.flatten(1).double(), train).min(1).values
    return {"nn_ratio": (d_gen.median() / d_real.median()).item(),
            "copy_share": (d_gen < torch.quantile(d_real, 0.01)).double().mean().item()}


def real_floor(dataset: str = "digits", conditional: bool = True) -> dict:
    """The figures of held-out real images (test split) scored as if they were samples."""
    test = load_dataset(dataset, "test")
    return image_metrics(test.images, test.labels if conditional else None, dataset, floor_data=test)


def evaluate_model(model, dataset: str = "digits", seed: int = 0) -> dict:
    """Sample as many images as the test split holds (with its labels, for conditional models) and
    score them, so generated and real figures use the same sample size."""
    test = load_dataset(dataset, "test")
    g = torch.Generator().manual_seed(seed)
    labels = test.labels if model.conditional else None
    images = model.sample(len(test), labels=labels, generator=g)
    return image_metrics(images, labels, dataset, floor_data=test)


# --- the 2-D ring --------------------------------------------------------------------------------

def ring_metrics(points: torch.Tensor, n_modes: int = 8, radius: float = 2.0, std: float = 0.05) -> dict:
    """A point is *high quality* if it lies within 3 std of its nearest mode's centre; a mode is
    *covered* if it holds at least a fifth of its fair share (1/n_modes) of all points as
    high-quality points."""
    centres = ring_centres(n_modes, radius)
    d = torch.cdist(points.float(), centres)
    dist, nearest = d.min(1)
    good = dist < 3 * std
    counts = torch.bincount(nearest[good], minlength=n_modes).double()
    shares = counts / max(1, len(points))
    return {"high_quality": good.double().mean().item(),
            "modes_covered": int((shares >= 0.2 / n_modes).sum()),
            "mode_shares": shares.tolist()}


if __name__ == "__main__":
    clf, acc = train_classifier("digits", progress=True)
    WEIGHTS_DIR.mkdir(exist_ok=True)
    torch.save(clf.state_dict(), WEIGHTS_DIR / "digits_classifier.pt")
    print(f"digits evaluation classifier: test accuracy {acc:.4f}, saved to {WEIGHTS_DIR}")
