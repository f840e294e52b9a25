"""Convolutional networks for 28x28 images (MNIST, Fashion-MNIST): the VAE family's encoder and
decoder, and a small U-Net for the flow model's velocity.

On 8x8 digits the course uses multilayer perceptrons: 64 pixels are few, and an MLP trains in
seconds. On 28x28 images an MLP must learn from scratch that neighbouring pixels belong together;
a convolution shares one small filter across the image, so a stroke is learnt once, wherever it
lies. (Not fewer weights overall: the VAE's dense layer between the 7x7 maps and the code holds
most of its weights.) Every class keeps the
interface of the MLP it stands in for (flattened or image-shaped input, the same outputs), so a
recipe switches network by image size and nothing else changes.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..errors import CondgenError

# what the networks are built for; other sizes keep the MLPs
CONV_SIZE = (28, 28)


def is_28x28(image_shape) -> bool:
    """Whether ``image_shape`` (C, H, W) is MNIST-sized, where the convolutional networks run."""
    return tuple(image_shape[-2:]) == CONV_SIZE


def pick_network(choice: str, image_shape) -> str:
    """``"mlp"`` or ``"conv"``: the setting as given, or by image size when it is ``"auto"``."""
    if choice != "auto":
        return choice
    return "conv" if is_28x28(image_shape) else "mlp"


def check_conv_shape(image_shape) -> None:
    if not is_28x28(image_shape):
        raise CondgenError(f"the convolutional networks take 28x28 images, got shape {tuple(image_shape)}: "
                         "use network='mlp' for other sizes")


class ConvEncoder(nn.Module):
    """q(z | x[, y]) for (C, 28, 28) images: two strided convolutions (28 -> 14 -> 7), then the
    condition (if any) joins the flattened features before a hidden layer and the (mu, logvar) head.
    Images (N, C, 28, 28) or flattened (N, C * 784) -> (mu, logvar), each (N, z_dim)."""

    def __init__(self, image_shape, z_dim: int, cond: nn.Module | None = None, width: int = 32,
                 hidden: int = 256, dropout: float = 0.0):
        super().__init__()
        check_conv_shape(image_shape)
        self.image_shape, self.cond = tuple(image_shape), cond
        extra = cond.out_dim if cond is not None else 0
        self.features = nn.Sequential(
            nn.Conv2d(image_shape[0], width, 4, stride=2, padding=1), nn.LeakyReLU(0.2),
            nn.Conv2d(width, 2 * width, 4, stride=2, padding=1), nn.LeakyReLU(0.2), nn.Flatten())
        self.head = nn.Sequential(
            nn.Linear(2 * width * 49 + extra, hidden), nn.LeakyReLU(0.2),
            *([nn.Dropout(dropout)] if dropout else []), nn.Linear(hidden, 2 * z_dim))

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None):
        h = self.features(x.reshape(-1, *self.image_shape))
        if self.cond is not None:
            h = torch.cat([h, self.cond(y)], dim=1)
        mu, logvar = self.head(h).chunk(2, dim=1)
        return mu, logvar


class ConvDecoder(nn.Module):
    """p(x | z[, y]) for (C, 28, 28) images: the code (and condition) through a hidden layer to
    7x7 maps, then two transposed convolutions (7 -> 14 -> 28) to ``params_per_pixel`` numbers per
    pixel. Codes (..., z_dim) -> (..., C * 784 * params_per_pixel), laid out pixel by pixel with a
    pixel's parameters together (the layout the MLP decoder and the likelihoods use)."""

    def __init__(self, z_dim: int, image_shape, params_per_pixel: int = 1, cond: nn.Module | None = None,
                 width: int = 32, hidden: int = 256, dropout: float = 0.0):
        super().__init__()
        check_conv_shape(image_shape)
        self.image_shape, self.cond, self.params, self.width = tuple(image_shape), cond, params_per_pixel, width
        extra = cond.out_dim if cond is not None else 0
        self.project = nn.Sequential(
            nn.Linear(z_dim + extra, hidden), nn.LeakyReLU(0.2), *([nn.Dropout(dropout)] if dropout else []),
            nn.Linear(hidden, 2 * width * 49), nn.LeakyReLU(0.2))
        self.net = nn.Sequential(
            nn.ConvTranspose2d(2 * width, width, 4, stride=2, padding=1), nn.LeakyReLU(0.2),
            nn.ConvTranspose2d(width, image_shape[0] * params_per_pixel, 4, stride=2, padding=1))

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        lead = z.shape[:-1]
        h = z
        if self.cond is not None:
            c = self.cond(y)
            h = torch.cat([z, c.expand(*lead, c.shape[-1])], dim=-1)
        maps = self.net(self.project(h.reshape(-1, h.shape[-1])).view(-1, 2 * self.width, 7, 7))
        channels = self.image_shape[0]
        # (M, C * P, 28, 28) -> (M, C, 28, 28, P) -> (..., C * 784 * P)
        maps = maps.view(-1, channels, self.params, 28, 28).permute(0, 1, 3, 4, 2)
        return maps.reshape(*lead, -1)


class ResBlock(nn.Module):
    """Two 3x3 convolutions with group norm and SiLU, the conditioning vector added in between as
    a per-channel shift, and a skip connection (1x1 convolution when the width changes)."""

    def __init__(self, c_in: int, c_out: int, cond_dim: int):
        super().__init__()
        self.norm1, self.conv1 = nn.GroupNorm(min(8, c_in), c_in), nn.Conv2d(c_in, c_out, 3, padding=1)
        self.shift = nn.Linear(cond_dim, c_out)
        self.norm2, self.conv2 = nn.GroupNorm(min(8, c_out), c_out), nn.Conv2d(c_out, c_out, 3, padding=1)
        self.skip = nn.Identity() if c_in == c_out else nn.Conv2d(c_in, c_out, 1)
        self.act = nn.SiLU()

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        h = self.conv1(self.act(self.norm1(x)))
        h = h + self.shift(c)[:, :, None, None]
        h = self.conv2(self.act(self.norm2(h)))
        return self.skip(x) + h


class ConvVelocityNet(nn.Module):
    """A small U-Net v(x_t, t, y) for (C, 28, 28) images, with the interface of the MLP velocity
    network: flattened x (N, C * 784), t (N,), labels (N,) in 0..K (K: "no label") -> (N, C * 784).

    To be quick on a CPU it works at 14x14 and 7x7 only: each 2x2 block of pixels becomes four
    channels (a pixel unshuffle, lossless) on the way in, and the last layer's channels become the
    2x2 blocks again on the way out. Time features and the label's embedding are joined and passed
    through a small MLP into one conditioning vector that shifts every residual block; a skip
    connection carries the 14x14 features to the way up. The last convolution starts at zero, so the untrained network predicts zero
    velocity and the first steps of training stay small."""

    def __init__(self, image_shape, n_classes: int, time_features: nn.Module, width: int = 32,
                 embed_dim: int = 64):
        super().__init__()
        check_conv_shape(image_shape)
        self.image_shape, self.n_classes, self.null = tuple(image_shape), n_classes, n_classes
        self.time = time_features
        self.embed = nn.Embedding(n_classes + 1, embed_dim)
        self.cond = nn.Sequential(nn.Linear(time_features.out_dim + embed_dim, embed_dim), nn.SiLU(),
                                  nn.Linear(embed_dim, embed_dim))
        w1, w2 = width, 2 * width
        c = 4 * image_shape[0]
        self.stem = nn.Conv2d(c, w1, 3, padding=1)                      # 14x14
        self.down1 = ResBlock(w1, w1, embed_dim)
        self.pool = nn.Conv2d(w1, w2, 3, stride=2, padding=1)           # -> 7x7
        self.mid1 = ResBlock(w2, w2, embed_dim)
        self.mid2 = ResBlock(w2, w2, embed_dim)
        self.up1 = ResBlock(w2 + w1, w1, embed_dim)                     # 14x14, with the skip
        self.out = nn.Sequential(nn.GroupNorm(min(8, w1), w1), nn.SiLU(), nn.Conv2d(w1, c, 3, padding=1))
        nn.init.zeros_(self.out[-1].weight)
        nn.init.zeros_(self.out[-1].bias)

    def forward(self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        n = len(x)
        c = self.cond(torch.cat([self.time(t), self.embed(y)], dim=1))
        h0 = self.down1(self.stem(nn.functional.pixel_unshuffle(x.reshape(n, *self.image_shape), 2)), c)
        h = self.mid2(self.mid1(self.pool(h0), c), c)
        h = self.up1(torch.cat([nn.functional.interpolate(h, scale_factor=2.0), h0], dim=1), c)
        return nn.functional.pixel_shuffle(self.out(h), 2).reshape(n, -1)


def n_weights(module: nn.Module) -> int:
    """Number of weights of ``module`` (what the notebooks print when they compare networks)."""
    return sum(math.prod(p.shape) for p in module.parameters())
