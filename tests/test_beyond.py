"""Conditions beyond class labels: the conditioning modules and the attribute / completion models."""

import math

import pytest
import torch

from condgen_helpers import CondgenError
from condgen_helpers.data import load_dataset, quantise
from condgen_helpers.evaluation import attribute_control, evaluate_model, within_class_correlation
from condgen_helpers.experiments.completion import KeepBest, completion_benchmark
from condgen_helpers.models import MODELS, build_model
from condgen_helpers.models.attribute import AttributeCVAE, ConditionBatch
from condgen_helpers.models.completion import CompletionCVAE, CompletionRegressor, ConditionalPrior
from condgen_helpers.nn.conditioning import (
    AttributeCondition,
    CombinedCondition,
    LabelEmbedding,
    PartialImageCondition,
)
from condgen_helpers.training import fit, load_checkpoint, save_checkpoint


@pytest.fixture(scope="module")
def train():
    return load_dataset("digits", "train")


@pytest.fixture(scope="module")
def val():
    return load_dataset("digits", "val")


# --- conditioning modules --------------------------------------------------------------------------

def test_attribute_condition_passes_checked_values():
    cond = AttributeCondition(("thickness", "slant"))
    a = torch.tensor([[0.5, -1.0], [2.0, 0.0]], dtype=torch.float64)
    out = cond(a)
    assert cond.out_dim == 2 and out.dtype == torch.float32
    torch.testing.assert_close(out, a.float())
    with pytest.raises(CondgenError, match=r"shape \(N, 2\) with columns thickness, slant"):
        cond(torch.zeros(3))
    with pytest.raises(CondgenError, match="must be floats"):
        cond(torch.zeros(3, 2, dtype=torch.long))
    with pytest.raises(CondgenError, match="NaN or infinity"):
        cond(torch.tensor([[0.0, float("nan")]]))


def test_partial_image_condition_splits_and_joins(train):
    part = PartialImageCondition((1, 8, 8))
    top, bottom = part.split(train.images[:5])
    assert top.shape == bottom.shape == (5, 1, 4, 8) and part.out_dim == 32
    torch.testing.assert_close(part.join(top, bottom), train.images[:5])
    torch.testing.assert_close(part(top), train.images[:5, :, :4].flatten(1))
    three = PartialImageCondition((1, 8, 8), rows=3)
    assert three.split(train.images[:2])[1].shape == (2, 1, 5, 8) and three.out_dim == 24
    with pytest.raises(CondgenError, match="visible top part"):
        part(train.images[:5])  # a full image is not a top half
    with pytest.raises(CondgenError, match="between 1 and 7 rows"):
        PartialImageCondition((1, 8, 8), rows=8)


def test_combined_condition_concatenates_its_parts():
    torch.manual_seed(0)
    label, attrs = LabelEmbedding(10, 4), AttributeCondition(("thickness", "slant"))
    both = CombinedCondition(label, attrs)
    y, a = torch.tensor([3, 7]), torch.randn(2, 2)
    assert both.out_dim == 6
    torch.testing.assert_close(both((y, a)), torch.cat([label(y), a], dim=1))
    with pytest.raises(CondgenError, match="tuple of 2 conditions"):
        both(y)
    with pytest.raises(CondgenError, match="disagree on the batch size"):
        both((y, torch.randn(3, 2)))
    with pytest.raises(CondgenError, match="label 12 is outside"):
        both((torch.tensor([12, 0]), a))


def test_condition_batch_slices_every_member():
    batch = ConditionBatch((torch.arange(5), torch.arange(10).view(5, 2)))
    part = batch[1:3]
    assert isinstance(part, ConditionBatch) and part[0].tolist() == [1, 2]
    assert part[1].tolist() == [[2, 3], [4, 5]]
    labels, attrs = batch  # still unpacks like a tuple
    assert len(labels) == len(attrs) == 5


def test_within_class_correlation_ignores_differences_between_classes():
    labels = torch.tensor([0, 0, 0, 1, 1, 1])
    asked = torch.tensor([-1.0, 0.0, 1.0, -1.0, 0.0, 1.0])
    # measured follows the asked value inside each class, plus a big offset per class: within = 1
    assert within_class_correlation(asked, asked + 10 * labels, labels) == pytest.approx(1.0)
    # measured is only the class offset: pooled correlation is 0 here, and so is the within-class one
    assert within_class_correlation(asked, 10.0 * labels, labels) == pytest.approx(0.0)
    # hand-computed: residuals (-1, 0, 1) and (1, 0, -1) in the two classes give (1 - 1) / 2 = 0
    flipped = torch.tensor([-1.0, 0.0, 1.0, 1.0, 0.0, -1.0])
    assert within_class_correlation(asked, flipped, labels) == pytest.approx(0.0)


# --- the attribute-conditioned cVAE ----------------------------------------------------------------

def test_attribute_cvae_needs_its_statistics_and_both_conditions(train):
    model = AttributeCVAE(train.image_shape, 10)
    with pytest.raises(CondgenError, match="not fitted yet"):
        model.train_step(train.images[:8], train.labels[:8])
    model.prepare(train.images, train.labels)
    with pytest.raises(CondgenError, match=r"conditioned on \(labels, attributes\)"):
        model.encode(train.images[:4], train.labels[:4])
    with pytest.raises(CondgenError, match="label 10 is outside"):
        model.sample(2, labels=torch.tensor([1, 10]))
    images = model.sample(6, labels=torch.tensor([0, 1, 2, 3, 4, 5]), generator=torch.Generator().manual_seed(0))
    assert images.shape == (6, 1, 8, 8) and images.min() >= 0 and images.max() <= 1
    a = model.sample(3, labels=torch.tensor([4, 4, 4]), attributes=torch.tensor([0.0, 1.0]))
    assert a.shape == (3, 1, 8, 8)


def test_short_training_gives_attribute_control_and_a_checkpoint_round_trip(train, val, tmp_path):
    torch.manual_seed(0)
    model = AttributeCVAE(train.image_shape, 10, lr=1e-3, kl_warmup_steps=0)  # quick settings for a short run
    labels = torch.arange(10).repeat_interleave(20)
    model.prepare(train.images, train.labels)
    before = attribute_control(model, labels, generator=torch.Generator().manual_seed(1))
    fit(model, train, epochs=12, seed=0, progress=False)
    after = attribute_control(model, labels, generator=torch.Generator().manual_seed(1))
    assert after["thickness_corr"] > 0.7 and after["slant_corr"] > 0.7, after
    assert after["thickness_corr"] > before["thickness_corr"] + 0.3
    assert after["conditional_accuracy"] > before["conditional_accuracy"]
    assert after["measured"].shape == after["asked"].shape == (200, 2)
    # decode="draw" scores the model's pixel draws: on the 17-level grid, unlike the smooth means
    drawn = attribute_control(model, labels, generator=torch.Generator().manual_seed(1), decode="draw")
    levels = drawn["images"] * 16
    torch.testing.assert_close(levels, levels.round())
    assert not torch.allclose(after["images"] * 16, (after["images"] * 16).round())
    # the standardisation travels with the checkpoint, so sampling is identical after loading
    save_checkpoint(model, tmp_path / "run" / "model.pt")
    loaded, meta = load_checkpoint(tmp_path / "run")
    assert meta["model"] == "cvae-attr"
    torch.testing.assert_close(loaded.scaler.mean, model.scaler.mean)
    g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    torch.testing.assert_close(loaded.sample(4, torch.tensor([1, 2, 3, 4]), g1),
                               model.sample(4, torch.tensor([1, 2, 3, 4]), g2))
    # the likelihood bound of vae.py works with the (labels, attributes) condition
    b = model.bounds(val.images[:20], model.condition(val.images[:20], val.labels[:20]), k=20)
    assert b["iw"].shape == (20,) and (b["iw"] < 0).all()


def test_attribute_model_keeps_the_evaluation_contract(train):
    model = build_model("cvae-attr", train.image_shape)
    model.prepare(train.images, train.labels)
    figures = evaluate_model(model)
    # a likelihood model is scored on its pixel draws, with its decoder means apart
    assert figures["n"] == 447 and figures["scored"] == "pixel draws"
    assert figures["decoder_means"]["scored"] == "decoder means" and figures["decoder_means"]["n"] == 447
    assert figures["decoder_modes"]["scored"] == "decoder modes" and figures["decoder_modes"]["n"] == 447
    # untrained, it cannot draw the asked digit: accuracy near chance, and the means vary less than draws
    assert figures["conditional_accuracy"] < 0.5
    assert figures["decoder_means"]["diversity"] < figures["diversity"]
    assert set(MODELS) >= {"cvae-attr", "cvae-complete", "regressor-complete"}


# --- completion ------------------------------------------------------------------------------------

def test_conditional_prior_is_a_network_of_the_condition():
    prior = ConditionalPrior(PartialImageCondition((1, 8, 8)), z_dim=3)
    tops = torch.rand(5, 1, 4, 8)
    mu, logvar = prior(tops, 5)
    assert mu.shape == logvar.shape == (5, 3)
    assert not torch.allclose(mu[0], mu[1])  # different tops, different priors
    with pytest.raises(CondgenError, match="one per code"):
        prior(tops, 4)


def test_completion_cvae_keeps_the_top_and_varies_the_bottom(train):
    torch.manual_seed(0)
    model = CompletionCVAE(train.image_shape, 10)
    with pytest.raises(CondgenError, match="holds no top halves"):
        model.sample(2, labels=torch.tensor([3, 4]))
    model.prepare(train.images, train.labels)
    tops = model.part.split(train.images[:3])[0]
    g = torch.Generator().manual_seed(0)
    a, b = model.sample(3, tops=tops, generator=g), model.sample(3, tops=tops, generator=g)
    torch.testing.assert_close(a[:, :, :4], tops)  # the given half is kept exactly
    assert not torch.allclose(a[:, :, 4:], b[:, :, 4:])  # a new z, another bottom
    pooled = model.sample(4, labels=torch.tensor([7, 7, 7, 7]), generator=g)
    sevens = model.part.split(train.images[train.labels == 7])[0]
    for top in pooled[:, :, :4]:
        assert (sevens - top).abs().flatten(1).sum(1).min() < 1e-6  # a real training 7's top
    with pytest.raises(CondgenError, match="one per sample"):
        model.sample(5, tops=tops)


def test_completion_bounds_order_and_training_lowers_the_nll(train, val):
    torch.manual_seed(0)
    model = CompletionCVAE(train.image_shape, 10)
    x = val.images[:100]
    g = torch.Generator().manual_seed(0)
    before = model.nll(x, k=50, generator=g).mean().item()
    fit(model, train, epochs=15, seed=0, progress=False)
    top, bottom = model.part.split(x)
    b = model.bounds(bottom, top, k=200, generator=torch.Generator().manual_seed(1))
    # the importance-weighted bound is tighter than the ELBO on average (Burda et al. 2016)
    assert b["iw"].mean() >= b["elbo"].mean() - 1e-3
    after = model.nll(x, k=50, generator=g).mean().item()
    assert after < before - 5, (before, after)
    # 32 bottom pixels with 17 levels each: guessing uniformly costs 32 ln 17 nats
    assert after < 32 * math.log(17)


def test_regressor_likelihood_is_a_product_of_categoricals(train, val):
    torch.manual_seed(0)
    reg = CompletionRegressor(train.image_shape, 10)
    x = val.images[:10]
    top, bottom = reg.part.split(x)
    logits = reg.net.eval()(top.flatten(1)).view(10, 32, 17)
    expected = torch.distributions.Categorical(logits=logits).log_prob(quantise(bottom.flatten(1), 17)).sum(1)
    torch.testing.assert_close(-reg.nll(x), expected)
    full = reg.sample(10, tops=top)
    torch.testing.assert_close(full, reg.sample(10, tops=top))  # deterministic: one answer per top
    torch.testing.assert_close(full[:, :, :4], top)


def test_regressor_calibration_picks_the_best_temperature(train, val):
    torch.manual_seed(0)
    reg = CompletionRegressor(train.image_shape, 10)
    fit(reg, train, epochs=15, seed=0, progress=False)
    t = reg.calibrate(val.images)
    best = reg.nll(val.images).mean().item()
    for other in (t * 0.8, t * 1.25, 1.0):
        reg.calibration.temperature.fill_(other)
        assert reg.nll(val.images).mean().item() >= best - 1e-4
    reg.calibration.temperature.fill_(t)
    baseline_figures = completion_benchmark(CompletionCVAE(train.image_shape, 10, iw_samples=20),
                                            baseline=reg)
    assert baseline_figures["baseline_temperature"] == pytest.approx(t, abs=1e-3)
    assert baseline_figures["nll_gain_nats"] == pytest.approx(
        baseline_figures["baseline_nll_bottom_nats"] - baseline_figures["test_nll_bottom_nats"], abs=1e-2)


def test_completion_models_keep_the_evaluation_contract(train):
    for name in ("cvae-complete", "regressor-complete"):
        model = build_model(name, train.image_shape)
        model.prepare(train.images, train.labels)
        figures = evaluate_model(model)
        assert figures["n"] == 447 and "conditional_accuracy" in figures


def test_keep_best_restores_the_epoch_with_the_lowest_validation_nll(train, val):
    torch.manual_seed(0)
    reg = CompletionRegressor(train.image_shape, 10)
    keep = KeepBest(val.images, every=2)
    with pytest.raises(CondgenError, match="at least 2 epochs"):
        keep.restore(reg)
    fit(reg, train, epochs=6, seed=0, progress=False, callback=keep)
    assert [e for e, _ in keep.curve] == [2, 4, 6]
    best_epoch, best = min(keep.curve, key=lambda p: p[1])
    assert keep.best_epoch == best_epoch and keep.best_nll == best
    keep.restore(reg)
    assert reg.nll(val.images).mean().item() == pytest.approx(best, abs=1e-4)


def test_completions_as_pixel_draws_keep_the_top_and_lie_on_the_grid(train):
    torch.manual_seed(0)
    tops = CompletionCVAE(train.image_shape, 10).part.split(train.images[:20])[0]
    for model in (CompletionCVAE(train.image_shape, 10), CompletionRegressor(train.image_shape, 10)):
        drawn = model.complete(tops, torch.Generator().manual_seed(0), decode="draw")
        again = model.complete(tops, torch.Generator().manual_seed(1), decode="draw")
        torch.testing.assert_close(drawn[:, :, :4], tops)            # the given half is kept exactly
        levels = drawn[:, :, 4:] * 16
        torch.testing.assert_close(levels, levels.round())           # one of the 17 grey levels per pixel
        assert not torch.equal(drawn, again)                         # another draw, another bottom
    # the regressor's draws average to its one answer, the expected bottom
    reg = CompletionRegressor(train.image_shape, 10)
    many = torch.stack([reg.complete(tops, torch.Generator().manual_seed(s), decode="draw") for s in range(200)])
    assert (many.mean(0) - reg.complete(tops)).abs().max() < 0.12
