"""The figures themselves, each a function of feature sets or images: Frechet distance, KID,
precision and recall, pairwise diversity, nearest-neighbour copy ratios, and the ring's modes."""

from __future__ import annotations

import numpy as np
import torch

from ..data import ring_centres
from ..errors import CondgenError

PR_MAX = 5000          # precision/recall: at most this many points per side (random subsample)
COPY_QUANTILE = 0.05   # copy_share: samples nearer to train than 95 % of real held-out images are


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

    Also *density* and *coverage* (Naeem et al. 2020, section 3), from the real balls alone (built to be less
    sensitive to outliers than precision and recall, though a far-off sample can still land in a real ball): density is how many real balls hold a generated point,
    averaged over the generated points and divided by k (about 1 for samples distributed like the real
    data, lower when samples stray off it); coverage is the share of real balls that hold at least one
    generated point (recall's question, without balls around the samples, so a collapsed generator
    cannot cover the data by spreading a few wide balls).
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

    r_real = radii(real)
    # (generated, real) membership of each generated point in each real ball, in chunks of generated points
    hits = torch.cat([torch.cdist(gc, real) <= r_real[None, :] for gc in gen.split(1024)])
    return {"precision": hits.any(1).double().mean().item(),
            "recall": inside(real, gen, radii(gen)).double().mean().item(),
            "density": (hits.sum(1).double().mean() / k).item(),
            "coverage": hits.any(0).double().mean().item()}


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


def ring_metrics(points: torch.Tensor, n_modes: int = 8, radius: float = 2.0, std: float = 0.05) -> dict:
    """A point is *high quality* if it lies within 3 std of its nearest mode's centre; a mode is
    *covered* if it holds at least a fifth of its fair share (1/n_modes) of all points as
    high-quality points.

    ``mode_entropy`` (bits) reads every point, sharp or not, as a vote for its nearest mode: log2 k
    when the points split evenly over k modes, so 3 for all 8 modes and 0 when everything sits by one
    mode (mode collapse), however far off the ring the points lie."""
    centres = ring_centres(n_modes, radius)
    d = torch.cdist(points.float(), centres)
    dist, nearest = d.min(1)
    good = dist < 3 * std
    counts = torch.bincount(nearest[good], minlength=n_modes).double()
    shares = counts / max(1, len(points))
    votes = torch.bincount(nearest, minlength=n_modes).double() / max(1, len(points))
    votes = votes[votes > 0]
    return {"high_quality": good.double().mean().item(),
            "modes_covered": int((shares >= 0.2 / n_modes).sum()),
            "mode_shares": shares.tolist(),
            "mode_entropy": float(-(votes * votes.log2()).sum()) + 0.0}
