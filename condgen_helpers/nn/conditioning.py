"""How a condition y becomes a vector a network can read.

Every conditioning module maps a batch of conditions to a (N, out_dim) float tensor and exposes
``out_dim``, so a generator or discriminator can take any of them without a copy of the model.
"""

from __future__ import annotations

import torch
from torch import nn

from ..errors import CondgenError


def check_labels(labels: torch.Tensor, n_classes: int) -> torch.Tensor:
    """Return ``labels`` as int64 or raise a one-line error if any lies outside 0..n_classes-1."""
    labels = torch.as_tensor(labels)
    if labels.dtype.is_floating_point or labels.dtype == torch.bool:
        raise CondgenError(f"labels must be integers 0..{n_classes - 1}, got dtype {labels.dtype}")
    if labels.numel() and (labels.min() < 0 or labels.max() >= n_classes):
        bad = labels[(labels < 0) | (labels >= n_classes)][0].item()
        raise CondgenError(f"label {bad} is outside the classes: use integers 0..{n_classes - 1}")
    return labels.long()


class LabelEmbedding(nn.Module):
    """A learned vector per class: y (N,) int64 -> (N, dim). Equivalent to one-hot times a matrix."""

    def __init__(self, n_classes: int, dim: int = 16):
        super().__init__()
        self.n_classes, self.out_dim = n_classes, dim
        self.table = nn.Embedding(n_classes, dim)

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        return self.table(check_labels(y, self.n_classes).to(self.table.weight.device))


class LabelProjection(nn.Module):
    """The class term of a projection discriminator (Miyato and Koyama 2018, section 3):
    features phi(x) (N, F) and labels y (N,) -> embed(y) . phi(x), one score per image (N,).

    Instead of reading y next to the pixels, D compares what it sees, phi(x), with a learned
    direction per class; the inner product is the log-ratio term log q(y|x) / p(y|x) of the paper.
    """

    def __init__(self, n_classes: int, feature_dim: int):
        super().__init__()
        self.n_classes, self.feature_dim = n_classes, feature_dim
        self.table = nn.Embedding(n_classes, feature_dim)
        # start label-blind: D first learns what a digit looks like, then what separates the classes
        nn.init.zeros_(self.table.weight)

    def forward(self, features: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if features.ndim != 2 or features.shape[1] != self.feature_dim:
            raise CondgenError(f"features must have shape (N, {self.feature_dim}), "
                               f"got {tuple(features.shape)}")
        y = check_labels(y, self.n_classes).to(features.device)
        return (self.table(y) * features).sum(dim=1)


# --- conditions beyond class labels (notebook 05) --------------------------------------------------

class AttributeCondition(nn.Module):
    """Continuous attributes as condition: (N, k) floats -> (N, k), checked and passed on unchanged.

    The values are already numbers on a common scale (standardised, see ``attributes.py``), so the
    network's first linear layer can weigh them directly; a learned embedding would add nothing."""

    def __init__(self, names: tuple[str, ...]):
        super().__init__()
        self.names = tuple(names)
        self.out_dim = len(self.names)

    def forward(self, a: torch.Tensor) -> torch.Tensor:
        a = torch.as_tensor(a)
        if not a.dtype.is_floating_point:
            raise CondgenError(f"attributes must be floats (standardised values), got dtype {a.dtype}")
        if a.ndim != 2 or a.shape[1] != self.out_dim:
            raise CondgenError(f"attributes must have shape (N, {self.out_dim}) with columns "
                               f"{', '.join(self.names)}; got {tuple(a.shape)}")
        if not torch.isfinite(a).all():
            raise CondgenError("attributes contain NaN or infinity: give finite standardised values")
        return a.float()


class PartialImageCondition(nn.Module):
    """The visible top rows of an image as condition: (N, C, rows, W) in [0, 1] -> (N, C * rows * W).

    ``split`` cuts full images into (top, bottom) and ``join`` glues them back, so a completion model
    conditions on the top and generates the bottom."""

    def __init__(self, image_shape: tuple[int, int, int], rows: int | None = None):
        super().__init__()
        c, h, w = (int(s) for s in image_shape)
        rows = h // 2 if rows is None else int(rows)
        if not 0 < rows < h:
            raise CondgenError(f"the visible part must keep between 1 and {h - 1} rows, got {rows}")
        self.image_shape, self.rows = (c, h, w), rows
        self.top_shape, self.bottom_shape = (c, rows, w), (c, h - rows, w)
        self.out_dim = c * rows * w

    def _check(self, images: torch.Tensor, shape: tuple[int, ...], what: str) -> torch.Tensor:
        images = torch.as_tensor(images)
        if images.ndim != 4 or tuple(images.shape[1:]) != shape:
            raise CondgenError(f"{what} must have shape (N, {', '.join(map(str, shape))}), got "
                               f"{tuple(images.shape)}")
        return images

    def split(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Full images (N, C, H, W) -> (top (N, C, rows, W), bottom (N, C, H - rows, W))."""
        images = self._check(images, self.image_shape, "images")
        return images[:, :, :self.rows], images[:, :, self.rows:]

    def join(self, top: torch.Tensor, bottom: torch.Tensor) -> torch.Tensor:
        """(top, bottom) -> full images (N, C, H, W)."""
        top = self._check(top, self.top_shape, "the top part")
        bottom = self._check(bottom, self.bottom_shape, "the bottom part")
        return torch.cat([top, bottom.to(top.device)], dim=2)

    def forward(self, top: torch.Tensor) -> torch.Tensor:
        top = self._check(top, self.top_shape, "the visible top part (use split(images)[0])")
        return top.flatten(1).float()


class CombinedCondition(nn.Module):
    """Several conditions at once, e.g. (label, attributes): each part maps its own entry of the tuple
    and the results are concatenated, so out_dim is the sum of the parts' out_dim."""

    def __init__(self, *parts: nn.Module):
        super().__init__()
        if not parts:
            raise CondgenError("a combined condition needs at least one part")
        self.parts = nn.ModuleList(parts)
        self.out_dim = sum(p.out_dim for p in parts)

    def forward(self, conditions) -> torch.Tensor:
        if not isinstance(conditions, (tuple, list)) or len(conditions) != len(self.parts):
            names = ", ".join(type(p).__name__ for p in self.parts)
            raise CondgenError(f"give a tuple of {len(self.parts)} conditions, one per part ({names})")
        vectors = [part(c) for part, c in zip(self.parts, conditions, strict=True)]
        if len({len(v) for v in vectors}) > 1:
            raise CondgenError(f"the conditions disagree on the batch size: {[len(v) for v in vectors]}")
        device = vectors[0].device
        return torch.cat([v.to(device) for v in vectors], dim=1)
