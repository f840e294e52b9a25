"""The convolutional networks of the VAE family and the flow model at 28x28: shapes, the output
layout the likelihoods read, the choice by image size, the switch, and bad input."""

import pytest
import torch

from condgen_helpers.errors import CondgenError
from condgen_helpers.models import build_model
from condgen_helpers.models.flow import TimeFeatures
from condgen_helpers.nn.conditioning import LabelEmbedding
from condgen_helpers.nn.conv import (
    ConvDecoder,
    ConvEncoder,
    ConvVelocityNet,
    is_28x28,
    pick_network,
)
from condgen_helpers.nn.likelihoods import BernoulliPixels, CategoricalPixels

SHAPE = (1, 28, 28)


def test_the_network_is_chosen_by_image_size_and_can_be_switched():
    assert pick_network("auto", SHAPE) == "conv" and pick_network("auto", (1, 8, 8)) == "mlp"
    assert pick_network("mlp", SHAPE) == "mlp"
    assert is_28x28(SHAPE) and not is_28x28((1, 8, 8))
    for name in ("gan", "cgan", "cgan-proj", "acgan", "tacgan", "vae", "cvae", "cvae-attr", "cfm"):
        assert build_model(name, SHAPE).network == "conv"
        assert build_model(name, (1, 8, 8)).network == "mlp"
        assert build_model(name, SHAPE, network="mlp").network == "mlp"
    assert isinstance(build_model("cvae", SHAPE).encoder, ConvEncoder)
    assert isinstance(build_model("cfm", SHAPE).v, ConvVelocityNet)


@pytest.mark.parametrize("name", ["cgan", "cvae", "cfm"])
def test_asking_for_convolutions_on_8x8_images_fails_in_one_line(name):
    with pytest.raises(CondgenError, match="28x28") as info:
        build_model(name, (1, 8, 8), network="conv")
    assert "\n" not in str(info.value)


def test_a_misspelt_network_names_the_choices():
    with pytest.raises(CondgenError, match="choices: 'auto', 'mlp', 'conv'"):
        build_model("cvae", SHAPE, network="cnn")


def test_encoder_reads_images_and_flattened_images_alike():
    enc = ConvEncoder(SHAPE, z_dim=5, cond=LabelEmbedding(10, 7))
    x, y = torch.rand(3, *SHAPE), torch.tensor([0, 4, 9])
    mu, logvar = enc(x, y)
    assert mu.shape == logvar.shape == (3, 5)
    mu_flat, _ = enc(x.flatten(1), y)
    torch.testing.assert_close(mu, mu_flat)


@pytest.mark.parametrize("params", [1, 4])
def test_decoder_lays_out_each_pixels_parameters_together(params):
    """Parameter j of pixel i sits at position i * params + j, the layout the likelihoods unflatten:
    checked against the transposed convolution's own maps, read channel by channel."""
    dec = ConvDecoder(6, SHAPE, params_per_pixel=params)
    z = torch.randn(2, 6)
    out = dec(z)
    assert out.shape == (2, 784 * params)
    maps = dec.net(dec.project(z).view(-1, 2 * dec.width, 7, 7))   # (2, params, 28, 28)
    for j in range(params):
        torch.testing.assert_close(out.view(2, 784, params)[:, :, j], maps[:, j].flatten(1))
    # leading dimensions (k importance samples, N images) pass through
    assert dec(torch.randn(3, 2, 6)).shape == (3, 2, 784 * params)


def test_decoder_outputs_are_valid_likelihood_parameters():
    for lik in (BernoulliPixels(), CategoricalPixels(4)):
        dec = ConvDecoder(6, SHAPE, params_per_pixel=lik.params_per_pixel)
        out = dec(torch.randn(5, 6))
        x = torch.rand(5, *SHAPE)
        logp = lik.log_prob(out, lik.targets(x))
        assert logp.shape == (5,) and torch.isfinite(logp).all() and (logp < 0).all()
        assert lik.mean(out).shape == (5, 784)


def test_velocity_unet_keeps_the_mlp_interface_and_starts_at_zero():
    net = ConvVelocityNet(SHAPE, 10, TimeFeatures(32), width=8, embed_dim=16)
    x, t, y = torch.randn(4, 784), torch.rand(4), torch.tensor([0, 3, 9, 10])  # 10: "no label"
    v = net(x, t, y)
    assert v.shape == (4, 784)
    assert torch.count_nonzero(v) == 0, "the last layer starts at zero: an untrained net predicts no motion"
    # after one step the velocity depends on the label: the same x and t, other labels, other outputs
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    loss = (net(x, t, y) - torch.randn(4, 784)).pow(2).mean()
    loss.backward()
    opt.step()
    with torch.no_grad():
        a = net(x[:1].repeat(2, 1), t[:1].repeat(2), torch.tensor([1, 7]))
    assert not torch.allclose(a[0], a[1])


def test_the_conv_cvae_trains_one_step_and_reports_nats_and_bits():
    model = build_model("cvae", SHAPE)
    x, y = (torch.rand(8, *SHAPE) > 0.7).float(), torch.arange(8) % 10
    out = model.train_step(x, y)
    assert set(out) >= {"nelbo", "recon", "kl"}
    b = model.bounds(x, y, k=4, generator=torch.Generator().manual_seed(0))
    assert b["elbo"].shape == b["iw"].shape == (8,) and torch.isfinite(b["iw"]).all()
    # an untrained Bernoulli decoder is near a coin per pixel: about 784 ln 2 nats (1 bit per pixel)
    bits_per_dim = -b["elbo"].mean().item() / (784 * torch.log(torch.tensor(2.0)).item())
    assert 0.5 < bits_per_dim < 3.0


def test_full_size_defaults_are_steps_so_a_subset_trains_as_long():
    """On MNIST the defaults are optimiser steps: the epochs follow from the training split's size
    (hand-computed: 50,000 // 64 = 781 batches an epoch, 3,334 // 64 = 52)."""
    from condgen_helpers.models import model_class

    cgan = model_class("cgan")
    assert cgan.epochs_for("mnist") == 5                      # ceil(3900 / 781)
    assert cgan.epochs_for("mnist", 3334) == 75               # ceil(3900 / 52)
    assert cgan.epochs_for("digits", 3334) == cgan.default_epochs == 400
    cvae = model_class("cvae")
    assert cvae.settings_for("mnist") == {"dropout": 0.1} and cvae.settings_for("digits") == {}
    cfm = build_model("cfm", SHAPE)
    assert (cfm.batch_size, cfm.sample_steps, cfm.lr, cfm.max_grad_norm) == (64, 20, 1e-3, 1.0)
    assert model_class("cfm").epochs_for("mnist", 3334) == 77   # ceil(4000 / 52): its batches of 64 on MNIST
    assert model_class("cfm").epochs_for("mnist") == 6          # ceil(4000 / 781)
    small = build_model("cfm", (1, 8, 8))
    assert (small.batch_size, small.sample_steps, small.lr, small.max_grad_norm) == (128, 50, 3e-3, None)
    assert build_model("cfm", SHAPE, lr=5e-4, sample_steps=7).lr == 5e-4


def test_dataset_defaults_apply_under_the_users_settings():
    """pipeline.train builds a model with the dataset's defaults, and a setting passed by hand wins."""
    from condgen_helpers.data import ImageData, Splits
    from condgen_helpers.experiments.pipeline import train

    def split(name, n):
        g = torch.Generator().manual_seed(n)
        return ImageData("mnist", name, torch.rand(n, *SHAPE, generator=g), torch.arange(n) % 10,
                         tuple("0123456789"), 256)

    splits = Splits(split("train", 20), split("val", 10), split("test", 10))
    model, _, epochs = train("cvae", splits, epochs=0, device="cpu", progress=False)
    assert model.config.dropout == 0.1 and epochs == 0
    model, _, _ = train("cvae", splits, epochs=0, device="cpu", progress=False, dropout=0.3)
    assert model.config.dropout == 0.3


def test_a_unet_width_its_group_norms_cannot_split_fails_in_one_line():
    with pytest.raises(CondgenError, match="multiple of 8"):
        build_model("cfm", SHAPE, width=12)
    assert build_model("cfm", (1, 8, 8), width=12).network == "mlp"  # the MLP ignores the width
