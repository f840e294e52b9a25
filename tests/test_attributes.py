"""Attributes measured from pixels, checked on constructed images whose answers we know."""

import math

import pytest
import torch

from condgen_helpers import CondgenError
from condgen_helpers.data import load_dataset
from condgen_helpers.nn.attributes import (
    ATTRIBUTES,
    AttributeScaler,
    measure,
    moments,
    shear,
    slant,
    thickness,
)


def bar(width: int = 1, s: float = 0.0, size: int = 9) -> torch.Tensor:
    """A one-image batch: a vertical bar through the centre, ``width`` columns wide, that moves
    ``s`` columns right per row going up (s must keep it on the grid at integer steps)."""
    x = torch.zeros(1, 1, size, size)
    centre = size // 2
    for r in range(1, size - 1):
        c = centre + round(s * (centre - r))
        x[0, 0, r, c:c + width] = 1.0
    return x


def test_moments_of_a_single_pixel_and_of_two_pixels():
    x = torch.zeros(1, 1, 5, 5)
    x[0, 0, 1, 3] = 0.5
    m = moments(x)
    assert m["mass"].item() == pytest.approx(0.5)
    assert (m["r0"].item(), m["c0"].item()) == (pytest.approx(1), pytest.approx(3))
    assert m["rr"].item() == m["cc"].item() == m["rc"].item() == 0
    # two equal pixels on a diagonal going down-right: covariance of row and column is +1
    y = torch.zeros(1, 1, 5, 5)
    y[0, 0, 1, 1] = y[0, 0, 3, 3] = 1
    m = moments(y)
    assert m["rr"].item() == pytest.approx(1) and m["cc"].item() == pytest.approx(1)
    assert m["rc"].item() == pytest.approx(1)
    assert slant(y).item() == pytest.approx(-1)  # "\": leans left


def test_vertical_bar_has_slant_zero():
    assert slant(bar()).item() == pytest.approx(0, abs=1e-6)
    assert slant(bar(width=2)).item() == pytest.approx(0, abs=1e-6)


@pytest.mark.parametrize("s", [1.0, -1.0, 0.5])
def test_sheared_bar_has_the_shear_as_slant(s):
    # exact on the grid for s = +-1; rounding to whole columns makes s = 0.5 approximate
    tol = 1e-6 if abs(s) == 1 else 0.1
    assert slant(bar(s=s)).item() == pytest.approx(s, abs=tol)


def test_shear_adds_its_value_to_the_slant_of_real_digits():
    digits = load_dataset("digits", "val").images[:100]
    for s in (-0.3, 0.2):
        change = slant(shear(digits, s)) - slant(digits)
        assert change.mean().item() == pytest.approx(s, abs=0.02)
    upright = shear(bar(), 0.4)
    assert slant(upright).item() == pytest.approx(0.4, abs=0.02)


def test_thicker_stroke_has_more_ink_and_ink_mass_is_the_pixel_sum():
    thin, thick = thickness(bar(1)), thickness(bar(2))
    assert thin.item() == pytest.approx(7) and thick.item() == pytest.approx(14)
    faint = bar(1) * 0.25
    assert thickness(faint).item() == pytest.approx(7 * 0.25)
    images = torch.rand(6, 1, 8, 8)
    torch.testing.assert_close(thickness(images), images.sum((1, 2, 3)))


def test_measure_columns_and_blank_images():
    images = torch.cat([bar(1, s=1.0), bar(2), torch.zeros(1, 1, 9, 9)])
    values = measure(images)
    assert values.shape == (3, len(ATTRIBUTES)) and ATTRIBUTES == ("thickness", "slant")
    torch.testing.assert_close(values[:, 0], thickness(images))
    torch.testing.assert_close(values[:, 1], slant(images))
    assert values[2].tolist() == [0.0, 0.0] and torch.isfinite(values).all()


def test_bad_images_are_refused():
    with pytest.raises(CondgenError, match=r"shape \(N, C, H, W\)"):
        measure(torch.rand(8, 8))
    with pytest.raises(CondgenError, match="ink cannot be negative"):
        measure(-torch.rand(2, 1, 8, 8))
    with pytest.raises(CondgenError, match="floats"):
        measure(torch.ones(2, 1, 8, 8, dtype=torch.int64))


def test_scaler_standardises_with_training_statistics():
    train = load_dataset("digits", "train")
    scaler = AttributeScaler(10).fit(train.images, train.labels)
    z = scaler(train.images)
    torch.testing.assert_close(z.mean(0), torch.zeros(2), atol=1e-4, rtol=0)
    torch.testing.assert_close(z.std(0), torch.ones(2), atol=1e-4, rtol=0)
    raw = measure(train.images)
    torch.testing.assert_close(scaler.inverse(z), raw, atol=1e-4, rtol=0)
    # the validation split is scaled with the *training* statistics, so it is only roughly standard
    val = scaler(load_dataset("digits", "val").images)
    assert val.mean(0).abs().max() < 0.5 and not torch.allclose(val.mean(0), torch.zeros(2), atol=1e-4)


def test_scaler_draws_attributes_like_each_class():
    train = load_dataset("digits", "train")
    scaler = AttributeScaler(10).fit(train.images, train.labels)
    z = scaler(train.images)
    g = torch.Generator().manual_seed(0)
    labels = torch.tensor([1, 7]).repeat_interleave(4000)
    drawn = scaler.sample(labels, g)
    for c in (1, 7):
        real = z[train.labels == c]
        torch.testing.assert_close(drawn[labels == c].mean(0), real.mean(0), atol=0.06, rtol=0)
        torch.testing.assert_close(torch.cov(drawn[labels == c].T), torch.cov(real.T), atol=0.1, rtol=0.1)
    # 7s lean right more than 1s do in these digits, and the draws keep that
    assert drawn[labels == 7, 1].mean() > drawn[labels == 1, 1].mean() + 1


def test_scaler_survives_a_state_dict_round_trip_and_refuses_use_before_fit():
    train = load_dataset("digits", "train")
    fresh = AttributeScaler(10)
    with pytest.raises(CondgenError, match="not fitted yet"):
        fresh(train.images)
    fitted = AttributeScaler(10).fit(train.images, train.labels)
    fresh.load_state_dict(fitted.state_dict())
    torch.testing.assert_close(fresh(train.images[:5]), fitted(train.images[:5]))
    with pytest.raises(CondgenError, match="label 10 is outside"):
        fitted.sample(torch.tensor([10]))
    with pytest.raises(CondgenError, match="unknown attribute"):
        AttributeScaler(10, names=("width",))


def test_one_standard_unit_of_slant_is_the_training_spread():
    train = load_dataset("digits", "train")
    scaler = AttributeScaler(10).fit(train.images, train.labels)
    spread = slant(train.images).std().item()
    images = train.images[:200]
    change = scaler(shear(images, spread))[:, 1] - scaler(images)[:, 1]
    assert change.mean().item() == pytest.approx(1.0, abs=0.1)
    assert math.isfinite(spread) and spread > 0
