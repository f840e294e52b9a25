"""Training: the loop every model shares, and checkpoints that rebuild a model without running code."""

from .checkpoints import load_checkpoint, save_checkpoint
from .loop import History, TrainingDiverged, fit

__all__ = ["History", "TrainingDiverged", "fit", "load_checkpoint", "save_checkpoint"]
