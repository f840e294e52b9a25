"""How a condition y becomes a vector a network can read.

Every conditioning module maps a batch of conditions to a (N, out_dim) float tensor and exposes
``out_dim``, so a generator or discriminator can take any of them without a copy of the model.
"""

from __future__ import annotations

import torch
from torch import nn

from .errors import CondgenError


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
