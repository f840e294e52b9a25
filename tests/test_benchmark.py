"""The benchmark's targets: a figure against a number, or against another model's figure measured
in the same run, optionally times a factor ("1.5*cgan": at most half as long again as the cGAN)."""

import pytest

from condgen_helpers import CondgenError
from condgen_helpers.experiments.benchmark import TARGETS, check_targets


def test_a_target_relative_to_another_model_uses_that_run_and_its_factor():
    measured = {"cgan": {"train_seconds": 20.0}}
    base = {"best_guidance": {"conditional_accuracy": 0.99, "diversity": 0.85},
            "guidance_sweep": {"0": {"classes_covered": 10}}}
    rows = {r[0]: r for r in check_targets("cfm", {**base, "train_seconds": 29.0}, measured)}
    assert rows["train_seconds"][2] == pytest.approx(30.0) and rows["train_seconds"][4]
    rows = {r[0]: r for r in check_targets("cfm", {**base, "train_seconds": 31.0}, measured)}
    assert not rows["train_seconds"][4], "31 s is more than 1.5 x 20 s"
    with pytest.raises(CondgenError, match="benchmark cgan in the same run"):
        check_targets("cfm", {**base, "train_seconds": 1.0}, {})


def test_a_target_naming_no_figure_of_the_run_is_an_error_not_a_miss():
    """A typo in a target's name used to read as "target missed"; now it names the figure."""
    with pytest.raises(CondgenError, match="'conditional_accuracy' is not a figure of this run"):
        check_targets("cgan", {"train_seconds": 1.0})
    rows = check_targets("cgan", {"train_seconds": 1.0, "conditional_accuracy": 0.5, "diversity": 0.9})
    assert [r[4] for r in rows] == [True, False, True]
    assert "cfm" in TARGETS and any(v == "1.5*cgan" for _, _, v in TARGETS["cfm"])
