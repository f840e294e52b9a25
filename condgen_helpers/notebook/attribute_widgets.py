"""The attribute explorer of notebook 05: sliders for the digit, its thickness and slant, and the noise.

``render_attributes`` is the pure function behind it (tested headless); ``attribute_explorer`` wires
it to ipywidgets. Sliders move an attribute away from the digit's typical value, in standard units
of the training split, while the noise z stays fixed: only the asked attribute changes.
"""

from __future__ import annotations

import torch

from ..errors import CondgenError


def render_attributes(model, digit: int, offsets, seed: int = 0, n: int = 8):
    """``n`` samples of ``digit`` with attributes at the class mean plus ``offsets`` (one per
    attribute, standardised units). Returns (images (n, C, H, W), asked (k,), measured (n, k))."""
    k = len(model.attribute_names)
    offsets = torch.as_tensor(offsets, dtype=torch.float32).flatten()
    if len(offsets) != k:
        raise CondgenError(f"give one offset per attribute ({', '.join(model.attribute_names)}), "
                           f"got {len(offsets)}")
    if not 0 <= int(digit) < model.n_classes:
        raise CondgenError(f"digit {digit} is outside the classes: use 0..{model.n_classes - 1}")
    asked = model.scaler.class_mean[int(digit)].cpu() + offsets
    labels = torch.full((n,), int(digit), dtype=torch.long)
    # the same seed gives the same z, so moving a slider changes only the condition
    images = model.sample(n, labels, torch.Generator().manual_seed(int(seed)), attributes=asked.expand(n, -1))
    return images, asked, model.scaler(images).cpu()


def attribute_explorer(model, n: int = 8, limit: float = 2.5, class_names=None):
    """Sliders for digit, one per attribute (offset from the digit's typical value) and seed; shows the
    samples and their measured attributes. Returns the ipywidgets ``interactive`` object, whose
    ``result`` holds the last (images, asked, measured)."""
    import ipywidgets as widgets
    import matplotlib.pyplot as plt

    from .plots import show_grid
    from .widgets import class_control

    names = model.attribute_names

    def show(digit: int, seed: int, **offsets):
        images, asked, measured = render_attributes(model, digit, [offsets[a] for a in names], seed, n)
        fig, ax = plt.subplots(figsize=(0.6 * n, 1.1))
        said = ", ".join(f"{a} {v:+.2f}" for a, v in zip(names, asked.tolist(), strict=True))
        got = ", ".join(f"{v:+.2f}" for v in measured.mean(0).tolist())
        show_grid(images, nrow=n, ax=ax, title=f"asked: {said}  |  measured mean: {got}")
        plt.show()
        return images, asked, measured

    sliders = {a: widgets.FloatSlider(value=0.0, min=-limit, max=limit, step=0.25, description=a,
                                      continuous_update=False) for a in names}
    digit = class_control(model.n_classes, class_names, value=3, description="class")
    seed = widgets.IntSlider(value=0, min=0, max=99, description="noise seed", continuous_update=False)
    return widgets.interactive(show, digit=digit, seed=seed, **sliders)
