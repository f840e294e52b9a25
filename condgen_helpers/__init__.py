"""Tested building blocks for the condgen course on conditional generative models.

One module per idea: ``data`` (datasets), ``reproducibility`` (seeds, devices), ``models``
(networks), ``losses`` (objectives, each next to the equation it implements), ``training``
(loops, progress bars, NaN guard), ``checkpoints`` (save/load with ``weights_only=True``),
``evaluation`` (the digit classifier and the metrics built on it), ``plots``, ``widgets`` and
``cli`` (the ``condgen`` command).
"""

from .errors import CondgenError

__version__ = "0.1.0"
__all__ = ["CondgenError", "__version__"]
