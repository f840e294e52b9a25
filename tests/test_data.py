import struct

import numpy as np
import pytest
import torch

from condgen_helpers import CondgenError
from condgen_helpers.data import batches, load_dataset, quantise, ring, ring_centres


def test_digits_split_is_stratified_shuffled_and_disjoint():
    sizes = {s: len(load_dataset("digits", s)) for s in ("train", "val", "test")}
    assert sizes == {"train": 1000, "val": 350, "test": 447}
    from sklearn.datasets import load_digits

    from condgen_helpers.data import digits_split_indices
    raw = load_digits()
    idx = digits_split_indices(raw.target.tolist())
    together = torch.cat(list(idx.values()))
    assert len(together) == 1797 and len(set(together.tolist())) == 1797, "splits must be disjoint"
    test = load_dataset("digits", "test")
    np.testing.assert_allclose(test.images[0, 0].numpy(), raw.images[idx["test"][0]] / 16, atol=1e-7)
    # shuffled: the held-out splits draw from the whole file (all writers), not from its end
    assert idx["test"].min() < 100 and idx["val"].min() < 100 and idx["train"].max() > 1700
    # stratified: each class's share in every split is within one image of its share overall
    overall = np.bincount(raw.target, minlength=10) / 1797
    for name, ix in idx.items():
        shares = np.bincount(raw.target[ix.numpy()], minlength=10)
        assert np.all(np.abs(shares - overall * len(ix)) <= 1.01), name
    # the same split on every call
    assert torch.equal(digits_split_indices(raw.target.tolist())["val"], idx["val"])


def test_digits_shapes_ranges_and_levels():
    d = load_dataset("digits", "train")
    assert d.images.shape == (1000, 1, 8, 8) and d.images.dtype == torch.float32
    assert d.images.min() == 0 and d.images.max() == 1
    assert d.labels.dtype == torch.int64 and set(d.labels.tolist()) == set(range(10))
    # every pixel is one of 17 levels, and quantise recovers the integers 0..16
    q = quantise(d.images, d.levels)
    assert q.max() == 16 and torch.allclose(q.float() / 16, d.images)


def test_unknown_names_get_one_line_errors():
    with pytest.raises(CondgenError, match="use one of digits, mnist, fashion-mnist"):
        load_dataset("cifar10")
    with pytest.raises(CondgenError, match="unknown split"):
        load_dataset("digits", "dev")


def test_subset_is_stratified_and_checked():
    d = load_dataset("digits", "train")
    s = d.subset(fraction=0.2, seed=1)
    assert 190 <= len(s) <= 210
    counts = torch.bincount(s.labels, minlength=10)
    assert counts.min() >= 15  # every class kept in proportion
    with pytest.raises(CondgenError):
        d.subset(fraction=0)


def test_batches_cover_each_item_once():
    x = torch.arange(10)
    seen = torch.cat([b for (b,) in batches(x, batch_size=3, generator=torch.Generator().manual_seed(0))])
    assert len(seen) == 9 and len(set(seen.tolist())) == 9  # drop_last drops one


def test_ring_points_sit_on_their_modes():
    pts, labels = ring(4000, seed=3)
    centres = ring_centres()
    assert pts.shape == (4000, 2) and labels.shape == (4000,)
    assert torch.allclose(centres.norm(dim=1), torch.full((8,), 2.0))
    nearest = torch.cdist(pts, centres).argmin(1)
    assert (nearest == labels).all()
    assert torch.bincount(labels).min() > 400
    with pytest.raises(CondgenError):
        ring(0)


def _write_idx(root, folder, n_train=12, n_test=6, size=28):
    """Write tiny IDX files in the layout torchvision reads (big-endian headers, uint8 data)."""
    raw = root / folder / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        images = rng.integers(0, 256, size=(n, size, size), dtype=np.uint8)
        labels = (np.arange(n) % 10).astype(np.uint8)
        (raw / f"{prefix}-images-idx3-ubyte").write_bytes(
            struct.pack(">IIII", 2051, n, size, size) + images.tobytes())
        (raw / f"{prefix}-labels-idx1-ubyte").write_bytes(struct.pack(">II", 2049, n) + labels.tobytes())
    return images, labels


@pytest.mark.parametrize("name,folder", [("mnist", "MNIST"), ("fashion-mnist", "FashionMNIST")])
def test_torchvision_path_reads_idx_files(tmp_path, name, folder):
    test_images, test_labels = _write_idx(tmp_path, folder)
    train = load_dataset(name, "train", root=tmp_path, download=False)
    val = load_dataset(name, "val", root=tmp_path, download=False)
    test = load_dataset(name, "test", root=tmp_path, download=False)
    assert (len(train), len(val), len(test)) == (10, 2, 6)  # a sixth of train is validation
    assert test.images.shape == (6, 1, 28, 28) and test.images.max() <= 1
    np.testing.assert_allclose(test.images[2, 0].numpy(), test_images[2] / 255, atol=1e-6)
    assert test.labels.tolist() == test_labels.tolist()
    assert len(test.class_names) == 10


def test_missing_download_names_the_offline_dataset(tmp_path):
    with pytest.raises(CondgenError, match="--dataset digits"):
        load_dataset("mnist", "train", root=tmp_path, download=False)
