"""The attribute explorer, driven headless: moving a slider must change the picture, and only it."""

import matplotlib.pyplot as plt
import pytest
import torch

from condgen_helpers import CondgenError
from condgen_helpers.data import load_dataset
from condgen_helpers.models.attribute import AttributeCVAE
from condgen_helpers.notebook.attribute_widgets import attribute_explorer, render_attributes
from condgen_helpers.training import fit


@pytest.fixture(scope="module")
def model():
    train = load_dataset("digits", "train")
    torch.manual_seed(0)
    # the quick settings (no KL warm-up, a larger step): the sliders are tested, not the defaults
    m = AttributeCVAE(train.image_shape, 10, lr=1e-3, kl_warmup_steps=0)
    fit(m, train, epochs=8, seed=0, progress=False)
    return m


def test_render_follows_the_asked_offset_with_the_noise_fixed(model):
    thin, asked_thin, measured_thin = render_attributes(model, 4, [-1.5, 0.0], seed=3)
    thick, asked_thick, measured_thick = render_attributes(model, 4, [1.5, 0.0], seed=3)
    assert thin.shape == (8, 1, 8, 8)
    torch.testing.assert_close(asked_thick - asked_thin, torch.tensor([3.0, 0.0]))
    torch.testing.assert_close(asked_thin, model.scaler.class_mean[4] + torch.tensor([-1.5, 0.0]))
    assert measured_thick[:, 0].mean() > measured_thin[:, 0].mean() + 1.0
    again, _, _ = render_attributes(model, 4, [-1.5, 0.0], seed=3)
    torch.testing.assert_close(again, thin)  # same seed, same images
    with pytest.raises(CondgenError, match="one offset per attribute"):
        render_attributes(model, 4, [1.0])
    with pytest.raises(CondgenError, match="digit 12 is outside"):
        render_attributes(model, 12, [0.0, 0.0])


def test_explorer_redraws_when_a_slider_moves(model):
    w = attribute_explorer(model, n=6)
    sliders = {c.description: c for c in w.children if hasattr(c, "description")}
    assert {"class", "noise seed", "thickness", "slant"} <= set(sliders)
    w.update()
    before_images, before_asked, _ = w.result
    sliders["slant"].value = 2.0
    after_images, after_asked, after_measured = w.result
    assert after_images.shape == (6, 1, 8, 8)
    assert after_asked[1] - before_asked[1] == pytest.approx(2.0)
    assert not torch.allclose(after_images, before_images)
    sliders["class"].value = 7
    assert w.result[1][1].item() == pytest.approx(model.scaler.class_mean[7, 1].item() + 2.0, abs=1e-5)
    plt.close("all")
