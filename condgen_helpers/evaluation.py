"""How the course measures samples: an evaluation classifier and the figures built on it.

The protocol (notebook 06 teaches it):

- **Three real sets, one role each.** Models and the evaluation classifier are fitted to the
  *train* split. The *reference* split (``val``) is what samples are compared with. The *floor*
  split (``test``) is scored exactly as samples are: the same n, the same reference. Neither
  held-out split was seen by a model or the classifier, and (the digits split being shuffled) both
  come from the training data's writers. So the floor is what a perfect, non-copying generator gets.
- **The floor has an interval.** :func:`real_floor` re-deals the two held-out splits into a
  reference and a floor of the same sizes many times over (class-stratified) and reports the
  2.5-97.5 % range of each figure. A model figure inside it reads "at the floor".
- **Per-class distances without small-sample bias.** The Frechet distance (FD) of about 45 images
  per class in 32 dimensions is biased upwards, and less so for a sample of smaller spread, so a
  generator that varies too little can beat real data on it. KID (Binkowski et al. 2018), the
  unbiased MMD^2 with the kernel (a.b / d + 1)^3, has expectation 0 for two samples of one
  distribution at any n; ``intra_kid`` is its mean over classes. FD stays, labelled with its n.
- **Copying per sample.** A sample's distance to its nearest training image is divided by its
  distance to the nearest reference image. A copy has ratio 0; a blurred or average image is near
  both sets alike, so blur does not read as copying. ``copy_share`` is the share of samples whose
  ratio is below the 5 % quantile of the floor images' ratios (0.05 for real data).
- **Scale.** Distances are computed in chunks; precision/recall use at most ``PR_MAX`` points per
  side (a fixed random subsample), so MNIST-sized sets fit in a few GB.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .data import batches, default_root, load_dataset, ring_centres
from .errors import CondgenError

WEIGHTS_DIR = Path(__file__).with_name("weights")
FEATURE_DIM = 32
REFERENCE_SPLIT, FLOOR_SPLIT = "val", "test"
PR_MAX = 5000          # precision/recall: at most this many points per side (random subsample)
COPY_QUANTILE = 0.05   # copy_share: samples nearer to train than 95 % of real held-out images are
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


def train_classifier(dataset: str = "digits", epochs: int | None = None, seed: int = 0,
                     progress: bool = False) -> tuple[EvalClassifier, float]:
    """Train the evaluation classifier on the *training split only* (the reference and floor splits
    stay unseen); return it and its accuracy on the floor split.

    The shipped digits weights come from ``train_classifier("digits")`` (60 epochs, about 30 s on
    2 CPU cores): ``python -m condgen_helpers.evaluation`` retrains and saves them. MNIST-sized
    data gets ``CLASSIFIER_STEPS_28`` optimiser steps with the pooled network.
    """
    from tqdm.auto import tqdm

    train, test = load_dataset(dataset, "train"), load_dataset(dataset, FLOOR_SPLIT)
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


def load_classifier(dataset: str = "digits") -> EvalClassifier:
    """The evaluation classifier for ``dataset``: shipped weights for digits; for MNIST-sized data,
    trained on first use (about 100 s on 2 cores), cached under ``$CONDGEN_DATA/classifiers``
    and reported with its accuracy."""
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
        cached.parent.mkdir(parents=True, exist_ok=True)
        tmp = cached.with_suffix(".tmp")
        torch.save(clf.state_dict(), tmp)
        tmp.replace(cached)
        print(f"evaluation classifier for {dataset}: {acc:.2%} on its {FLOOR_SPLIT} split, cached at {cached}")
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

def _check_feats(a, b, what: str) -> tuple[torch.Tensor, torch.Tensor]:
    a, b = torch.as_tensor(a).double(), torch.as_tensor(b).double()
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise CondgenError(f"{what} needs two feature sets of shape (N, D) with the same D, "
                           f"got {tuple(a.shape)} and {tuple(b.shape)}")
    if len(a) < 2 or len(b) < 2:
        raise CondgenError(f"{what} needs at least two images on each side, got {len(a)} and {len(b)}: "
                           "sample more images (per class, for a per-class figure)")
    if not (torch.isfinite(a).all() and torch.isfinite(b).all()):
        raise CondgenError(f"{what} got features that are NaN or infinite: check the images for NaN")
    return a, b


def frechet_distance(feats_a: torch.Tensor, feats_b: torch.Tensor) -> float:
    """Frechet distance between Gaussians fitted to two feature sets (Heusel et al. 2017, the FID formula):
    ||mu_a - mu_b||^2 + Tr(C_a + C_b - 2 (C_a^{1/2} C_b C_a^{1/2})^{1/2}).
    The symmetric form under the square root keeps the computation real and stable.
    It is biased upwards at small n (two samples of one distribution score above 0), and the bias
    depends on n and on the spread of the samples: compare FDs only at the same n."""
    a, b = (x.numpy() for x in _check_feats(feats_a, feats_b, "the Frechet distance"))
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.atleast_2d(np.cov(a, rowvar=False)), np.atleast_2d(np.cov(b, rowvar=False))
    w, v = np.linalg.eigh(cov_a)
    root_a = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    middle = np.linalg.eigvalsh(root_a @ cov_b @ root_a)
    trace_sqrt = np.sqrt(np.clip(middle, 0, None)).sum()
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(cov_a) + np.trace(cov_b) - 2 * trace_sqrt)


def _kernel_sum(x: torch.Tensor, y: torch.Tensor, chunk: int = 2048) -> torch.Tensor:
    """Sum of the cubic polynomial kernel k(a, b) = (a.b / d + 1)^3 over all pairs, in chunks."""
    d = x.shape[1]
    return sum(((xc @ y.T) / d + 1).pow(3).sum() for xc in x.split(chunk))


def kid(feats_a: torch.Tensor, feats_b: torch.Tensor, scale: float = 1.0) -> float:
    """Kernel Inception Distance (Binkowski et al. 2018, eq. 2): the unbiased estimate of MMD^2
    with the kernel k(a, b) = (a.b / d + 1)^3,

        1/(m(m-1)) sum_{i!=j} k(a_i, a_j) + 1/(n(n-1)) sum_{i!=j} k(b_i, b_j) - 2/(mn) sum k(a_i, b_j).

    Its expectation is 0 when both sets come from one distribution, at any m and n (it can come
    out slightly negative), so per-class figures from a few dozen images are not biased.
    ``scale`` divides both feature sets first; the evaluation uses the reference features' RMS
    value, so that a.b / d is of order 1 as it is for the Inception features KID was made for."""
    a, b = _check_feats(feats_a, feats_b, "KID")
    a, b = a / scale, b / scale
    m, n = len(a), len(b)
    d = a.shape[1]
    diag_a, diag_b = ((a * a).sum(1) / d + 1).pow(3).sum(), ((b * b).sum(1) / d + 1).pow(3).sum()
    within_a = (_kernel_sum(a, a) - diag_a) / (m * (m - 1))
    within_b = (_kernel_sum(b, b) - diag_b) / (n * (n - 1))
    return float(within_a + within_b - 2 * _kernel_sum(a, b) / (m * n))


def mean_pairwise_distance(feats: torch.Tensor) -> float:
    """Average Euclidean distance between distinct pairs: 0 for identical images."""
    if len(feats) < 2:
        return float("nan")
    n = len(feats)
    total = sum(torch.cdist(fc, feats).sum() for fc in feats.split(2048))
    return (total / (n * (n - 1))).item()


def nearest_distance(x: torch.Tensor, ref: torch.Tensor, chunk: int = 512) -> torch.Tensor:
    """For each row of ``x`` (N, ...), the Euclidean distance to its nearest row of ``ref`` (M, ...),
    computed in chunks of ``chunk`` rows so memory stays at chunk x M floats: (N,) float64."""
    ref = ref.flatten(1).float()
    ref_sq = (ref * ref).sum(1)
    out = []
    for xc in x.flatten(1).float().split(chunk):
        sq = (xc * xc).sum(1, keepdim=True) + ref_sq[None, :] - 2 * xc @ ref.T
        out.append(sq.min(1).values.clamp_min(0).double().sqrt())
    return torch.cat(out)


def class_shares(pred: torch.Tensor, n_classes: int) -> list[float]:
    return (torch.bincount(pred, minlength=n_classes).double() / max(1, len(pred))).tolist()


def _per_class(values: dict[int, float]) -> float:
    finite = [v for v in values.values() if np.isfinite(v)]
    return float(np.mean(finite)) if finite else float("nan")


def precision_recall(real_feats: torch.Tensor, gen_feats: torch.Tensor, k: int = 3,
                     max_n: int = PR_MAX, seed: int = 0) -> dict:
    """Improved precision and recall (Kynkaanniemi et al. 2019, section 2).

    Each set's manifold is the union of balls around its points, each ball reaching that point's k-th
    nearest neighbour within the set. *Precision*: share of generated points inside the real manifold
    (are samples realistic?). *Recall*: share of real points inside the generated manifold (is the
    data's variety covered?). A collapsed generator keeps precision and loses recall.
    A side with more than ``max_n`` points is replaced by a fixed random subsample of ``max_n``
    (memory grows with the square of the points); distances are computed in chunks.
    """
    real, gen = _check_feats(real_feats, gen_feats, "precision/recall")
    if len(real) <= k or len(gen) <= k:
        raise CondgenError(f"precision/recall with k={k} needs more than {k} points on each side")
    g = torch.Generator().manual_seed(seed)
    real, gen = (x[torch.randperm(len(x), generator=g)[:max_n]] if len(x) > max_n else x
                 for x in (real, gen))

    def radii(x):  # distance to the k-th nearest other point (the point itself is at distance 0)
        return torch.cat([torch.cdist(xc, x).kthvalue(k + 1, dim=1).values for xc in x.split(1024)])

    def inside(pts, centres, r):
        return torch.cat([(torch.cdist(pc, centres) <= r[None, :]).any(1) for pc in pts.split(1024)])

    return {"precision": inside(gen, real, radii(real)).double().mean().item(),
            "recall": inside(real, gen, radii(gen)).double().mean().item()}


def copy_ratios(images: torch.Tensor, train_images: torch.Tensor,
                reference_images: torch.Tensor) -> torch.Tensor:
    """Per image (N,): distance to the nearest training image / distance to the nearest reference
    (held-out) image, in pixels. A copy of a training image scores 0; a new image of the data's
    distribution scores like held-out real images do; a blurred or average image is close to both
    sets alike, so its ratio does not fall the way a copy's does."""
    return nearest_distance(images, train_images) / nearest_distance(images, reference_images).clamp_min(1e-12)


def memorisation(images: torch.Tensor, train_images: torch.Tensor, reference_images: torch.Tensor,
                 floor_ratios: torch.Tensor) -> dict:
    """Copying, per sample (after Meehan et al. 2020's data-copying test): the samples' copy ratios
    (:func:`copy_ratios`) against those of real held-out images (``floor_ratios``).
    ``nn_ratio``: median ratio of the samples / that of the real images (1: as novel as real data;
    well below 1: nearer the training set than new real data is). ``copy_share``: share of samples
    whose ratio is below the 5 % quantile of the real images' ratios (0.05 for real data)."""
    r = copy_ratios(images, train_images, reference_images)
    floor_ratios = torch.as_tensor(floor_ratios).double()
    threshold = torch.quantile(floor_ratios, COPY_QUANTILE)
    return {"nn_ratio": (r.median() / floor_ratios.median()).item(),
            "copy_share": (r < threshold).double().mean().item(), "ratios": r}


class EvaluationSets:
    """What every evaluation on one dataset shares, computed once per process: the training,
    reference and floor splits, the classifier's features of the real sets, the reference's
    within-class spread, and the floor images' copy ratios."""

    def __init__(self, dataset: str = "digits"):
        self.dataset = dataset
        self.clf = load_classifier(dataset)
        self.train = load_dataset(dataset, "train")
        self.reference = load_dataset(dataset, REFERENCE_SPLIT)
        self.floor = load_dataset(dataset, FLOOR_SPLIT)
        self.n_classes = self.train.n_classes
        self.f_ref = features(self.clf, self.reference.images)
        self.f_floor = features(self.clf, self.floor.images)
        self.pred_floor = predict(self.clf, self.floor.images)
        self.div_ref = _class_spread(self.f_ref, self.reference.labels, self.n_classes)
        self.kid_scale = self.f_ref.pow(2).mean().sqrt().item()  # RMS feature value of the reference
        self.floor_ratios = copy_ratios(self.floor.images, self.train.images, self.reference.images)


_SETS: dict[str, EvaluationSets] = {}


def evaluation_sets(dataset: str = "digits") -> EvaluationSets:
    if dataset not in _SETS:
        _SETS[dataset] = EvaluationSets(dataset)
    return _SETS[dataset]


def _class_spread(feats: torch.Tensor, labels: torch.Tensor, n_classes: int) -> dict[int, float]:
    return {c: mean_pairwise_distance(feats[labels == c]) for c in range(n_classes)}


def _score(f_gen, pred, groups, conditional_labels, ratios, f_ref, ref_labels, div_ref,
           floor_ratios, n_classes: int, kid_scale: float) -> dict:
    """Every figure from features, predictions and copy ratios (shared by samples and the floor)."""
    intra_fd, intra_kid, div = {}, {}, {}
    for c in range(n_classes):
        gc, rc = f_gen[groups == c], f_ref[ref_labels == c]
        if len(gc) >= 2 and len(rc) >= 2:
            intra_fd[c] = frechet_distance(gc, rc)
            intra_kid[c] = kid(gc, rc, kid_scale)
            div[c] = mean_pairwise_distance(gc) / div_ref[c]
    shares = class_shares(pred, n_classes)
    pr = precision_recall(f_ref, f_gen)
    out = {
        "n": len(f_gen),
        "fd": frechet_distance(f_gen, f_ref),
        "intra_fd": _per_class(intra_fd),
        "kid": kid(f_gen, f_ref, kid_scale),
        "intra_kid": _per_class(intra_kid),
        "diversity": _per_class(div),
        "min_class_share": min(shares),
        "classes_covered": int(sum(s >= 0.5 / n_classes for s in shares)),
        "class_shares": shares,
        "precision": pr["precision"],
        "recall": pr["recall"],
    }
    if ratios is not None:
        threshold = torch.quantile(floor_ratios, COPY_QUANTILE)
        out["nn_ratio"] = (ratios.median() / floor_ratios.median()).item()
        out["copy_share"] = (ratios < threshold).double().mean().item()
    if conditional_labels is not None:
        out["conditional_accuracy"] = (pred == conditional_labels).double().mean().item()
    return out


def check_images(images: torch.Tensor, image_shape: tuple | None = None) -> torch.Tensor:
    """One-line errors for images the figures cannot use: wrong shape, NaN, values outside [0, 1]."""
    if not isinstance(images, torch.Tensor) or images.ndim != 4 or images.shape[1] != 1:
        shape = tuple(images.shape) if hasattr(images, "shape") else type(images).__name__
        raise CondgenError(f"images must have shape (N, 1, H, W), got {shape}")
    if image_shape is not None and tuple(images.shape[1:]) != tuple(image_shape):
        raise CondgenError(f"images are {tuple(images.shape[1:])} but the dataset's are "
                           f"{tuple(image_shape)}: evaluate on the dataset the model was trained on")
    if torch.isnan(images).any():
        raise CondgenError("images contain NaN: the model has diverged; retrain it with a lower "
                           "learning rate")
    if images.min() < 0 or images.max() > 1:
        raise CondgenError("images must lie in [0, 1]: apply a sigmoid or rescale before evaluating")
    return images.cpu().float()


def image_metrics(images: torch.Tensor, labels: torch.Tensor | None = None, dataset: str = "digits",
                  copying: bool = True) -> dict:
    """Every figure for a set of images (N, 1, H, W) in [0, 1], against the reference split.

    ``labels`` are the classes the images were *asked* for (conditional models, or real labels);
    without them the classifier's predictions group the images by class. Per-class figures skip a
    class with fewer than 2 images (``classes_covered`` shows it). ``copying=False`` leaves out
    ``nn_ratio`` and ``copy_share`` (pixel distances to the whole training set: the slow part at
    MNIST size).
    """
    sets = evaluation_sets(dataset)
    images = check_images(images, sets.train.image_shape)
    pred = predict(sets.clf, images)
    if labels is not None:
        labels = torch.as_tensor(labels).long().cpu()
        if labels.shape != (len(images),):
            raise CondgenError(f"got {tuple(labels.shape)} labels for {len(images)} images: give one per image")
        if labels.min() < 0 or labels.max() >= sets.n_classes:
            raise CondgenError(f"labels must lie in 0..{sets.n_classes - 1}")
    groups = labels if labels is not None else pred
    ratios = copy_ratios(images, sets.train.images, sets.reference.images) if copying else None
    return _score(features(sets.clf, images), pred, groups, labels, ratios, sets.f_ref,
                  sets.reference.labels, sets.div_ref, sets.floor_ratios, sets.n_classes, sets.kid_scale)


SCALAR_FIGURES = ("conditional_accuracy", "fd", "intra_fd", "kid", "intra_kid", "diversity",
                  "precision", "recall", "nn_ratio", "copy_share", "min_class_share", "classes_covered")
_FLOORS: dict[tuple, dict] = {}


def real_floor(dataset: str = "digits", conditional: bool = True, resplits: int | None = None,
               seed: int = 0) -> dict:
    """The figures of held-out real images (the floor split) scored exactly as samples are, with
    an ``interval`` per figure: the 2.5-97.5 % range over ``resplits`` deals of the two held-out
    splits (reference + floor, pooled) into a reference and a floor of the original sizes,
    stratified by class for a conditional model's floor (which is asked for the floor's labels),
    unstratified for an unconditional one's, the course's own split being the first deal. (Fixed
    class counts pull the overall KID slightly below 0; the right floor keeps like with like.) It is the spread a perfect,
    non-copying generator would show, from which real images it happens to draw and which ones the
    reference happens to hold. Each figure is the median over the deals; ``this_split`` keeps the
    course split's own values.

    Default resplits: 50 for digits-sized pools; 10 for MNIST-sized ones, where the pixel-based
    figures (nn_ratio, copy_share) get no interval (their pool x pool distances would not fit).
    """
    key = (dataset, conditional, resplits, seed)
    if key in _FLOORS:
        return _FLOORS[key]
    if resplits is not None and resplits < 2:
        raise CondgenError(f"the floor's interval needs at least 2 resplits, got {resplits}")
    s = evaluation_sets(dataset)
    point = _score(s.f_floor, s.pred_floor, s.floor.labels if conditional else s.pred_floor,
                   s.floor.labels if conditional else None, s.floor_ratios, s.f_ref,
                   s.reference.labels, s.div_ref, s.floor_ratios, s.n_classes, s.kid_scale)
    f_pool = torch.cat([s.f_ref, s.f_floor])
    y_pool = torch.cat([s.reference.labels, s.floor.labels])
    pred_pool = torch.cat([predict(s.clf, s.reference.images), s.pred_floor])
    small = len(y_pool) <= 4000
    resplits = resplits if resplits is not None else (50 if small else 10)
    if small:
        x_pool = torch.cat([s.reference.images, s.floor.images]).flatten(1).double()
        d_pool = torch.cdist(x_pool, x_pool)
        d_train = torch.cat([nearest_distance(s.reference.images, s.train.images),
                             nearest_distance(s.floor.images, s.train.images)])
    g = torch.Generator().manual_seed(seed)
    n_ref_per_class = torch.bincount(s.reference.labels, minlength=s.n_classes)
    draws: dict[str, list[float]] = {k: [point[k]] for k in SCALAR_FIGURES if k in point}
    for _ in range(resplits - 1):
        if conditional:  # a conditional model is asked for exactly the floor's labels: keep the counts
            ref_idx, floor_idx = [], []
            for c in range(s.n_classes):
                idx = torch.nonzero(y_pool == c).flatten()
                idx = idx[torch.randperm(len(idx), generator=g)]
                ref_idx.append(idx[:n_ref_per_class[c]])
                floor_idx.append(idx[n_ref_per_class[c]:])
            ri, fi = torch.cat(ref_idx), torch.cat(floor_idx)
        else:  # an unconditional model draws its classes at random: so do these deals
            order = torch.randperm(len(y_pool), generator=g)
            ri, fi = order[:len(s.reference)], order[len(s.reference):]
        ratios = d_train[fi] / d_pool[fi][:, ri].min(1).values.clamp_min(1e-12) if small else None
        fig = _score(f_pool[fi], pred_pool[fi], y_pool[fi] if conditional else pred_pool[fi],
                     y_pool[fi] if conditional else None, ratios, f_pool[ri], y_pool[ri],
                     _class_spread(f_pool[ri], y_pool[ri], s.n_classes), s.floor_ratios, s.n_classes,
                     s.kid_scale)
        for k in SCALAR_FIGURES:
            if k in fig:
                draws[k].append(fig[k])
    point["interval"] = {k: [float(np.quantile(v, 0.025)), float(np.quantile(v, 0.975))]
                         for k, v in draws.items() if len(v) > 1}
    # the floor's figure is the median over the deals (the course's own split is one of them):
    # one split can land in a tail of that distribution, and the floor should be the typical value
    point["this_split"] = {k: point[k] for k in point["interval"]}
    point.update({k: float(np.median(draws[k])) for k in point["interval"]})
    point["resplits"] = resplits
    _FLOORS[key] = point
    return point


def _supports_draws(model) -> bool:
    import inspect

    return "draw" in inspect.signature(model.sample).parameters


def evaluate_model(model, dataset: str = "digits", seed: int = 0, copying: bool = True,
                   **sample_kwargs) -> dict:
    """Sample as many images as the floor split holds (with its labels, for conditional models) and
    score them, so generated and real figures use the same n and the same reference.
    ``sample_kwargs`` go to ``model.sample`` (e.g. ``guidance=2.0`` for a guided model).

    A likelihood model (the VAE family) is scored on what it samples: pixel draws from p(x | z[, y]).
    Its decoder means, the smooth images usually shown, are scored too, under ``decoder_means``."""
    floor = load_dataset(dataset, FLOOR_SPLIT)
    labels = floor.labels if model.conditional else None
    if _supports_draws(model):
        images = model.sample(len(floor), labels=labels, generator=torch.Generator().manual_seed(seed), draw=True)
        out = {**image_metrics(images, labels, dataset, copying), "scored": "pixel draws"}
        means = model.sample(len(floor), labels=labels, generator=torch.Generator().manual_seed(seed))
        out["decoder_means"] = {**image_metrics(means, labels, dataset, copying), "scored": "decoder means"}
        return out
    images = model.sample(len(floor), labels=labels, generator=torch.Generator().manual_seed(seed),
                          **sample_kwargs)
    return {**image_metrics(images, labels, dataset, copying), "scored": "samples"}


GUIDANCE_GRID = (0.0, 0.5, 1.0, 1.25, 1.5, 2.0, 3.0, 4.0)
SWEEP_FIGURES = ("conditional_accuracy", "diversity", "intra_kid", "intra_fd", "precision", "recall",
                 "classes_covered", "class_shares", "fd", "kid")


def guidance_sweep(model, dataset: str = "digits", scales=GUIDANCE_GRID, seed: int = 0,
                   **sample_kwargs) -> dict[float, dict]:
    """A guided model's figures at each guidance scale g: as many samples as the floor split holds,
    asked for its labels, from the same noise (``seed``) at every g; pixel copying is left out."""
    floor = load_dataset(dataset, FLOOR_SPLIT)
    out = {}
    for g in scales:
        images = model.sample(len(floor), labels=floor.labels, generator=torch.Generator().manual_seed(seed),
                              guidance=g, **sample_kwargs)
        figures = image_metrics(images, floor.labels, dataset, copying=False)
        out[float(g)] = {k: figures[k] for k in SWEEP_FIGURES}
    return out


def pick_guidance(sweep: dict[float, dict], floor: dict) -> float:
    """The guidance scale to report as "best": the smallest g whose intra-KID lies within half the
    floor's intra-KID interval of the lowest one in ``sweep``. Differences smaller than real data's own
    spread are not a ranking, and among scales that tie, the smallest costs the least diversity
    (the one-standard-error rule of model selection, with the floor's spread as the error)."""
    lo, hi = floor["interval"]["intra_kid"]
    best = min(f["intra_kid"] for f in sweep.values())
    return min(g for g, f in sweep.items() if f["intra_kid"] <= best + (hi - lo) / 2)


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
    torch.save(clf.state_dict(), WEIGHTS_DIR / f"digits_classifier_v{CLASSIFIER_VERSION}.pt")
    print(f"digits evaluation classifier: test accuracy {acc:.4f}, saved to {WEIGHTS_DIR}")
