import numpy as np
import pytest
import scipy.linalg
import torch

from condgen_helpers import CondgenError
from condgen_helpers.data import load_dataset, ring, ring_centres
from condgen_helpers.evaluation import (
    accuracy,
    classifier_features,
    frechet_distance,
    image_metrics,
    kid,
    load_classifier,
    mean_pairwise_distance,
    predict,
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


def test_shipped_classifier_reaches_97_percent_on_images_it_never_saw():
    test = load_dataset("digits", "test")
    assert accuracy(load_classifier("digits"), test.images, test.labels) >= 0.97


def test_kid_matches_a_hand_computed_value():
    a = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 2.0]])
    b = torch.tensor([[1.0, 1.0], [2.0, 0.0]])

    def k(x, y):
        return (float(x @ y) / 2 + 1) ** 3

    within_a = sum(k(a[i], a[j]) for i in range(3) for j in range(3) if i != j) / 6
    within_b = sum(k(b[i], b[j]) for i in range(2) for j in range(2) if i != j) / 2
    cross = sum(k(x, y) for x in a for y in b) / 6
    assert kid(a, b) == pytest.approx(within_a + within_b - 2 * cross, rel=1e-12)
    # scale divides the features first
    assert kid(a, b, scale=2.0) == pytest.approx(kid(a / 2, b / 2), rel=1e-12)


def test_kid_is_unbiased_where_fd_is_biased_at_45_images():
    """Two samples of one 32-d Gaussian: FD is well above 0 at n = 45 and falls as n grows; KID
    averages 0 within its standard error at every n."""
    g = torch.Generator().manual_seed(0)
    kids, fds = {45: [], 400: []}, {45: [], 400: []}
    for n in kids:
        for _ in range(60 if n == 45 else 10):
            a, b = torch.randn(n, 32, generator=g), torch.randn(n, 32, generator=g)
            kids[n].append(kid(a, b))
            fds[n].append(frechet_distance(a, b))
    for n, values in kids.items():
        v = np.array(values)
        assert abs(v.mean()) < 3 * v.std(ddof=1) / np.sqrt(len(v)), f"KID biased at n={n}"
    assert np.mean(fds[45]) > 10, "FD of two samples of one distribution is far from 0 at n = 45"
    assert np.mean(fds[45]) > 4 * np.mean(fds[400]), "and the bias shrinks with n"
    # the bias shrinks with the spread: a sample with 85 % of the spread can beat real data on FD
    shrunk = [frechet_distance(torch.randn(45, 32, generator=g) * 0.85, torch.randn(100, 32, generator=g))
              for _ in range(40)]
    real = [frechet_distance(torch.randn(45, 32, generator=g), torch.randn(100, 32, generator=g))
            for _ in range(40)]
    assert np.mean(shrunk) < np.mean(real), "FD prefers the narrower sample at small n"
    shrunk_kid = [kid(torch.randn(45, 32, generator=g) * 0.85, torch.randn(100, 32, generator=g))
                  for _ in range(40)]
    real_kid = [kid(torch.randn(45, 32, generator=g), torch.randn(100, 32, generator=g))
                for _ in range(40)]
    assert np.mean(shrunk_kid) > np.mean(real_kid), "KID does not"


def test_new_metrics_refuse_bad_input_in_one_line():
    with pytest.raises(CondgenError, match="at least two images"):
        kid(torch.randn(1, 4), torch.randn(5, 4))
    with pytest.raises(CondgenError, match="same D"):
        kid(torch.randn(5, 4), torch.randn(5, 3))
    with pytest.raises(CondgenError, match="NaN"):
        kid(torch.full((5, 4), float("nan")), torch.randn(5, 4))
    with pytest.raises(CondgenError, match="shape"):
        image_metrics(torch.rand(10, 8, 8))
    with pytest.raises(CondgenError, match="dataset's are"):
        image_metrics(torch.rand(10, 1, 28, 28))
    with pytest.raises(CondgenError, match="\\[0, 1\\]"):
        image_metrics(torch.rand(10, 1, 8, 8) * 2 - 1)
    nan = torch.rand(10, 1, 8, 8)
    nan[3, 0, 2, 2] = float("nan")
    with pytest.raises(CondgenError, match="NaN.*lower"):
        image_metrics(nan)
    with pytest.raises(CondgenError, match="one per image"):
        image_metrics(torch.rand(10, 1, 8, 8), torch.zeros(9, dtype=torch.long))
    with pytest.raises(CondgenError, match="0..9"):
        image_metrics(torch.rand(10, 1, 8, 8), torch.full((10,), 10))


FIGURES = ("conditional_accuracy", "fd", "intra_fd", "kid", "intra_kid", "diversity", "precision",
           "recall", "nn_ratio", "copy_share")


def test_held_out_real_images_land_inside_the_floor_interval():
    """The property that makes the floor a floor: real images of the training distribution that
    no model saw score inside the interval on every figure. Here they are 20 deals of the held-out
    pool that the interval itself did not use (another seed): their median must lie inside it (one
    deal alone lands outside a 95 % range one time in twenty, figure by figure)."""
    from condgen_helpers.evaluation.protocol import (
        _class_spread,
        _score,
        copy_ratios,
        evaluation_sets,
    )

    floor = real_floor("digits")
    s = evaluation_sets("digits")
    pool_x = torch.cat([s.reference.images, s.floor.images])
    pool_y = torch.cat([s.reference.labels, s.floor.labels])
    g = torch.Generator().manual_seed(12345)
    figures = {k: [] for k in FIGURES}
    for _ in range(20):
        ref, held = [], []
        for c in range(10):
            idx = torch.nonzero(pool_y == c).flatten()
            idx = idx[torch.randperm(len(idx), generator=g)]
            n_ref = int((s.reference.labels == c).sum())
            ref.append(idx[:n_ref])
            held.append(idx[n_ref:])
        ri, hi = torch.cat(ref), torch.cat(held)
        f_ref = classifier_features(s.clf, pool_x[ri])
        out = _score(classifier_features(s.clf, pool_x[hi]), predict(s.clf, pool_x[hi]), pool_y[hi], pool_y[hi],
                     copy_ratios(pool_x[hi], s.train.images, pool_x[ri]), f_ref, pool_y[ri],
                     _class_spread(f_ref, pool_y[ri], 10), s.floor_ratios, 10, s.kid_scale)
        for k in FIGURES:
            figures[k].append(out[k])
    for k in FIGURES:
        lo, hi = floor["interval"][k]
        assert lo <= np.median(figures[k]) <= hi, f"{k}: {np.median(figures[k]):.4f} outside [{lo:.4f}, {hi:.4f}]"


def test_a_shrunk_generator_scores_worse_than_the_floor_per_class():
    """Real images pulled 30 % toward their class mean vary too little. FD at this n can be
    fooled by that; the per-class KID must put it outside the floor's interval, on the bad side."""
    floor = real_floor("digits")
    train, test = load_dataset("digits", "train"), load_dataset("digits", "test")
    means = torch.stack([train.images[train.labels == c].mean(0) for c in range(10)])
    shrunk = image_metrics(0.7 * test.images + 0.3 * means[test.labels], test.labels)
    assert shrunk["intra_kid"] > floor["interval"]["intra_kid"][1]
    assert shrunk["diversity"] < floor["interval"]["diversity"][0]
    assert shrunk["copy_share"] <= floor["interval"]["copy_share"][1], "shrinking is not copying"


def test_floor_figures_and_what_breaks_them():
    floor = real_floor("digits")
    assert floor["conditional_accuracy"] >= 0.97
    assert floor["interval"]["diversity"][0] < 1.0 < floor["interval"]["diversity"][1]
    assert floor["interval"]["intra_kid"][0] < 0.0 < floor["interval"]["intra_kid"][1], \
        "per-class KID of real against real must straddle 0"
    assert floor["classes_covered"] == 10 and floor["min_class_share"] > 0.05
    test = load_dataset("digits", "test")
    shuffled = test.labels[torch.randperm(len(test))]
    wrong = image_metrics(test.images, shuffled)
    assert wrong["conditional_accuracy"] < 0.2   # labels no longer match the images
    assert wrong["intra_kid"] > floor["interval"]["intra_kid"][1]
    # one image repeated: perfect accuracy for its class, no diversity, a large distance
    first = test.images[:1].repeat(len(test), 1, 1, 1)
    collapsed = image_metrics(first, test.labels[:1].repeat(len(test)))
    assert collapsed["conditional_accuracy"] == 1.0
    assert collapsed["diversity"] == pytest.approx(0.0, abs=1e-6) and collapsed["classes_covered"] == 1
    assert collapsed["fd"] > 10 * floor["fd"]


def test_unconditional_floor_deals_classes_at_random():
    cond, uncond = real_floor("digits", conditional=True), real_floor("digits", conditional=False)
    assert "conditional_accuracy" not in uncond
    # fixed class counts pull the overall KID below 0; random counts centre it on 0
    assert cond["interval"]["kid"][1] < 0 < uncond["interval"]["kid"][1]
    with pytest.raises(CondgenError, match="at least 2 resplits"):
        real_floor("digits", resplits=1)


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


def test_ring_mode_entropy_counts_modes_in_bits_sharp_or_not():
    centres = ring_centres()
    assert ring_metrics(centres.repeat(10, 1))["mode_entropy"] == pytest.approx(3.0)
    assert ring_metrics(centres[:4].repeat(10, 1))["mode_entropy"] == pytest.approx(2.0)
    # everything near one mode is 0 bits even when no point is close enough to count as sharp
    blurred = centres[:1] * 1.3 + 0.01 * torch.randn(100, 2, generator=torch.Generator().manual_seed(0))
    m = ring_metrics(blurred)
    assert m["mode_entropy"] == 0.0 and m["high_quality"] == 0.0
    # a 3:1 split of two modes: -(3/4 log2 3/4 + 1/4 log2 1/4), by hand 0.811278
    split = torch.cat([centres[:1].repeat(30, 1), centres[1:2].repeat(10, 1)])
    assert ring_metrics(split)["mode_entropy"] == pytest.approx(0.811278, abs=1e-6)


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
    assert precision_recall(real, far) == {"precision": 0.0, "recall": 0.0, "density": 0.0, "coverage": 0.0}


def test_density_and_coverage_by_hand_and_under_collapse():
    from condgen_helpers.evaluation import precision_recall

    # real points 0, 1, 2, 3 on a line, k = 1: each ball reaches the nearest other point, radius 1
    real = torch.tensor([[0.0], [1.0], [2.0], [3.0]])
    gen = torch.tensor([[0.5], [0.5], [10.0]])
    pr = precision_recall(real, gen, k=1)
    # 0.5 lies in the balls of 0 and 1 (2 hits each), 10 in none: density (2 + 2 + 0) / (3 * 1)
    assert pr["density"] == pytest.approx(4 / 3) and pr["coverage"] == pytest.approx(2 / 4)
    assert pr["precision"] == pytest.approx(2 / 3)
    # samples distributed like the data: density and coverage near 1; a collapsed blob at the mode:
    # each of its points still lies in about k real balls (density stays near 1), but coverage falls
    g = torch.Generator().manual_seed(0)
    data = torch.randn(400, 2, generator=g)
    same = precision_recall(data, torch.randn(400, 2, generator=g), k=5)
    assert 0.8 < same["density"] < 1.2 and same["coverage"] > 0.85
    blob = precision_recall(data, 0.05 * torch.randn(400, 2, generator=g), k=5)
    assert blob["density"] > 0.5 and blob["coverage"] < 0.2


def test_copying_is_measured_per_sample_and_blur_is_not_copying():
    from condgen_helpers.evaluation import evaluation_sets, memorisation

    s = evaluation_sets("digits")
    copies = memorisation(s.train.images[:200], s.train.images, s.reference.images, s.floor_ratios)
    assert copies["nn_ratio"] == 0.0 and copies["copy_share"] == 1.0
    # new real images: about 5 % fall below the 5 % quantile of the floor's ratios
    floor = real_floor("digits")
    lo, hi = floor["interval"]["copy_share"]
    assert lo <= floor["copy_share"] <= hi and 0.02 < floor["copy_share"] < 0.08
    # a blurred real image is near every set alike: blur must not read as copying
    blur = torch.nn.functional.avg_pool2d(s.floor.images, 3, stride=1, padding=1, count_include_pad=False)
    blurred = memorisation(blur, s.train.images, s.reference.images, s.floor_ratios)
    assert blurred["copy_share"] <= hi and blurred["nn_ratio"] > 0.9
    # half copies, half new images: the share sees the copied half
    mixed = torch.cat([s.train.images[:100], s.floor.images[:100]])
    assert 0.5 <= memorisation(mixed, s.train.images, s.reference.images, s.floor_ratios)["copy_share"] < 0.6


def test_nearest_distance_in_chunks_matches_cdist():
    from condgen_helpers.evaluation import nearest_distance

    g = torch.Generator().manual_seed(0)
    x, ref = torch.rand(37, 1, 8, 8, generator=g), torch.rand(53, 1, 8, 8, generator=g)
    want = torch.cdist(x.flatten(1).double(), ref.flatten(1).double()).min(1).values
    assert torch.allclose(nearest_distance(x, ref, chunk=5), want, atol=1e-5)


def test_precision_recall_subsample_is_documented_and_close():
    from condgen_helpers.evaluation import precision_recall

    g = torch.Generator().manual_seed(1)
    real, gen = torch.randn(3000, 4, generator=g), torch.randn(3000, 4, generator=g) * 0.5
    full, sub = precision_recall(real, gen), precision_recall(real, gen, max_n=1500)
    assert abs(full["precision"] - sub["precision"]) < 0.05 and abs(full["recall"] - sub["recall"]) < 0.08


def test_repeated_digits_draw_only_the_first_k_of_the_asked_class():
    from condgen_helpers.data import load_dataset
    from condgen_helpers.evaluation import image_metrics, repeated_digits

    train = load_dataset("digits", "train")
    labels = torch.arange(10).repeat_interleave(30)
    images = repeated_digits(train, labels, 3, torch.Generator().manual_seed(0))
    assert images.shape == (300, 1, 8, 8)
    for c in range(10):
        pool = train.images[train.labels == c][:3].flatten(1)
        got = images[labels == c].flatten(1)
        # every image is exactly one of the class's first three training digits, and all three appear
        match = (got[:, None, :] == pool[None, :, :]).all(-1)
        assert match.any(1).all() and match.any(0).all()
    # fewer digits known, less variety: diversity rises with k
    div = [image_metrics(repeated_digits(train, labels, k, torch.Generator().manual_seed(0)), labels,
                         copying=False)["diversity"] for k in (1, 10)]
    assert div[0] < 1e-6 and div[1] > 0.5
    with pytest.raises(CondgenError, match="at least 1"):
        repeated_digits(train, labels, 0)


def test_a_repeated_image_has_recall_zero_by_construction():
    """Why notebook 06 does not assert it: a generated point repeated more than k times has its k nearest
    generated neighbours at distance 0, so its ball is empty and no real point can fall in it."""
    from condgen_helpers.evaluation import precision_recall

    g = torch.Generator().manual_seed(0)
    real = torch.randn(200, 5, generator=g)
    repeated = (real[:10] + 0.01).repeat_interleave(45, 0)   # ten images, 45 copies each
    assert precision_recall(real, repeated)["recall"] == 0.0
    # one copy each, the same ten points reach real ones again
    assert precision_recall(real, real[:10] + 0.01, k=3)["recall"] > 0
