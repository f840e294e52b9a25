"""Tested building blocks for the condgen course on conditional generative models.

The package is layered; each layer imports only the layers below it (``tests/test_layers.py``):

1. ``errors``, ``files``, ``data`` (datasets as objects: ``ImageData``, ``Splits``), ``reproducibility``
2. ``nn``: building blocks (layers, conditioning modules, losses, pixel likelihoods, attributes)
3. ``models``: the recipes of the course (GANs, VAEs, flow matching) with typed settings, and the
   registry that names them
4. ``training``: the loop every model shares, and checkpoints
5. ``evaluation``: the evaluation classifier, the figures, the protocol against real data's floor
6. ``experiments``: the pipeline shared by ``condgen train`` and ``condgen evaluate``, the benchmark,
   the leaderboard, the run store, provenance
7. ``notebook``: what the notebooks show with (checks, plots, widgets)
8. ``cli``: the ``condgen`` command
"""

from .errors import CondgenError

__version__ = "0.1.0"
__all__ = ["CondgenError", "__version__"]
