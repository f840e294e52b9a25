"""The latent-space tools and the explorer's callback, driven headlessly (no browser)."""

import pytest
import torch

from condgen_helpers.data import load_dataset
from condgen_helpers.errors import CondgenError
from condgen_helpers.models.vae import CVAE, VAE
from condgen_helpers.notebook.latent_widgets import (
    LatentExplorer,
    decode_style,
    encode_style,
    every_label,
    interpolate_codes,
    latent_directions,
    render_latent_explorer,
    standardise,
    unstandardise,
)
from condgen_helpers.training import fit

SMALL = {"hidden": (32, 32), "z_dim": 4}


@pytest.fixture(scope="module")
def test_split():
    return load_dataset("digits", "test")


@pytest.fixture(scope="module")
def cvae():
    m = CVAE((1, 8, 8), 10, prior="learned", **SMALL)
    fit(m, load_dataset("digits", "train").subset(300), epochs=3, progress=False)
    # make the learned prior visibly class-specific, so standardising matters in the tests below
    with torch.no_grad():
        m.prior.mu.copy_(torch.arange(10.0).unsqueeze(1).expand(10, 4))
        m.prior.logvar.fill_(0.5)
    return m


def test_standardise_round_trip_and_fixed_prior_identity(cvae):
    z, y = torch.randn(5, 4), torch.tensor([0, 3, 3, 9, 1])
    eps = standardise(cvae, z, y)
    assert torch.allclose(eps[1], (z[1] - 3.0) / torch.exp(torch.tensor(0.25)))
    assert torch.allclose(unstandardise(cvae, eps, y), z, atol=1e-6)
    plain = VAE((1, 8, 8), **SMALL)
    assert torch.allclose(standardise(plain, z), z)


def test_every_label_keeps_the_code_and_changes_the_label(cvae, test_split):
    eps = encode_style(cvae, test_split.images[:2], test_split.labels[:2])
    grid = every_label(cvae, eps)
    assert grid.shape == (20, 1, 8, 8)
    # row 0 column k is the first code decoded with label k
    want = decode_style(cvae, eps[:1], torch.tensor([7]))
    assert torch.allclose(grid[7], want[0], atol=1e-6)
    assert not torch.allclose(grid[0], grid[1])
    with pytest.raises(CondgenError, match="conditional"):
        every_label(VAE((1, 8, 8), **SMALL), eps)


def test_interpolation_ends_and_midpoint():
    a, b = torch.zeros(4), torch.ones(4)
    path = interpolate_codes(a, b, steps=5)
    assert path.shape == (5, 4)
    assert torch.equal(path[0], a) and torch.equal(path[-1], b)
    assert torch.allclose(path[2], torch.full((4,), 0.5))
    with pytest.raises(CondgenError, match="at least 2"):
        interpolate_codes(a, b, steps=1)


def test_latent_directions_are_orthonormal_and_sorted(cvae, test_split):
    d, s = latent_directions(cvae, test_split.images, test_split.labels, k=3)
    assert d.shape == (3, 4) and s.shape == (3,)
    assert torch.allclose(d @ d.T, torch.eye(3), atol=1e-5)
    assert (s[:-1] >= s[1:]).all()


def test_render_explorer_responds_to_label_and_shift(cvae):
    eps, dirs = torch.zeros(4), torch.eye(4)[:2]
    base = render_latent_explorer(cvae, eps, 2, [0.0, 0.0], dirs)
    assert base.shape == (11, 1, 8, 8)
    assert torch.allclose(base[0], base[1 + 2])                   # the chosen label is also in the row
    assert not torch.allclose(base[0], render_latent_explorer(cvae, eps, 5, [0.0, 0.0], dirs)[0])
    assert not torch.allclose(base, render_latent_explorer(cvae, eps, 2, [2.0, 0.0], dirs))
    with pytest.raises(CondgenError, match="one per direction"):
        render_latent_explorer(cvae, eps, 2, [1.0], dirs)
    with pytest.raises(CondgenError, match="give a label"):
        render_latent_explorer(cvae, eps, None, [0.0, 0.0], dirs)


def test_explorer_widget_updates_headlessly(cvae, test_split):
    ex = LatentExplorer(cvae, test_split, show=False)
    first = ex.images.clone()
    assert first.shape == (11, 1, 8, 8)
    ex.label.value = (ex.label.value + 1) % 10                    # change the label: the left image changes
    assert not torch.allclose(ex.images[0], first[0])
    assert torch.allclose(ex.images[1:], first[1:])               # ... but the row with every label does not
    ex.moves[0].value = 2.0                                       # move along the first direction
    moved = ex.images.clone()
    assert not torch.allclose(moved[1:], first[1:])
    ex.index.value = 5                                            # another test digit
    assert not torch.allclose(ex.images, moved)
    ex.source.value = "prior draw"
    prior_view = ex.images.clone()
    ex.index.value = 6                                            # another prior draw
    assert not torch.allclose(ex.images, prior_view)
    assert ex.images.min() >= 0 and ex.images.max() <= 1


def test_explorer_on_the_plain_vae(test_split):
    m = VAE((1, 8, 8), **SMALL)
    ex = LatentExplorer(m, test_split, show=False)
    assert ex.label.disabled and ex.images.shape == (1, 1, 8, 8)
    before = ex.images.clone()
    ex.moves[1].value = -2.0
    assert not torch.allclose(ex.images, before)
