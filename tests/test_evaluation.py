import numpy as np
import pytest
import scipy.linalg
import torch

from condgen_helpers import CondgenError
from condgen_helpers.data import load_dataset, ring, ring_centres
from condgen_helpers.evaluation import (
    accuracy,
    frechet_distance,
    image_metrics,
    load_classifier,
    mean_pairwise_distance,
    real_floor,
    ring_metrics,
)


def test_frechet_distance_matches_the_formula():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(500, 3))
    b = rng.normal(size=(400, 3)) @ np.diag([1.0, 2.0, 0.5]) + 1.0
    mu_a, mu_b, ca, cb = a.mean(0), b.mean(0), np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    want = ((mu_a - mu_b) ** 2).sum() + np.trace(ca + cb - 2 * scipy.linalg.sqrtm(ca @ cb).real)
    assert frechet_distance(a, b) == pytest.approx(want, rel=1e-6)
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-8)
    # a pure shift by c moves the distance by exactly |c|^2
    assert frechet_distance(a, a + np.array([3.0, 0, 4.0])) == pytest.approx(25.0, rel=1e-9)


def test_mean_pairwise_distance_by_hand():
    f = torch.tensor([[0.0, 0.0], [3.0, 4.0], [0.0, 0.0]])
    assert mean_pairwise_distance(f) == pytest.approx((5 + 5 + 0) / 3)
    assert mean_pairwise_distance(torch.zeros(5, 2)) == 0.0


def test_shipped_classifier_reaches_97_percent():
    test = load_dataset("digits", "test")
    assert accuracy(load_classifier("digits"), test.images, test.labels) >= 0.97


def test_real_floor_and_what_breaks_it():
    floor = real_floor("digits")
    assert floor["conditional_accuracy"] >= 0.97
    assert floor["diversity"] == pytest.approx(1.0)
    assert floor["classes_covered"] == 10 and floor["min_class_share"] > 0.05
    test = load_dataset("digits", "test")
    shuffled = test.labels[torch.randperm(len(test))]
    wrong = image_metrics(test.images, shuffled)
    assert wrong["conditional_accuracy"] < 0.2   # labels no longer match the images
    assert wrong["intra_fd"] > 2 * floor["intra_fd"]
    # one image repeated: perfect accuracy for its class, no diversity, a large distance
    first = test.images[:1].repeat(len(test), 1, 1, 1)
    collapsed = image_metrics(first, test.labels[:1].repeat(len(test)))
    assert collapsed["conditional_accuracy"] == 1.0
    assert collapsed["diversity"] == pytest.approx(0.0, abs=1e-6) and collapsed["classes_covered"] == 1
    assert collapsed["fd"] > 10 * floor["fd"]


def test_image_metrics_rejects_bad_input():
    with pytest.raises(CondgenError, match="shape"):
        image_metrics(torch.rand(10, 8, 8))
    with pytest.raises(CondgenError, match="\\[0, 1\\]"):
        image_metrics(torch.rand(10, 1, 8, 8) * 2 - 1)


def test_ring_metrics_on_constructed_points():
    centres = ring_centres()
    exact = centres.repeat(10, 1)
    m = ring_metrics(exact)
    assert m["modes_covered"] == 8 and m["high_quality"] == 1.0
    one_mode = centres[:1].repeat(80, 1)
    assert ring_metrics(one_mode)["modes_covered"] == 1
    far = torch.zeros(50, 2)  # the centre of the ring is far from every mode
    assert ring_metrics(far)["high_quality"] == 0.0
    pts, _ = ring(2000)
    real = ring_metrics(pts)
    assert real["modes_covered"] == 8 and real["high_quality"] > 0.98


def test_precision_recall_on_constructed_sets():
    from condgen_helpers.evaluation import precision_recall

    g = torch.Generator().manual_seed(0)
    real = torch.randn(400, 2, generator=g)
    same = torch.randn(400, 2, generator=g)
    pr = precision_recall(real, same)
    assert pr["precision"] > 0.85 and pr["recall"] > 0.85
    # a collapsed generator: all samples in one small blob at the centre of the data
    collapsed = 0.05 * torch.randn(400, 2, generator=g)
    pr = precision_recall(real, collapsed)
    assert pr["precision"] > 0.95 and pr["recall"] < 0.2
    # samples far away from the data: neither realistic nor covering
    far = torch.randn(400, 2, generator=g) + 20
    assert precision_recall(real, far) == {"precision": 0.0, "recall": 0.0}


def test_memorisation_flags_copies():
    from condgen_helpers.evaluation import memorisation

    train, test = load_dataset("digits", "train"), load_dataset("digits", "test")
    copies = memorisation(train.images[:200], train.images, test.images)
    assert copies["nn_ratio"] == 0.0 and copies["copy_share"] == 1.0
    fresh = memorisation(load_dataset("digits", "val").images, train.images, test.images)
    assert 0.8 < fresh["nn_ratio"] < 1.25 and fresh["copy_share"] < 0.05
