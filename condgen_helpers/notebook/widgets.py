"""Interactive explorers for the notebooks: a pure function computes what to show, a builder wires
ipywidgets to it. The pure functions are what the tests call, so the logic is checked without a
browser; the builders only connect sliders to them.
"""

from __future__ import annotations

import io

import numpy as np
import torch

from ..errors import CondgenError
from ..nn.layers import eval_mode

# --- choosing a class by its name ------------------------------------------------------------------

def class_names_for(n_classes: int, class_names=None) -> tuple[str, ...]:
    """The names of ``n_classes`` classes: ``class_names`` as given (checked), or "0".."K-1"."""
    if class_names is None:
        return tuple(str(i) for i in range(n_classes))
    names = tuple(str(c) for c in class_names)
    if len(names) != n_classes:
        raise CondgenError(f"got {len(names)} class names for a model of {n_classes} classes: pass the "
                           "training split's class_names")
    return names


def class_label(names: tuple[str, ...], i: int) -> str:
    """How a caption names class ``i``: "digit 4" among the digits, the name itself otherwise."""
    return f"digit {names[i]}" if names == tuple(str(j) for j in range(len(names))) else names[i]


def class_control(n_classes: int, class_names=None, value: int = 0, description: str = "class"):
    """A control whose ``value`` is a class index: a slider when the classes are the digits 0..9,
    a drop-down that shows the names otherwise (Fashion-MNIST's "Trouser", "Ankle boot", ...)."""
    import ipywidgets as w

    names = class_names_for(n_classes, class_names)
    if names == tuple(str(i) for i in range(n_classes)):
        return w.IntSlider(value=value, min=0, max=n_classes - 1, description=description,
                           continuous_update=False)
    return w.Dropdown(options=[(name, i) for i, name in enumerate(names)], value=value, description=description)


# --- conditional GAN explorer (notebook 02) -------------------------------------------------------


def explorer_noise(z_dim: int, seed: int, seed_b: int | None = None, mix: float = 0.0) -> torch.Tensor:
    """One noise vector (1, z_dim): the one drawn with ``seed``, or, given ``seed_b``, the point a
    fraction ``mix`` of the way from it to the one drawn with ``seed_b`` along a straight line."""
    if not 0.0 <= mix <= 1.0:
        raise CondgenError(f"mix must lie in [0, 1] (0 = first noise, 1 = second), got {mix}")
    z = torch.randn(1, z_dim, generator=torch.Generator().manual_seed(seed))
    if seed_b is None:
        return z
    z_b = torch.randn(1, z_dim, generator=torch.Generator().manual_seed(seed_b))
    return (1 - mix) * z + mix * z_b


@torch.no_grad()
def render_explorer(model, digit: int, seed: int, seed_b: int | None = None, mix: float = 0.0,
                    steps: int = 8) -> torch.Tensor:
    """What the explorer shows, as images (1 + steps + n_classes, C, H, W) in [0, 1]:

    - the digit asked for, from the chosen noise (the first image);
    - a path of ``steps`` images from the noise of ``seed`` to that of ``seed_b``, all of ``digit``
      (the same image repeated when there is no ``seed_b``);
    - the chosen noise under every label 0..K-1: the label picks the class, the noise the style.
    """
    if not getattr(model, "conditional", False):
        raise CondgenError(f"model {model.name!r} is unconditional: the explorer needs a conditional "
                           "model such as cgan or acgan")
    if steps < 2:
        raise CondgenError(f"steps must be at least 2 (the two ends of the path), got {steps}")
    z_dim, k = model.config.z_dim, model.n_classes
    # labels are checked before any image is made, so a bad digit gives one clear error
    labels = model.sample_labels(1, torch.tensor([digit]))
    z_now = explorer_noise(z_dim, seed, seed_b, mix)
    path = torch.cat([explorer_noise(z_dim, seed, seed_b, t) for t in torch.linspace(0, 1, steps).tolist()])
    z = torch.cat([z_now, path, z_now.expand(k, -1)])
    y = torch.cat([labels.cpu().expand(1 + steps), torch.arange(k)])
    return _generate(model, z, y)


def _generate(model, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """G(z, y) in eval mode (batch norm uses its running statistics, so one image is well defined)."""
    with eval_mode(model.G):
        return model.generate(z.to(model.device), y.to(model.device)).cpu()


def images_to_png(images: torch.Tensor, nrow: int, scale: int = 8) -> bytes:
    """Tile images (N, 1, H, W) in [0, 1] into a PNG (dark ink on white), each pixel ``scale`` wide."""
    from PIL import Image

    from .plots import grid_image

    arr = grid_image(images, nrow=nrow)
    arr = np.kron(1.0 - arr, np.ones((scale, scale)))
    buf = io.BytesIO()
    Image.fromarray((arr * 255).round().astype(np.uint8), mode="L").save(buf, format="PNG")
    return buf.getvalue()


def conditional_explorer(model, steps: int = 8, max_seed: int = 99, class_names=None):
    """Sliders for the class (by name when ``class_names`` are given, e.g. the training split's) and
    noise seed, an optional second seed to walk towards, and the images.

    Returns the ipywidgets box; ``box.images`` holds the tensor last shown (what the tests read).
    """
    import ipywidgets as w

    k = model.n_classes
    names = class_names_for(k, class_names)
    digit = class_control(k, class_names, description="class")
    seed = w.IntSlider(value=0, min=0, max=max_seed, description="noise seed")
    walk = w.Checkbox(value=False, description="walk to a second noise")
    seed_b = w.IntSlider(value=1, min=0, max=max_seed, description="second seed")
    mix = w.FloatSlider(value=0.0, min=0.0, max=1.0, step=0.05, description="position")
    picture = w.Image(format="png")
    caption = w.HTML()
    box = w.VBox([w.HBox([digit, seed]), w.HBox([walk, seed_b, mix]), picture, caption])

    def update(_=None) -> None:
        second = seed_b.value if walk.value else None
        images = render_explorer(model, digit.value, seed.value, second, mix.value, steps)
        box.images = images
        # one row: the current image | the path | every label with the current noise
        picture.value = images_to_png(images, nrow=len(images))
        caption.value = (f"{class_label(names, digit.value)} from noise seed {seed.value}"
                         + (f", {mix.value:.0%} of the way to seed {second}" if second is not None else "")
                         + f" | path of {steps} | same noise, every class: {', '.join(names)}")

    for control in (digit, seed, walk, seed_b, mix):
        control.observe(update, names="value")
    update()
    return box


# --- guidance explorer (notebook 07) ---------------------------------------------------------------

@torch.no_grad()
def render_guidance(model, label: int, guidance: float, n: int = 8, seed: int = 0,
                    steps: int | None = None) -> torch.Tensor:
    """What the guidance explorer shows, as images (2 n, C, H, W) in [0, 1]: ``n`` samples of
    ``label`` at g = 1 (the plain conditional model), then the same ``n`` noises at ``guidance``,
    so each column shows what guidance changes for one noise."""
    if not getattr(model, "guided", False):
        raise CondgenError(f"model {model.name!r} has no guidance scale: the explorer needs a guided "
                           "model such as cfm")
    if n < 1:
        raise CondgenError(f"n must be at least 1, got {n}")
    labels = model.sample_labels(n, torch.tensor(label))
    rows = [model.sample(n, labels=labels, generator=torch.Generator().manual_seed(seed), guidance=g,
                         steps=steps) for g in (1.0, guidance)]
    return torch.cat(rows)


def guidance_explorer(model, n: int = 8, max_guidance: float = 4.0, max_seed: int = 99, class_names=None):
    """Sliders for the guidance scale g, the class (by name when ``class_names`` are given) and the
    noise seed; two rows of images (g = 1 above, the chosen g below). Returns the ipywidgets box;
    ``box.images`` holds the last tensor."""
    import ipywidgets as w

    names = class_names_for(model.n_classes, class_names)
    scale = w.FloatSlider(value=2.0, min=0.0, max=max_guidance, step=0.25, description="guidance g",
                          continuous_update=False)
    label = class_control(model.n_classes, class_names, description="class")
    seed = w.IntSlider(value=0, min=0, max=max_seed, description="noise seed", continuous_update=False)
    picture = w.Image(format="png")
    caption = w.HTML()
    box = w.VBox([w.HBox([scale, label, seed]), picture, caption])

    def update(_=None) -> None:
        images = render_guidance(model, label.value, scale.value, n, seed.value)
        box.images = images
        picture.value = images_to_png(images, nrow=n)
        caption.value = (f"{class_label(names, label.value)}: top row g = 1 (plain conditional), bottom row "
                         f"g = {scale.value:g} (w = g - 1 = {scale.value - 1:g} in Ho and Salimans' notation), "
                         f"same noise in each column")

    for control in (scale, label, seed):
        control.observe(update, names="value")
    update()
    return box


# --- prompt explorer (notebook 08) -----------------------------------------------------------------

@torch.no_grad()
def render_prompt(model, prompt: str, negative: str = "", guidance: float = 2.0, n: int = 8, seed: int = 0,
                  steps: int | None = None) -> torch.Tensor:
    """What the prompt explorer shows, (2 n, C, H, W) in [0, 1]: ``n`` samples of ``prompt`` at
    ``guidance`` without a negative prompt, then the same ``n`` noises with ``negative``."""
    if n < 1:
        raise CondgenError(f"n must be at least 1, got {n}")
    rows = [model.sample(n, prompt, generator=torch.Generator().manual_seed(seed), negative=neg,
                         guidance=guidance, steps=steps) for neg in ("", negative)]
    return torch.cat(rows)


def prompt_explorer(model, n: int = 8, max_guidance: float = 4.0, max_seed: int = 99):
    """A prompt box, a negative-prompt box, sliders for g and the noise seed; two rows of images
    (without, then with the negative prompt). A word the model does not know is named in the caption.
    Returns the ipywidgets box; ``box.images`` holds the last tensor."""
    import ipywidgets as w

    prompt = w.Text(value="a thick seven leaning right", description="prompt", continuous_update=False)
    negative = w.Text(value="thick", description="negative", continuous_update=False)
    scale = w.FloatSlider(value=2.0, min=0.0, max=max_guidance, step=0.25, description="guidance g",
                          continuous_update=False)
    seed = w.IntSlider(value=0, min=0, max=max_seed, description="noise seed", continuous_update=False)
    picture = w.Image(format="png")
    caption = w.HTML()
    box = w.VBox([w.HBox([prompt, negative]), w.HBox([scale, seed]), picture, caption])

    def update(_=None) -> None:
        try:
            images = render_prompt(model, prompt.value, negative.value, scale.value, n, seed.value)
        except CondgenError as err:
            caption.value = f"<b>{err}</b>"
            return
        box.images = images
        picture.value = images_to_png(images, nrow=n)
        caption.value = (f"top: “{prompt.value}” at g = {scale.value:g}; bottom: the same noise with the "
                         f"negative prompt “{negative.value}”")

    for control in (prompt, negative, scale, seed):
        control.observe(update, names="value")
    update()
    return box
