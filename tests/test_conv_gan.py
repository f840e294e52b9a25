"""The GAN family on 28x28 images: convolutional networks chosen by image size, the conditioning
pieces unchanged, shapes, and a short training on real (upscaled) digits that must improve."""

import pytest
import torch
import torch.nn.functional as F

from condgen_helpers.data import load_dataset
from condgen_helpers.models import build_model
from condgen_helpers.models.gan import (
    ConvAuxiliaryClassifierDiscriminator,
    ConvDiscriminator,
    ConvGenerator,
    ConvProjectionDiscriminator,
    Discriminator,
    Generator,
)
from condgen_helpers.nn.conv import is_28x28
from condgen_helpers.training import fit

SHAPE = (1, 28, 28)


@pytest.mark.parametrize("name,d_type", [("gan", ConvDiscriminator), ("cgan", ConvDiscriminator),
                                         ("cgan-proj", ConvProjectionDiscriminator),
                                         ("acgan", ConvAuxiliaryClassifierDiscriminator)])
def test_28x28_images_get_convolutional_networks_and_8x8_keep_the_mlps(name, d_type):
    big, small = build_model(name, SHAPE, 10), build_model(name, (1, 8, 8), 10)
    assert isinstance(big.G, ConvGenerator) and isinstance(big.D, d_type)
    assert isinstance(small.G, Generator) and not isinstance(small.D, (ConvDiscriminator, d_type))
    assert is_28x28(SHAPE) and not is_28x28((1, 8, 8)) and not is_28x28((2,))
    # the switch: the MLPs on 28x28 images, by the network setting
    forced = build_model(name, SHAPE, 10, network="mlp")
    assert forced.network == "mlp" and isinstance(forced.G, Generator)


@pytest.mark.parametrize("name", ["gan", "cgan", "cgan-proj", "acgan"])
def test_shapes_and_ranges_on_28x28(name):
    model = build_model(name, SHAPE, 10)
    labels = torch.arange(6) % 10 if model.conditional else None
    images = model.sample(6, labels=labels, generator=torch.Generator().manual_seed(0))
    assert images.shape == (6, 1, 28, 28) and 0 <= images.min() and images.max() <= 1
    x = torch.rand(6, *SHAPE)
    out = model.D(x) if name in ("gan", "acgan") else model.D(x, torch.arange(6))
    logits = out[0] if name == "acgan" else out
    assert logits.shape == (6,)
    if name == "acgan":
        assert out[1].shape == (6, 10)


def test_the_label_embedding_reaches_the_convolutional_generator():
    torch.manual_seed(0)
    g = ConvGenerator(8, SHAPE, cond=build_model("cgan", SHAPE, 10).G.cond).eval()
    z = torch.randn(1, 8).expand(2, -1)
    a, b = g(z, torch.tensor([0, 1]))
    assert not torch.allclose(a, b)  # same noise, other label, other image


def _digits_28():
    """Real handwriting at 28x28 without a download: the 8x8 training digits, upscaled."""
    train = load_dataset("digits", "train")
    return F.interpolate(train.images, size=28, mode="bilinear", align_corners=False).clamp(0, 1), train.labels


def _template_accuracy(images, labels, x, y) -> float:
    """A judge independent of the GAN: each image gets the class whose mean training image is nearest."""
    means = torch.stack([x[y == c].mean(0) for c in range(10)]).flatten(1)
    return (torch.cdist(images.flatten(1), means).argmin(1) == labels).float().mean().item()


@pytest.mark.slow
def test_short_training_of_the_convolutional_cgan_improves():
    x, y = _digits_28()
    asked = torch.arange(10).repeat_interleave(20)
    real = _template_accuracy(x, y, x, y)
    torch.manual_seed(0)
    model = build_model("cgan", SHAPE, 10)
    before = _template_accuracy(model.sample(200, labels=asked, generator=torch.Generator().manual_seed(1)), asked, x, y)
    fit(model, (x, y), epochs=20, progress=False)
    after = _template_accuracy(model.sample(200, labels=asked, generator=torch.Generator().manual_seed(1)), asked, x, y)
    # chance is 0.1 (sd 0.02 at n = 200): the untrained generator is near it; the trained one follows
    # the label about as well as the judge reads real digits
    assert before < 0.1 + 3 * 0.02 and after > 0.5 * real, (before, after, real)


def test_mlp_discriminator_is_still_used_for_other_shapes():
    assert isinstance(build_model("gan", (1, 16, 16), 10).D, Discriminator)
