"""Moving through a VAE's latent space: keep the code, change the label; interpolate; explore.

A code is kept *standardised*, eps = (z - mu_y) / sigma_y under the prior p(z | y): with the fixed
prior N(0, I) that is z itself; with a learned prior per class it is the code's position relative to
its class, which is what "the same style" means when the label changes. The explorer's callback is
the pure function :func:`render_latent_explorer`; :class:`LatentExplorer` only wires it to sliders.
"""

from __future__ import annotations

import torch

from ..errors import CondgenError
from ..nn.layers import reparameterise
from .widgets import class_control, class_names_for


def _label(model, label: int | None, n: int) -> torch.Tensor | None:
    if not model.conditional:
        return None
    if label is None:
        raise CondgenError(f"model {model.name!r} is conditional: give a label 0..{model.n_classes - 1}")
    return model.sample_labels(n, torch.tensor(label))


@torch.no_grad()
def standardise(model, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
    """Codes z (N, z_dim) -> eps = (z - mu_y) / sigma_y under the model's prior."""
    mu, logvar = model.prior_params(labels, len(z))
    return (z.to(mu.device) - mu) / (0.5 * logvar).exp()


@torch.no_grad()
def unstandardise(model, eps: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
    """eps (N, z_dim) -> codes z = mu_y + sigma_y * eps under the model's prior."""
    mu, logvar = model.prior_params(labels, len(eps))
    return reparameterise(mu, logvar, eps.to(mu.device))


@torch.no_grad()
def encode_style(model, images: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
    """The encoder's mean code of each image, standardised under its own class's prior: (N, z_dim)."""
    labels = labels if model.conditional else None
    with model.evaluating():
        mu, _ = model.encode(images, labels)
    return standardise(model, mu, labels).cpu()


@torch.no_grad()
def decode_style(model, eps: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
    """Decode standardised codes eps (N, z_dim) with labels (N,): images (N, C, H, W) in [0, 1]."""
    labels = labels if model.conditional else None
    if labels is not None:
        labels = labels.to(model.device)
    with model.evaluating():
        return model.decode_mean(unstandardise(model, eps, labels), labels).cpu()


def every_label(model, eps: torch.Tensor) -> torch.Tensor:
    """Each code of eps (N, z_dim) decoded with every label: (N * n_classes, C, H, W), one row per code."""
    if not model.conditional:
        raise CondgenError(f"model {model.name!r} takes no label: use a conditional model such as cvae")
    k = model.n_classes
    return decode_style(model, eps.repeat_interleave(k, 0), torch.arange(k).repeat(len(eps)))


def interpolate_codes(eps_a: torch.Tensor, eps_b: torch.Tensor, steps: int = 8) -> torch.Tensor:
    """``steps`` codes on the straight line from eps_a to eps_b (each (z_dim,)), ends included."""
    if steps < 2:
        raise CondgenError(f"an interpolation needs at least 2 steps, got {steps}")
    t = torch.linspace(0, 1, steps).unsqueeze(1)
    return (1 - t) * eps_a + t * eps_b


@torch.no_grad()
def latent_directions(model, images: torch.Tensor, labels: torch.Tensor | None = None,
                      k: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``k`` directions (k, z_dim) along which the standardised codes of ``images`` vary most
    (principal components) and the spread (k,) of the codes along each."""
    eps = encode_style(model, images, labels)
    centred = eps - eps.mean(0)
    _, s, v = torch.linalg.svd(centred, full_matrices=False)
    return v[:k], s[:k] / (len(eps) - 1) ** 0.5


def render_latent_explorer(model, eps: torch.Tensor, label: int | None, shifts, directions: torch.Tensor,
                    spreads: torch.Tensor | None = None) -> torch.Tensor:
    """The explorer's callback: move the code eps (z_dim,) by shifts[i] * spreads[i] along each
    direction, then decode it. Returns (1 + n_classes, C, H, W) for a conditional model: the image for
    ``label`` first, then the same code with every label; (1, C, H, W) for a plain VAE."""
    shifts = torch.as_tensor(shifts, dtype=eps.dtype)
    if len(shifts) != len(directions):
        raise CondgenError(f"got {len(shifts)} shifts for {len(directions)} directions: give one per direction")
    spreads = torch.ones(len(directions)) if spreads is None else spreads
    moved = (eps + (shifts * spreads) @ directions).unsqueeze(0)
    chosen = decode_style(model, moved, _label(model, label, 1))
    if not model.conditional:
        return chosen
    return torch.cat([chosen, every_label(model, moved)])


class LatentExplorer:
    """Sliders over a VAE's latent space: where the code comes from (a test digit's encoding, or a
    draw from the prior), the label, and a move along the two main latent directions.

    ``images`` holds what the last update drew, so tests can drive the sliders without a browser.
    """

    def __init__(self, model, data, seed: int = 0, show: bool = True):
        import ipywidgets as W

        self.model, self.data, self.seed, self.show = model, data, seed, show
        labels = data.labels if model.conditional else None
        self.directions, self.spreads = latent_directions(model, data.images, labels)
        self.source = W.ToggleButtons(options=["test digit", "prior draw"], description="code from")
        self.index = W.IntSlider(0, 0, len(data) - 1, description="which", continuous_update=False)
        self.names = class_names_for(model.n_classes, getattr(data, "class_names", None))
        self.label = class_control(model.n_classes, self.names, int(data.labels[0]), "label")
        self.label.disabled = not model.conditional
        self.moves = [W.FloatSlider(0.0, min=-3.0, max=3.0, step=0.25, description=f"direction {i + 1}",
                                    continuous_update=False) for i in range(len(self.directions))]
        self.output = W.Output()
        self.images: torch.Tensor | None = None
        for w in (self.source, self.index, self.label, *self.moves):
            w.observe(self.update, names="value")
        self.widget = W.VBox([W.HBox([self.source, self.index]), W.HBox([self.label]),
                              W.HBox(self.moves), self.output])
        self.update()

    def code(self) -> torch.Tensor:
        """The standardised code the sliders start from: a test digit's encoding, or a seeded prior draw."""
        i = self.index.value
        if self.source.value == "test digit":
            labels = self.data.labels[i:i + 1] if self.model.conditional else None
            return encode_style(self.model, self.data.images[i:i + 1], labels)[0]
        g = torch.Generator().manual_seed(self.seed * 100_003 + i)
        return torch.randn(self.model.config.z_dim, generator=g)

    def update(self, _change=None) -> None:
        shifts = [m.value for m in self.moves]
        label = self.label.value if self.model.conditional else None
        self.images = render_latent_explorer(self.model, self.code(), label, shifts, self.directions, self.spreads)
        if self.show:
            self._draw()

    def _draw(self) -> None:
        import matplotlib.pyplot as plt

        from .plots import show_grid

        self.output.clear_output(wait=True)
        with self.output:
            fig, axes = plt.subplots(1, 2, figsize=(7.5, 1.6), dpi=80,
                                     gridspec_kw={"width_ratios": [1, 5 if self.model.conditional else 0.01]})
            show_grid(self.images[:1], nrow=1, ax=axes[0], title=self.names[self.label.value]
                      if self.model.conditional else "decoded")
            if self.model.conditional:
                show_grid(self.images[1:], nrow=self.model.n_classes, ax=axes[1], title="same code, every label")
            else:
                axes[1].axis("off")
            plt.show()
