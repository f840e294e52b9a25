"""Conditional flow matching and guidance (notebook 07): the maths against closed forms and
torch.distributions, the guidance formula at its two ends, sampling, a short training that must
improve, the explorer's logic and the CLI's refusals."""

import json
import math

import numpy as np
import pytest
import torch
from torch import distributions as D

from condgen_helpers.cli import main
from condgen_helpers.data import load_dataset, load_splits
from condgen_helpers.errors import CondgenError
from condgen_helpers.evaluation import (
    floor_distance,
    load_classifier,
    pick_guidance,
    predict,
    selection_splits,
)
from condgen_helpers.models.flow import (
    ConditionalFlowMatching,
    check_guidance,
    guided_velocity,
    integrate,
    interpolate,
    mixture_velocity,
    score_to_velocity,
    velocity_to_score,
)
from condgen_helpers.notebook.widgets import guidance_explorer, render_guidance
from condgen_helpers.training import fit


def _gaussian_by_hand(x, t, m, std):
    """x1 ~ N(m, std^2 I), x0 ~ N(0, I): the score of x_t from torch.distributions by autograd, and
    E[x1 - x0 | x_t] from the regression of jointly Gaussian variables (cov(x1 - x0, x_t) / var(x_t))."""
    var = t * t * std * std + (1 - t) ** 2
    xg = x.clone().requires_grad_(True)
    log_p = D.Normal(t * m, math.sqrt(var)).log_prob(xg).sum()
    score, = torch.autograd.grad(log_p, xg)
    cov = t * std * std - (1 - t)   # cov(x1 - x0, t x1 + (1 - t) x0) per coordinate
    velocity = m + cov / var * (x - t * m)
    return score, velocity


@pytest.mark.parametrize("t", [0.1, 0.5, 0.9])
def test_velocity_and_score_convert_on_a_gaussian(t):
    m, std = torch.tensor([1.5, -0.5], dtype=torch.float64), 0.7
    x = torch.randn(20, 2, dtype=torch.float64) * 1.3
    score, velocity = _gaussian_by_hand(x, t, m, std)
    assert torch.allclose(velocity_to_score(velocity, x, t), score, atol=1e-10)
    assert torch.allclose(score_to_velocity(score, x, t), velocity, atol=1e-10)
    v, s = mixture_velocity(x, t, m[None], std)  # a mixture of one component is that Gaussian
    assert torch.allclose(v, velocity, atol=1e-10) and torch.allclose(s, score, atol=1e-10)


def test_mixture_score_matches_torch_distributions_and_velocity_follows():
    t, std = 0.6, 0.4
    means = torch.tensor([[2.0, 0.0], [-1.0, 1.0], [0.0, -2.0]], dtype=torch.float64)
    weights = torch.tensor([0.5, 0.3, 0.2], dtype=torch.float64)
    var = t * t * std * std + (1 - t) ** 2
    mix = D.MixtureSameFamily(D.Categorical(weights), D.Independent(D.Normal(t * means, math.sqrt(var)), 1))
    x = torch.randn(50, 2, dtype=torch.float64) * 1.5
    xg = x.clone().requires_grad_(True)
    score, = torch.autograd.grad(mix.log_prob(xg).sum(), xg)
    v, s = mixture_velocity(x, t, means, std, weights)
    assert torch.allclose(s, score, atol=1e-10)
    assert torch.allclose(v, score_to_velocity(score, x, t), atol=1e-10)


def test_marginal_velocity_is_the_conditional_mean_of_the_target():
    """Monte Carlo: pairs (x0, x1) whose interpolant lands near a point; their mean of x1 - x0
    must match the closed form there (1-D, two components)."""
    g = torch.Generator().manual_seed(0)
    means, std, t, n = torch.tensor([[-1.0], [1.5]], dtype=torch.float64), 0.3, 0.5, 2_000_000
    comp = torch.randint(2, (n,), generator=g)
    x1 = means[comp] + std * torch.randn(n, 1, generator=g, dtype=torch.float64)
    x0 = torch.randn(n, 1, generator=g, dtype=torch.float64)
    xt = interpolate(x0, x1, torch.full((n,), t, dtype=torch.float64))
    for point in (-0.4, 0.1, 0.6):
        near = (xt[:, 0] - point).abs() < 0.01
        mc = (x1 - x0)[near].mean().item()
        se = (x1 - x0)[near].std().item() / math.sqrt(near.sum().item())
        closed = mixture_velocity(torch.tensor([[point]], dtype=torch.float64), t, means, std)[0].item()
        assert abs(mc - closed) < 4 * se + 0.02, (point, mc, closed)


def test_guided_velocity_ends_and_middle():
    vu, vc = torch.randn(5, 3), torch.randn(5, 3)
    assert torch.equal(guided_velocity(vu, vc, 0), vu) and torch.equal(guided_velocity(vu, vc, 1.0), vc)
    assert torch.allclose(guided_velocity(vu, vc, 3.0), 3 * vc - 2 * vu)  # (1 + w) v_c - w v_u with w = 2


@pytest.mark.parametrize("bad", [-0.5, float("nan"), float("inf"), "two", None])
def test_bad_guidance_is_one_clear_error(bad):
    with pytest.raises(CondgenError, match="guidance must be"):
        check_guidance(bad)


def test_integrate_euler_and_heun_on_a_known_ode():
    """dx/dt = -x from x(0) = 1: Euler with n steps gives (1 - 1/n)^n, Heun is closer to e^-1."""
    x0 = torch.ones(1)
    euler = integrate(lambda x, t: -x, x0, 10, "euler").item()
    heun = integrate(lambda x, t: -x, x0, 10, "heun").item()
    assert abs(euler - 0.9 ** 10) < 1e-6
    assert abs(heun - math.exp(-1)) < abs(euler - math.exp(-1)) / 10
    with pytest.raises(CondgenError, match="steps"):
        integrate(lambda x, t: -x, x0, 0)
    with pytest.raises(CondgenError, match="solver"):
        integrate(lambda x, t: -x, x0, 5, "rk4")


@pytest.fixture(scope="module")
def digits_cfm():
    """A cfm trained briefly (150 epochs, about 1000 steps) on the training digits."""
    train = load_dataset("digits", "train")
    torch.manual_seed(0)
    model = ConditionalFlowMatching(train.image_shape, train.n_classes)
    history = fit(model, train, epochs=150, progress=False)
    return model, history


def test_model_velocity_uses_one_network_for_both(digits_cfm):
    model, _ = digits_cfm
    x, t, y = torch.randn(6, 64), 0.3, torch.arange(6)
    tt = torch.full((6,), t)
    with torch.no_grad():
        v_c, v_u = model.v_ema(x, tt, y), model.v_ema(x, tt, torch.full_like(y, 10))
        assert torch.equal(model.velocity(x, t, y, guidance=1), v_c)
        assert torch.equal(model.velocity(x, t, y, guidance=0), v_u)
        assert torch.allclose(model.velocity(x, t, y, guidance=2.5), v_u + 2.5 * (v_c - v_u), atol=1e-5)
        assert not torch.allclose(v_c, v_u, atol=1e-3)  # the label does change the velocity


def test_short_training_improves_and_conditions(digits_cfm):
    model, history = digits_cfm
    loss = history["loss_fm"]
    assert sum(loss[-100:]) / 100 < 0.8 * sum(loss[:100]) / 100
    labels = torch.arange(10).repeat_interleave(20)
    clf = load_classifier("digits")
    acc = {g: (predict(clf, model.sample(200, labels=labels, generator=torch.Generator().manual_seed(0),
                                         guidance=g)) == labels).float().mean().item() for g in (0, 2)}
    # the null is chance: 20 samples of each class, so a label-blind sampler agrees with 0.1 of them
    chance_hi = 0.1 + 3 * math.sqrt(0.1 * 0.9 / 200)
    assert acc[0] < chance_hi, acc   # g = 0 never reads the label
    assert acc[2] > 3 * chance_hi, acc  # the label works after about 1000 steps


def test_sampling_is_reproducible_in_range_and_checks_labels(digits_cfm):
    model, _ = digits_cfm
    g = lambda: torch.Generator().manual_seed(3)  # noqa: E731
    a = model.sample(7, labels=torch.full((7,), 4), generator=g(), guidance=2, steps=10)
    b = model.sample(7, labels=torch.full((7,), 4), generator=g(), guidance=2, steps=10)
    assert torch.equal(a, b) and a.shape == (7, 1, 8, 8) and 0 <= a.min() and a.max() <= 1
    with pytest.raises(CondgenError, match="outside the classes"):
        model.sample(2, labels=torch.tensor([1, 10]))
    with pytest.raises(CondgenError, match="guidance must be"):
        model.sample(2, guidance=-1)


def test_classifier_push_vanishes_at_t0_and_raises_the_class_log_probability(digits_cfm):
    model, _ = digits_cfm
    x, y = torch.randn(32, 64), torch.arange(32) % 10
    assert torch.equal(model.classifier_push(x, torch.zeros(32), y), torch.zeros(32, 64))
    t = torch.full((32,), 0.5)
    step = 1e-3 * model.classifier_push(x, t, y)
    with torch.no_grad():
        before = torch.log_softmax(model.C(x, t), 1).gather(1, y[:, None]).mean()
        after = torch.log_softmax(model.C(x + step, t), 1).gather(1, y[:, None]).mean()
    assert after > before


def test_guidance_explorer_logic(digits_cfm):
    model, _ = digits_cfm
    images = render_guidance(model, label=3, guidance=2.0, n=5, seed=1)
    assert images.shape == (10, 1, 8, 8)
    plain = model.sample(5, labels=torch.full((5,), 3), generator=torch.Generator().manual_seed(1), guidance=1)
    assert torch.equal(images[:5], plain)
    assert not torch.equal(images[5:], plain)
    with pytest.raises(CondgenError, match="outside the classes"):
        render_guidance(model, label=11, guidance=1.0)
    box = guidance_explorer(model, n=4)
    before = box.images.clone()
    box.children[0].children[0].value = 0.0   # the guidance slider
    assert not torch.equal(box.images, before) and box.images.shape == (8, 1, 8, 8)


def _floor(acc_lo=0.98):
    return {"precision": 0.9, "recall": 0.9,
            "interval": {"conditional_accuracy": [acc_lo, 1.0], "precision": [0.88, 0.92], "recall": [0.88, 0.92]}}


def test_floor_distance_counts_precision_and_recall_in_floor_half_intervals():
    assert floor_distance({"precision": 0.9, "recall": 0.9}, _floor()) == 0.0
    # 0.06 above on precision (3 half-intervals), 0.08 below on recall (4): a 3-4-5 triangle
    assert floor_distance({"precision": 0.96, "recall": 0.82}, _floor()) == pytest.approx(5.0)


def test_pick_guidance_needs_the_floors_accuracy_then_the_nearest_precision_and_recall():
    sweep = {0.0: {"conditional_accuracy": 0.1, "precision": 0.9, "recall": 0.9},     # real-like, label-blind
             1.0: {"conditional_accuracy": 0.95, "precision": 0.88, "recall": 0.86},  # too inaccurate
             1.25: {"conditional_accuracy": 0.99, "precision": 0.92, "recall": 0.84},  # distance sqrt(1 + 9)
             1.5: {"conditional_accuracy": 0.995, "precision": 0.93, "recall": 0.85},  # sqrt(2.25 + 6.25)
             2.0: {"conditional_accuracy": 0.999, "precision": 0.96, "recall": 0.70}}  # precision bought with recall
    # 1.5 is nearest (2.92); 1.25 (3.16) is within 1 of it and smaller, so it is taken
    assert pick_guidance(sweep, _floor()) == 1.25
    sweep[1.25]["recall"] = 0.78                                                      # now sqrt(1 + 36): not tied
    assert pick_guidance(sweep, _floor()) == 1.5
    # the scale with the best intra-KID-style precision but no recall is never the pick
    assert pick_guidance(sweep, _floor()) != 2.0
    # no scale reaches the floor's accuracy: the most accurate one
    assert pick_guidance(sweep, _floor(acc_lo=0.9995)) == 2.0


def test_selection_splits_swap_the_held_out_roles_once():
    splits = load_splits("digits")
    held = selection_splits(splits)
    assert held is selection_splits(splits)
    assert held.train is splits.train and held.val is splits.test and held.test is splits.val


def test_cli_train_and_sample_with_guidance(tmp_path, capsys):
    run = tmp_path / "cfm"
    assert main(["train", "cfm", "--out", str(run), "--epochs", "3", "--quiet"]) == 0
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["guidance"] == 1.0 and "best_guidance" in metrics
    assert set(metrics["guidance_sweep"]) >= {"0", "1", "2"} and set(metrics["guidance_curve"]) == set(metrics["guidance_sweep"])
    assert metrics["guidance_curve"]["1"]["conditional_accuracy"] == metrics["conditional_accuracy"]
    assert main(["sample", str(run), "--n-per-class", "2", "--guidance", "2.5", "--steps", "5"]) == 0
    arrays = np.load(run / "samples.npz")
    assert arrays["images"].shape == (20, 1, 8, 8) and arrays["labels"].tolist() == [c for c in range(10) for _ in range(2)]
    capsys.readouterr()
    assert main(["sample", str(run), "--n-per-class", "2"]) == 2   # the file exists: nothing is lost
    assert "--overwrite" in capsys.readouterr().err


@pytest.mark.parametrize("value", ["-1", "nan", "inf", "lots"])
def test_cli_refuses_bad_guidance(value, tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["sample", str(tmp_path), "--guidance", value])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "--guidance" in err and err.count("\n") == 1


def test_cli_refuses_guidance_for_a_model_without_it(tmp_path, capsys):
    run = tmp_path / "cgan"
    assert main(["train", "cgan", "--out", str(run), "--epochs", "1", "--quiet"]) == 0
    capsys.readouterr()
    assert main(["sample", str(run), "--out", str(tmp_path / "s.npz"), "--guidance", "2"]) == 2
    err = capsys.readouterr().err
    assert "no guidance" in err and err.count("\n") == 1
