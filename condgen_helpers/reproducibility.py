"""Seeding and device choice, set once at the top of every notebook and CLI run."""

from __future__ import annotations

import os
import random

import numpy as np
import torch

from .errors import CondgenError

DEVICES = ("auto", "cpu", "cuda", "mps")


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and torch (CPU and CUDA); return a torch.Generator seeded the same way."""
    if not isinstance(seed, int) or seed < 0:
        raise CondgenError(f"seed must be a non-negative integer, got {seed!r}")
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    os.environ.setdefault("PYTHONHASHSEED", str(seed))
    return torch.Generator().manual_seed(seed)


def pick_device(name: str = "auto") -> torch.device:
    """``auto`` picks cuda, then mps, then cpu; an explicit name must be available here."""
    if name not in DEVICES:
        raise CondgenError(f"unknown device {name!r}: use one of {', '.join(DEVICES)}")
    cuda = torch.cuda.is_available()
    mps = getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
    if name == "auto":
        return torch.device("cuda" if cuda else "mps" if mps else "cpu")
    if name == "cuda" and not cuda:
        raise CondgenError("device 'cuda' was asked for but no CUDA GPU is visible: use --device cpu or auto")
    if name == "mps" and not mps:
        raise CondgenError("device 'mps' was asked for but Apple's MPS is not available: use --device cpu or auto")
    return torch.device(name)
