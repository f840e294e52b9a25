"""Continuous attributes of digit images, measured from the pixels (notebook 05).

Two attributes, both computed from image moments of the ink distribution I(r, c) (row r downwards,
column c to the right, mass m = sum I):

- *thickness*: the ink mass m, in units of fully inked pixels. For strokes of the same length a
  thicker pen leaves proportionally more ink.
- *slant*: how far the stroke moves to the right per row going up, -mu_rc / mu_rr, from the second
  central moments mu_rc = E[(r - r0)(c - c0)] and mu_rr = E[(r - r0)^2] under I / m. An upright
  stroke has slant 0; shearing an image by c -> c + s (r0 - r) adds exactly s.

A model is conditioned on *standardised* attributes (zero mean, unit standard deviation over the
training split), so one unit means "one typical spread" for every attribute and every dataset.
"""

from __future__ import annotations

import torch
from torch import nn

from ..errors import CondgenError

ATTRIBUTES = ("thickness", "slant")
_EPS = 1e-8


def _check_images(images: torch.Tensor) -> torch.Tensor:
    images = torch.as_tensor(images)
    if images.ndim != 4:
        raise CondgenError(f"images must have shape (N, C, H, W), got {tuple(images.shape)}")
    if not images.dtype.is_floating_point:
        raise CondgenError(f"images must be floats in [0, 1], got dtype {images.dtype}")
    if images.numel() and images.min() < 0:
        raise CondgenError("images must lie in [0, 1]: ink cannot be negative; rescale them first")
    return images.double()


def moments(images: torch.Tensor) -> dict[str, torch.Tensor]:
    """Ink mass, centroid and second central moments of each image, all (N,) float64 in pixels.

    Keys: ``mass``, ``r0``, ``c0`` (centroid row and column), ``rr``, ``cc``, ``rc`` (variances
    and covariance of the ink's row and column). A blank image has mass 0 and all moments 0.
    """
    x = _check_images(images).sum(1)  # channels add their ink
    _, h, w = x.shape
    rows = torch.arange(h, dtype=x.dtype).view(1, h, 1)
    cols = torch.arange(w, dtype=x.dtype).view(1, 1, w)
    mass = x.sum((1, 2))
    p = x / mass.clamp_min(_EPS).view(-1, 1, 1)  # ink as a distribution over pixels
    r0, c0 = (p * rows).sum((1, 2)), (p * cols).sum((1, 2))
    dr, dc = rows - r0.view(-1, 1, 1), cols - c0.view(-1, 1, 1)
    return {"mass": mass, "r0": r0, "c0": c0, "rr": (p * dr * dr).sum((1, 2)),
            "cc": (p * dc * dc).sum((1, 2)), "rc": (p * dr * dc).sum((1, 2))}


def thickness(images: torch.Tensor) -> torch.Tensor:
    """Ink mass of each image (N,), in fully inked pixels: images (N, C, H, W) in [0, 1]."""
    return moments(images)["mass"].float()


def slant(images: torch.Tensor) -> torch.Tensor:
    """Columns moved to the right per row going up, -mu_rc / mu_rr, for each image (N,).

    Positive leans right like "/", negative leans left like "\\"; blank images or images with all
    ink in one row have slant 0 (there is no vertical extent to lean)."""
    m = moments(images)
    tall = m["rr"] > 1e-6
    return torch.where(tall, -m["rc"] / m["rr"].clamp_min(1e-6), torch.zeros_like(m["rc"])).float()


def measure(images: torch.Tensor) -> torch.Tensor:
    """Raw attributes (N, len(ATTRIBUTES)) in the order of ``ATTRIBUTES``: ink mass, slant."""
    return torch.stack([thickness(images), slant(images)], dim=1)


def shear(images: torch.Tensor, s: float | torch.Tensor) -> torch.Tensor:
    """Shear images so each row moves s columns right per row above the centre row (bilinear):
    the slant of the result is the slant of the input plus s, up to resampling on the pixel grid.
    images (N, C, H, W); s a number or (N,)."""
    import torch.nn.functional as F

    images = _check_images(images).float()
    n, _, h, w = images.shape
    s = torch.as_tensor(s, dtype=torch.float32).expand(n)
    # affine_grid works in [-1, 1] coordinates: one row is 2/h, one column 2/w, and y points down
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0], theta[:, 1, 1] = 1.0, 1.0
    theta[:, 0, 1] = s * (h / w)  # output column c samples input column c + s (r - r_centre)
    grid = F.affine_grid(theta, [n, 1, h, w], align_corners=False)
    return F.grid_sample(images, grid, align_corners=False, padding_mode="zeros").clamp(0, 1)


class AttributeScaler(nn.Module):
    """Standardises attributes with training-split statistics and draws typical attributes per class.

    ``fit(images, labels)`` stores the mean and standard deviation of each attribute over the images
    and, for each class, a Gaussian (mean and Cholesky factor of the covariance) of the standardised
    attributes. Everything lives in buffers, so it is saved and loaded with a model's checkpoint.
    """

    def __init__(self, n_classes: int = 10, names: tuple[str, ...] = ATTRIBUTES):
        super().__init__()
        unknown = [a for a in names if a not in ATTRIBUTES]
        if unknown:
            raise CondgenError(f"unknown attribute(s) {unknown}: use some of {', '.join(ATTRIBUTES)}")
        self.names, self.n_classes = tuple(names), int(n_classes)
        k = len(self.names)
        self.register_buffer("mean", torch.zeros(k))
        self.register_buffer("std", torch.ones(k))
        self.register_buffer("class_mean", torch.zeros(n_classes, k))
        self.register_buffer("class_tril", torch.eye(k).repeat(n_classes, 1, 1))
        self.register_buffer("fitted", torch.tensor(False))

    def raw(self, images: torch.Tensor) -> torch.Tensor:
        """Attributes in their own units (N, k): ink mass in pixels, slant in columns per row."""
        values = measure(images)
        return values[:, [ATTRIBUTES.index(a) for a in self.names]].to(self.mean.device)

    def fit(self, images: torch.Tensor, labels: torch.Tensor) -> AttributeScaler:
        from .conditioning import check_labels

        labels = check_labels(labels, self.n_classes).to(self.mean.device)
        raw = self.raw(images)
        if len(raw) < 2:
            raise CondgenError("fitting attribute statistics needs at least two images")
        self.mean.copy_(raw.mean(0))
        self.std.copy_(raw.std(0).clamp_min(_EPS))
        self.fitted.fill_(True)
        z = self.transform(raw)
        eye = torch.eye(len(self.names), device=z.device)
        for c in range(self.n_classes):
            zc = z[labels == c]
            if len(zc) < 2:  # a class without enough examples falls back to the overall spread
                self.class_mean[c], self.class_tril[c] = (zc.mean(0) if len(zc) else 0.0), eye
                continue
            self.class_mean[c] = zc.mean(0)
            # a little jitter keeps the Cholesky factorisation defined for degenerate classes
            self.class_tril[c] = torch.linalg.cholesky(torch.cov(zc.T) + 1e-4 * eye)
        return self

    def _need_fit(self) -> None:
        if not bool(self.fitted):
            raise CondgenError("attribute statistics are not fitted yet: call fit(train_images, "
                               "train_labels) first (training with condgen's fit does it for you)")

    def transform(self, raw: torch.Tensor) -> torch.Tensor:
        """Raw attributes (N, k) -> standardised (N, k): (raw - mean) / std."""
        self._need_fit()
        return (raw.to(self.mean.device) - self.mean) / self.std

    def inverse(self, standard: torch.Tensor) -> torch.Tensor:
        """Standardised attributes (N, k) -> raw units."""
        self._need_fit()
        return standard.to(self.mean.device) * self.std + self.mean

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Standardised attributes (N, k) of images (N, C, H, W) in [0, 1]."""
        return self.transform(self.raw(images))

    def sample(self, labels: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Standardised attributes (N, k) drawn from the Gaussian fitted to each label's class."""
        from .conditioning import check_labels

        self._need_fit()
        labels = check_labels(labels, self.n_classes).to(self.mean.device)
        eps = torch.randn(len(labels), len(self.names), generator=generator).to(self.mean.device)
        return self.class_mean[labels] + (self.class_tril[labels] @ eps.unsqueeze(-1)).squeeze(-1)
