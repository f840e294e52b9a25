"""The VAE and cVAE recipes: shapes, ranges, likelihood bookkeeping, bad input, and a short training."""

import math

import pytest
import torch

from condgen_helpers.data import load_dataset
from condgen_helpers.errors import CondgenError
from condgen_helpers.evaluation import likelihood_figures
from condgen_helpers.experiments.benchmark import TARGETS
from condgen_helpers.models import MODELS, build_model
from condgen_helpers.models.vae import CVAE, VAE
from condgen_helpers.nn.likelihoods import BernoulliPixels, CategoricalPixels
from condgen_helpers.training import fit, load_checkpoint, save_checkpoint

SMALL = {"hidden": (32, 32), "z_dim": 4, "iw_samples": 20}


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits", "train")


def test_registry_and_targets():
    assert MODELS["vae"] == "condgen_helpers.models.vae:VAE" and MODELS["cvae"] == "condgen_helpers.models.vae:CVAE"
    assert isinstance(build_model("cvae", (1, 8, 8), **SMALL), CVAE)
    assert {f for f, _, _ in TARGETS["cvae"]} >= {"test_nll_x_given_y_nats", "decoder_means.conditional_accuracy",
                                                 "train_seconds"}


def test_shapes_and_ranges(digits):
    m = CVAE((1, 8, 8), 10, **SMALL)
    x, y = digits.images[:5], digits.labels[:5]
    mu, logvar = m.encode(x, y)
    assert mu.shape == logvar.shape == (5, 4)
    assert m.decode(mu, y).shape == (5, 64 * 17)              # 17 logits per pixel
    for images in (m.reconstruct(x, y), m.sample(7, labels=torch.arange(7)), m.decode_mean(mu, y)):
        assert images.shape[1:] == (1, 8, 8)
        assert images.min() >= 0 and images.max() <= 1
    terms = m.elbo_terms(x, y)
    assert (terms["log_px"] <= 0).all()                        # a log-probability of a discrete image
    assert (terms["kl"] >= 0).all()
    assert torch.allclose(terms["elbo"], terms["log_px"] - terms["kl"])


def test_the_label_reaches_the_decoder_and_the_plain_vae_ignores_it(digits):
    m = CVAE((1, 8, 8), 10, **SMALL)
    # label vectors start as one-hot codes, zero-padded to label_dim
    table = m.decoder.cond.table.weight
    assert table.shape == (10, 16) and torch.equal(table[:, :10], torch.eye(10)) and table[:, 10:].abs().sum() == 0
    z = torch.zeros(1, 4)
    assert not torch.allclose(m.decode(z, torch.tensor([1])), m.decode(z, torch.tensor([7])))
    v = VAE((1, 8, 8), 10, **SMALL)
    with pytest.raises(CondgenError, match="unconditional"):
        v.sample(3, labels=torch.tensor([1, 2, 3]))
    with pytest.raises(CondgenError, match="pass the labels"):
        m.encode(digits.images[:2])


def test_bad_settings_and_labels():
    with pytest.raises(CondgenError, match="prior"):
        VAE((1, 8, 8), prior="mixture")
    with pytest.raises(CondgenError, match="likelihood"):
        VAE((1, 8, 8), likelihood="gaussian")
    with pytest.raises(CondgenError, match="levels"):
        VAE((1, 8, 8), likelihood="categorical", levels=1)
    with pytest.raises(CondgenError, match="outside the classes"):
        CVAE((1, 8, 8), 10, **SMALL).sample(2, labels=torch.tensor([3, 10]))


def test_categorical_mean_and_uniform_decoder():
    lik = CategoricalPixels(17)
    out = torch.full((2, 64 * 17), -30.0)
    out.view(2, 64, 17)[0, :, 16] = 30.0        # image 0: every pixel certainly at the top level
    out.view(2, 64, 17)[1, :, 4] = 30.0         # image 1: every pixel at level 4 -> 4/16
    mean = lik.mean(out)
    assert torch.allclose(mean[0], torch.ones(64)) and torch.allclose(mean[1], torch.full((64,), 0.25))
    # all-zero logits: uniform over 17 levels, so any image costs 64 log 17 nats
    x = torch.rand(3, 1, 8, 8)
    assert torch.allclose(lik.log_prob(torch.zeros(3, 64 * 17), lik.targets(x)), torch.full((3,), -64 * math.log(17)))


def test_draws_follow_the_decoder():
    lik = CategoricalPixels(17)
    out = torch.full((1, 64 * 17), -30.0)
    out.view(1, 64, 17)[0, :32, 8] = 30.0         # first half certainly at level 8 -> 0.5
    out.view(1, 64, 17)[0, 32:, 16] = 30.0        # second half certainly at the top level -> 1
    x = lik.draw(out, torch.Generator().manual_seed(0))
    assert torch.equal(x[0, :32], torch.full((32,), 0.5)) and torch.equal(x[0, 32:], torch.ones(32))
    # a uniform decoder: draws cover the levels, and their average approaches the mean image (0.5)
    many = lik.draw(torch.zeros(200, 64 * 17), torch.Generator().manual_seed(0))
    assert len(many.unique()) == 17 and abs(many.mean().item() - 0.5) < 0.01
    bern = BernoulliPixels().draw(torch.zeros(200, 64), torch.Generator().manual_seed(0))
    assert set(bern.unique().tolist()) == {0.0, 1.0} and abs(bern.mean().item() - 0.5) < 0.02
    m = CVAE((1, 8, 8), 10, **SMALL)
    assert m.decode_draw(torch.zeros(3, 4), torch.tensor([0, 1, 2])).shape == (3, 1, 8, 8)


def test_the_mode_is_the_most_probable_image():
    lik = CategoricalPixels(17)
    logits = torch.randn(5, 64 * 17, generator=torch.Generator().manual_seed(0)) * 2
    mode = lik.mode(logits)
    # by hand for one pixel: levels 3 and 11 share the top score, the first of them wins
    one = torch.full((1, 17), -1.0)
    one[0, 3] = one[0, 11] = 2.0
    assert lik.mode(one).item() == 3 / 16
    # no draw is more probable than the mode (pixels are independent given the logits)
    log_p = lambda images: lik.log_prob(logits, lik.targets(images))  # noqa: E731
    drawn = torch.stack([log_p(lik.draw(logits, torch.Generator().manual_seed(s))) for s in range(50)])
    assert drawn.shape == (50, 5) and (drawn <= log_p(mode) + 1e-5).all()
    assert (drawn < log_p(mode) - 1).all()             # and with these spread logits, far less so
    bern = BernoulliPixels().mode(torch.tensor([[-2.0, -0.1, 0.1, 3.0]]))
    assert bern.tolist() == [[0.0, 0.0, 1.0, 1.0]]
    # decode names are checked, with one line that lists the choices
    with pytest.raises(CondgenError, match="use one of mean, mode, draw"):
        CVAE((1, 8, 8), 10, **SMALL).sample(2, labels=torch.tensor([3, 4]), decode="median")
    # the three decodes share the code: mode and mean of the same z lie on the same side of grey
    m = CVAE((1, 8, 8), 10, **SMALL)
    labels = torch.arange(10)
    mean, mode = (m.sample(10, labels, torch.Generator().manual_seed(0), decode=d) for d in ("mean", "mode"))
    z = m.noise(10, m.config.z_dim, torch.Generator().manual_seed(0))
    with m.evaluating():
        mu, logvar = m.prior_params(labels, 10)
        out = m.decode(mu + (0.5 * logvar).exp() * z, labels)
    torch.testing.assert_close(mode, lik.mode(out).view(10, 1, 8, 8))
    torch.testing.assert_close(mean, lik.mean(out).view(10, 1, 8, 8))


def test_bernoulli_is_picked_for_mnist_sized_images():
    m = VAE((1, 28, 28), **SMALL)
    assert isinstance(m.likelihood, BernoulliPixels)
    x = torch.rand(4, 1, 28, 28)
    t = m.likelihood.targets(x, torch.Generator().manual_seed(0))
    assert set(t.unique().tolist()) <= {0.0, 1.0}
    assert m.sample(3).shape == (3, 1, 28, 28)
    assert (m.bounds(x, k=5)["iw"] < 0).all()


def test_bounds_and_likelihood_figures_bookkeeping(digits):
    m = CVAE((1, 8, 8), 10, **SMALL)
    g = torch.Generator().manual_seed(0)
    b = m.bounds(digits.images[:40], digits.labels[:40], k=50, generator=g)
    assert b["elbo"].shape == b["iw"].shape == (40,)
    assert b["iw"].mean() > b["elbo"].mean()        # the importance-weighted bound is the tighter one
    figures = likelihood_figures(m, "digits")
    assert figures["test_iw_nll_nats"] < figures["test_nelbo_nats"]
    assert figures["test_bits_per_dim"] == pytest.approx(figures["test_iw_nll_nats"] / (64 * math.log(2)), abs=1e-3)


def test_learned_prior_moves_per_class_and_fixed_prior_stays(digits):
    data = digits.subset(200)
    fixed, learned = (CVAE((1, 8, 8), 10, prior=p, **SMALL) for p in ("standard", "learned"))
    for m in (fixed, learned):
        fit(m, data, epochs=3, progress=False)
    assert fixed.prior.mu.abs().max() == 0 and fixed.prior.logvar.abs().max() == 0
    assert learned.prior.mu.abs().max() > 0
    assert not torch.allclose(learned.prior.mu[0], learned.prior.mu[1])


def test_short_training_improves_the_validation_bound(digits):
    val = load_dataset("digits", "val")
    m = VAE((1, 8, 8), 10, hidden=(64, 64), z_dim=8)
    g = torch.Generator().manual_seed(0)
    before = -m.bounds(val.images, k=5, generator=g)["elbo"].mean().item()
    history = fit(m, digits, epochs=8, progress=False)
    after = -m.bounds(val.images, k=5, generator=g)["elbo"].mean().item()
    assert before > 64 * math.log(17) - 5          # an untrained decoder is close to uniform
    assert after < before - 30, (before, after)
    assert history.epoch_means("nelbo")[-1] < history.epoch_means("nelbo")[0]


def test_kl_warmup_weight():
    m = VAE((1, 8, 8), **SMALL, kl_warmup_steps=100)
    assert m.kl_weight() == pytest.approx(0.01)
    m.steps = 49
    assert m.kl_weight() == pytest.approx(0.5)
    m.steps = 5000
    assert m.kl_weight() == 1.0
    assert VAE((1, 8, 8), **SMALL, kl_warmup_steps=0).kl_weight() == 1.0


def test_checkpoint_round_trip_gives_the_same_samples(tmp_path, digits):
    m = CVAE((1, 8, 8), 10, prior="learned", **SMALL)
    fit(m, digits.subset(100), epochs=1, progress=False)
    save_checkpoint(m, tmp_path / "model.pt")
    again, meta = load_checkpoint(tmp_path)
    assert meta["model"] == "cvae"
    labels = torch.arange(10)
    a = m.sample(10, labels=labels, generator=torch.Generator().manual_seed(1))
    b = again.sample(10, labels=labels, generator=torch.Generator().manual_seed(1))
    assert torch.equal(a, b)


def test_label_init_one_hot_or_normal():
    one_hot = CVAE((1, 8, 8), 10, **SMALL)
    emb = one_hot._label_embedding().table.weight
    torch.testing.assert_close(emb, torch.eye(10, 16))
    torch.manual_seed(0)
    normal = CVAE((1, 8, 8), 10, label_init="normal", **SMALL)._label_embedding().table.weight
    assert not torch.allclose(normal, torch.eye(10, 16)) and 0.7 < normal.std().item() < 1.3
    with pytest.raises(CondgenError):
        CVAE((1, 8, 8), 10, label_init="zeros")


def test_latent_usage_against_hand_made_codes(digits):
    from condgen_helpers.evaluation import latent_usage

    model = CVAE(digits.image_shape, 10, prior="standard", **SMALL)
    x, y = digits.images[:200], digits.labels[:200]
    mu = torch.zeros(200, 4)
    mu[:, 0] = torch.linspace(-2, 2, 200)        # varies with the image: active
    mu[:, 1] = 0.05 * torch.linspace(-1, 1, 200)  # variance about 0.0008: inactive
    logvar = torch.zeros(200, 4)
    logvar[:, 2] = math.log(0.25)                 # narrower than the prior but the same mean everywhere
    model.encode = lambda images, cond: (mu, logvar)
    usage = latent_usage(model, x, y)
    # KL(N(m, s^2) || N(0, 1)) = (s^2 + m^2 - 1 - log s^2) / 2, averaged over the images by hand
    want = torch.stack([(mu[:, 0] ** 2 / 2).mean(), (mu[:, 1] ** 2 / 2).mean(),
                        torch.tensor(0.5 * (0.25 - 1 - math.log(0.25))), torch.tensor(0.0)])
    torch.testing.assert_close(usage["kl_per_dim"], want)
    assert usage["kl"] == pytest.approx(want.sum().item(), rel=1e-6)
    assert usage["active_units"] == 1 and usage["z_dim"] == 4
    assert usage["activity"][0] == pytest.approx(mu[:, 0].var().item(), rel=1e-5)
