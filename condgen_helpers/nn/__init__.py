"""Building blocks: layers, conditioning modules, losses, pixel likelihoods and pixel attributes.

They import torch and nothing of the package above ``errors``: models are built from them."""
