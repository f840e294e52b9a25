"""Figures of the course: sample grids, loss curves, 2-D scatter plots with the true modes."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import torch
from torchvision.utils import make_grid

from ..data import RING_RADIUS, ring_centres


def grid_image(images: torch.Tensor, nrow: int = 10, pad: int = 1) -> np.ndarray:
    """Tile images (N, C, H, W) in [0, 1] into one (H', W') array with torchvision's make_grid."""
    grid = make_grid(images.detach().cpu().float().clamp(0, 1), nrow=nrow, padding=pad, pad_value=0.3)
    return grid[0].numpy()


def show_grid(images: torch.Tensor, nrow: int = 10, title: str | None = None, ax=None,
              row_labels=None, size: float = 0.45):
    """Draw a sample grid (black ink on white, as digits are written); ``row_labels`` names each row."""
    arr = grid_image(images, nrow)
    if ax is None:
        rows = int(np.ceil(len(images) / nrow))
        _, ax = plt.subplots(figsize=(max(2.0, size * nrow), max(1.0, size * rows)))
    ax.imshow(arr, cmap="gray_r", vmin=0, vmax=1, interpolation="nearest")
    ax.set_xticks([])
    h = images.shape[-2] + 1
    if row_labels is not None:
        ax.set_yticks([h * i + h / 2 for i in range(len(row_labels))], [str(r) for r in row_labels])
    else:
        ax.set_yticks([])
    for side in ax.spines.values():
        side.set_visible(False)
    if title:
        ax.set_title(title)
    return ax


def plot_losses(history, keys=None, ax=None, title: str = "training losses", smooth: bool = True,
                ylabel: str = "loss (nats)"):
    """Per-epoch means (or raw per-step values) of the losses in a training history; ``ylabel`` names
    their unit (nats for the GAN and VAE losses, a mean squared error for flow matching)."""
    keys = keys or [k for k in history if k.startswith("loss")]
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3))
    for k in keys:
        values = history.epoch_means(k) if smooth else history[k]
        ax.plot(np.arange(1, len(values) + 1), values, label=k)
    ax.set_xlabel("epoch" if smooth else "step")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend()
    ax.grid(alpha=0.3)
    return ax


def scatter_ring(points: torch.Tensor, ax=None, title: str | None = None, n_modes: int = 8,
                 radius: float = RING_RADIUS, color: str = "tab:blue"):
    """2-D points with the true mode centres marked as red crosses."""
    if ax is None:
        _, ax = plt.subplots(figsize=(3, 3))
    p = points.detach().cpu().numpy()
    ax.scatter(p[:, 0], p[:, 1], s=2, alpha=0.4, color=color)
    c = ring_centres(n_modes, radius).numpy()
    ax.scatter(c[:, 0], c[:, 1], marker="x", color="red", s=40, label="true modes")
    lim = radius * 1.5
    ax.set_xlim(-lim, lim)
    ax.set_ylim(-lim, lim)
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=9)
    return ax


def save_grid(images: torch.Tensor, path, nrow: int = 10, title: str | None = None, row_labels=None) -> None:
    """:func:`show_grid` written to ``path`` as a PNG (``row_labels`` name the rows, e.g. the classes)."""
    ax = show_grid(images, nrow, title, row_labels=row_labels)
    ax.figure.savefig(path, dpi=100, bbox_inches="tight", format="png")
    plt.close(ax.figure)


def snapshot_explorer(snapshots: dict[int, torch.Tensor], draw=None, description: str = "epoch"):
    """A slider over training snapshots ({epoch: samples}); ``draw(samples, ax, title)`` draws one
    (default: the ring scatter). Returns the ipywidgets ``interactive`` object."""
    import ipywidgets as widgets

    epochs = sorted(snapshots)
    draw = draw or (lambda s, ax, title: scatter_ring(s, ax=ax, title=title))

    def show(epoch: int):
        key = min(epochs, key=lambda e: abs(e - epoch))  # nearest stored snapshot
        fig, ax = plt.subplots(figsize=(3.2, 3.2))
        draw(snapshots[key], ax, f"{description} {key}")
        plt.show()
        return key

    slider = widgets.SelectionSlider(options=epochs, value=epochs[-1], description=description,
                                     continuous_update=False)
    return widgets.interactive(show, epoch=slider)
