import io

import pytest
import torch

from condgen_helpers import CondgenError
from condgen_helpers.models import build_model
from condgen_helpers.notebook.widgets import (
    conditional_explorer,
    explorer_noise,
    images_to_png,
    render_explorer,
)

STEPS = 5


@pytest.fixture(scope="module")
def cgan():
    torch.manual_seed(0)
    return build_model("cgan", (1, 8, 8)).eval()


def _g(model, z, y):
    with torch.no_grad():
        return model.G(z, torch.tensor(y))


def test_explorer_noise_walks_a_straight_line():
    a, b = explorer_noise(8, 3), explorer_noise(8, 4)
    assert torch.equal(explorer_noise(8, 3, 4, 0.0), a) and torch.allclose(explorer_noise(8, 3, 4, 1.0), b)
    assert torch.allclose(explorer_noise(8, 3, 4, 0.25), 0.75 * a + 0.25 * b)
    assert not torch.equal(a, b)
    with pytest.raises(CondgenError, match=r"mix must lie in \[0, 1\]"):
        explorer_noise(8, 3, 4, 1.5)


def test_render_shows_the_digit_the_path_and_every_label(cgan):
    images = render_explorer(cgan, digit=7, seed=3, steps=STEPS)
    assert images.shape == (1 + STEPS + 10, 1, 8, 8)
    z = explorer_noise(cgan.config.z_dim, 3)
    assert torch.allclose(images[0], _g(cgan, z, [7])[0])
    assert all(torch.equal(images[1 + i], images[0]) for i in range(STEPS))  # no second seed: no walk
    every_label = _g(cgan, z.expand(10, -1), list(range(10)))
    assert torch.allclose(images[1 + STEPS:], every_label)
    assert torch.allclose(images[1 + STEPS + 7], images[0])  # the chosen digit is among them


def test_render_walks_from_one_noise_to_the_other(cgan):
    images = render_explorer(cgan, digit=2, seed=3, seed_b=9, mix=1.0, steps=STEPS)
    z_dim = cgan.config.z_dim
    start, end = _g(cgan, explorer_noise(z_dim, 3), [2]), _g(cgan, explorer_noise(z_dim, 9), [2])
    assert torch.allclose(images[1], start[0]) and torch.allclose(images[STEPS], end[0], atol=1e-6)
    assert torch.allclose(images[0], end[0], atol=1e-6)  # mix = 1: the current image is the far end
    assert not torch.allclose(images[1], images[STEPS])


def test_render_refuses_bad_input(cgan):
    with pytest.raises(CondgenError, match="label 10 is outside the classes"):
        render_explorer(cgan, digit=10, seed=0)
    with pytest.raises(CondgenError, match="steps must be at least 2"):
        render_explorer(cgan, digit=1, seed=0, steps=1)
    with pytest.raises(CondgenError, match="unconditional"):
        render_explorer(build_model("gan", (1, 8, 8)), digit=1, seed=0)


def test_png_has_the_tiled_size():
    from PIL import Image

    png = images_to_png(torch.rand(6, 1, 8, 8), nrow=3, scale=2)
    img = Image.open(io.BytesIO(png))
    # make_grid: 3 columns and 2 rows of 8 pixels with 1-pixel padding around each, times the scale
    assert img.size == ((3 * 9 + 1) * 2, (2 * 9 + 1) * 2)


def test_sliders_update_the_picture(cgan):
    box = conditional_explorer(cgan, steps=STEPS)
    (digit, seed), (walk, seed_b, mix) = box.children[0].children, box.children[1].children
    picture, caption = box.children[2], box.children[3]
    first_png, first = picture.value, box.images
    assert first_png[:8] == b"\x89PNG\r\n\x1a\n"

    digit.value = 4
    assert picture.value != first_png and "digit 4" in caption.value
    assert torch.allclose(box.images, render_explorer(cgan, 4, 0, steps=STEPS))
    assert not torch.allclose(box.images[0], first[0])

    seed.value = 5
    assert torch.allclose(box.images, render_explorer(cgan, 4, 5, steps=STEPS))

    mix.value = 0.5  # ignored until the walk is switched on
    assert torch.allclose(box.images, render_explorer(cgan, 4, 5, steps=STEPS))
    walk.value = True
    assert torch.allclose(box.images, render_explorer(cgan, 4, 5, seed_b.value, 0.5, steps=STEPS))
    assert "50% of the way to seed 1" in caption.value


def test_fashion_classes_are_chosen_and_shown_by_name(cgan):
    """With Fashion-MNIST's names the class control is a drop-down of names whose value is still the
    index, and the caption names the class; digits keep their slider."""
    from ipywidgets import Dropdown, IntSlider

    from condgen_helpers.data import FASHION_CLASSES
    from condgen_helpers.notebook.widgets import class_control, guidance_explorer

    box = conditional_explorer(cgan, steps=STEPS, class_names=FASHION_CLASSES)
    control = box.children[0].children[0]
    assert isinstance(control, Dropdown) and control.options[9] == ("Ankle boot", 9)
    control.value = 9
    assert box.children[-1].value.startswith("Ankle boot from noise seed")
    assert torch.equal(box.images, render_explorer(cgan, digit=9, seed=0, steps=STEPS))
    assert isinstance(class_control(10), IntSlider)
    with pytest.raises(CondgenError, match="3 class names for a model of 10 classes"):
        conditional_explorer(cgan, class_names=("a", "b", "c"))
    with pytest.raises(CondgenError, match="no guidance scale"):
        guidance_explorer(cgan, class_names=FASHION_CLASSES)
