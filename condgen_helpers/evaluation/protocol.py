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

import numpy as np
import torch

from ..data import Splits, as_splits
from ..errors import CondgenError
from .classifier import classifier_features, load_classifier, predict
from .metrics import (
    COPY_QUANTILE,
    _per_class,
    class_shares,
    copy_ratios,
    frechet_distance,
    kid,
    mean_pairwise_distance,
    nearest_distance,
    precision_recall,
)

REFERENCE_SPLIT, FLOOR_SPLIT = "val", "test"


class EvaluationSets:
    """What every evaluation on one set of splits shares, computed once: the training, reference
    and floor splits, the classifier's features of the real sets, the reference's within-class
    spread, and the floor images' copy ratios (against the training split handed in)."""

    def __init__(self, splits: Splits):
        self.splits = splits
        self.dataset = splits.name
        self.clf = load_classifier(splits.name)
        self.train = splits.train
        self.reference = getattr(splits, REFERENCE_SPLIT)
        self.floor = getattr(splits, FLOOR_SPLIT)
        self.floors: dict[tuple, dict] = {}
        self.n_classes = self.train.n_classes
        self.f_ref = classifier_features(self.clf, self.reference.images)
        self.f_floor = classifier_features(self.clf, self.floor.images)
        self.pred_floor = predict(self.clf, self.floor.images)
        self.div_ref = _class_spread(self.f_ref, self.reference.labels, self.n_classes)
        self.kid_scale = self.f_ref.pow(2).mean().sqrt().item()  # RMS feature value of the reference
        self.floor_ratios = copy_ratios(self.floor.images, self.train.images, self.reference.images)


_SETS: dict[int, tuple[Splits, EvaluationSets]] = {}


def evaluation_sets(data: str | Splits = "digits") -> EvaluationSets:
    """The evaluation sets of ``data`` (a Splits object, or a dataset's name), made once per object."""
    splits = as_splits(data)
    if id(splits) not in _SETS:  # the splits are kept alongside, so their id is not reused
        _SETS[id(splits)] = (splits, EvaluationSets(splits))
    return _SETS[id(splits)][1]


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
        "density": pr["density"],
        "coverage": pr["coverage"],
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


def image_metrics(images: torch.Tensor, labels: torch.Tensor | None = None,
                  data: str | Splits = "digits", copying: bool = True) -> dict:
    """Every figure for a set of images (N, 1, H, W) in [0, 1], against the reference split of
    ``data`` (a Splits object or a dataset's name).

    ``labels`` are the classes the images were *asked* for (conditional models, or real labels);
    without them the classifier's predictions group the images by class. Per-class figures skip a
    class with fewer than 2 images (``classes_covered`` shows it). ``copying=False`` leaves out
    ``nn_ratio`` and ``copy_share`` (pixel distances to the whole training set: the slow part at
    MNIST size).
    """
    sets = evaluation_sets(data)
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
    return _score(classifier_features(sets.clf, images), pred, groups, labels, ratios, sets.f_ref,
                  sets.reference.labels, sets.div_ref, sets.floor_ratios, sets.n_classes, sets.kid_scale)


SCALAR_FIGURES = ("conditional_accuracy", "fd", "intra_fd", "kid", "intra_kid", "diversity",
                  "precision", "recall", "density", "coverage", "nn_ratio", "copy_share", "min_class_share", "classes_covered")


def repeated_digits(train, labels: torch.Tensor, k: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """A partial collapse to measure against: for each asked label, one of the first ``k`` training
    images of that class (``train``: an ImageData), drawn at random; (N, C, H, W). A generator that
    knows only k digits a class copies them, so its diversity and recall are the null a collapsed
    model is compared with (notebooks 02 and 06)."""
    labels = torch.as_tensor(labels)
    if k < 1:
        raise CondgenError(f"k must be at least 1, got {k}")
    out = torch.empty(len(labels), *train.images.shape[1:])
    for c in range(train.n_classes):
        asked = labels == c
        pool = train.images[train.labels == c][:k]
        if int(asked.sum()) and not len(pool):
            raise CondgenError(f"the training images hold no digit of class {c}: it cannot be repeated")
        out[asked] = pool[torch.randint(len(pool), (int(asked.sum()),), generator=generator)]
    return out


def real_floor(data: str | Splits = "digits", conditional: bool = True, resplits: int | None = None,
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
    s = evaluation_sets(data)
    key = (conditional, resplits, seed)
    if key in s.floors:
        return s.floors[key]
    if resplits is not None and resplits < 2:
        raise CondgenError(f"the floor's interval needs at least 2 resplits, got {resplits}")
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
    s.floors[key] = point
    return point


def evaluate_model(model, data: str | Splits = "digits", seed: int = 0, copying: bool = True,
                   **sample_kwargs) -> dict:
    """Sample as many images as the floor split holds (with its labels, for conditional models) and
    score them, so generated and real figures use the same n and the same reference.
    ``sample_kwargs`` go to ``model.sample`` (e.g. ``guidance=2.0`` for a guided model).

    A likelihood model (``model.samples_draws``: the VAE family) is scored on what it samples: pixel
    draws from p(x | z[, y]). The same codes decoded as the decoder's means (the smooth images usually
    shown) and modes (every pixel at its most probable value) are scored too, under
    ``decoder_means`` and ``decoder_modes``."""
    splits = as_splits(data)
    floor = evaluation_sets(splits).floor
    labels = floor.labels if model.conditional else None
    if model.samples_draws:
        out = {}
        for decode, key, scored in (("draw", None, "pixel draws"), ("mean", "decoder_means", "decoder means"),
                                    ("mode", "decoder_modes", "decoder modes")):
            images = model.sample(len(floor), labels=labels, generator=torch.Generator().manual_seed(seed),
                                  decode=decode)
            figures = {**image_metrics(images, labels, splits, copying), "scored": scored}
            if key is None:
                out.update(figures)
            else:
                out[key] = figures
        return out
    images = model.sample(len(floor), labels=labels, generator=torch.Generator().manual_seed(seed),
                          **sample_kwargs)
    return {**image_metrics(images, labels, splits, copying), "scored": "samples"}


GUIDANCE_GRID = (0.0, 0.5, 1.0, 1.25, 1.5, 2.0, 3.0, 4.0)
SWEEP_FIGURES = ("conditional_accuracy", "diversity", "intra_kid", "intra_fd", "precision", "recall",
                 "classes_covered", "class_shares", "fd", "kid")


def guidance_sweep(model, data: str | Splits = "digits", scales=GUIDANCE_GRID, seed: int = 0,
                   **sample_kwargs) -> dict[float, dict]:
    """A guided model's figures at each guidance scale g: as many samples as the floor split holds,
    asked for its labels, from the same noise (``seed``) at every g; pixel copying is left out."""
    splits = as_splits(data)
    floor = evaluation_sets(splits).floor
    out = {}
    for g in scales:
        images = model.sample(len(floor), labels=floor.labels, generator=torch.Generator().manual_seed(seed),
                              guidance=g, **sample_kwargs)
        figures = image_metrics(images, floor.labels, splits, copying=False)
        out[float(g)] = {k: figures[k] for k in SWEEP_FIGURES}
    return out


def selection_splits(data: str | Splits = "digits") -> Splits:
    """The held-out splits with their roles swapped, for choosing a sampling setting such as the
    guidance scale: the floor split (``test``) becomes the reference and the reference split's labels
    (``val``) are asked for. A choice made here is then scored by the usual protocol against the
    reference split, which the choice never saw. (The training split and the evaluation classifier,
    fitted to it, are shared: they are the instrument, not the data scored.)"""
    splits = as_splits(data)
    if id(splits) not in _SWAPPED:  # one object per splits, so its evaluation sets are made once
        _SWAPPED[id(splits)] = (splits, Splits(splits.train, getattr(splits, FLOOR_SPLIT),
                                               getattr(splits, REFERENCE_SPLIT)))
    return _SWAPPED[id(splits)][1]


_SWAPPED: dict[int, tuple[Splits, Splits]] = {}


def floor_distance(figures: dict, floor: dict) -> float:
    """How far a set of samples lies from real data in the precision-recall plane, each axis in
    units of the floor's half-interval: sqrt(((P - P_floor) / h_P)^2 + ((R - R_floor) / h_R)^2).
    Precision falls when samples leave the data, recall when they stop covering it (lost diversity),
    so both failures count; real data scores about 1 or less."""
    parts = []
    for key in ("precision", "recall"):
        lo, hi = floor["interval"][key]
        parts.append((figures[key] - floor[key]) / max((hi - lo) / 2, 1e-12))
    return float(np.hypot(*parts))


def pick_guidance(sweep: dict[float, dict], floor: dict) -> float:
    """The guidance scale to report as "best", from a sweep scored on data the report will not use
    (:func:`selection_splits`) and that data's ``floor``.

    1. Fidelity first: keep the scales whose conditional accuracy reaches the floor's interval
       (real digits are read as their class that often); if none does, the most accurate scale.
    2. Then closeness to real data, diversity included: of those, the scale nearest the floor in the
       precision-recall plane (:func:`floor_distance`), which a scale that trades recall (variety)
       for precision pays for.
    3. Differences under one floor half-interval are not a ranking: among scales within 1 of the
       nearest, the smallest g (it costs the least variety)."""
    acc_lo = floor["interval"]["conditional_accuracy"][0]
    keep = {g: f for g, f in sweep.items() if f["conditional_accuracy"] >= acc_lo}
    if not keep:
        top = max(f["conditional_accuracy"] for f in sweep.values())
        keep = {g: f for g, f in sweep.items() if f["conditional_accuracy"] == top}
    dist = {g: floor_distance(f, floor) for g, f in keep.items()}
    nearest = min(dist.values())
    return min(g for g, d in dist.items() if d <= nearest + 1)
