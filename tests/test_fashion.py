"""Fashion-MNIST end to end on IDX files this test writes (its data cannot be downloaded here):
loading, `condgen train`, `sample` and `evaluate`, with the garments' names where classes are shown."""

import json

import numpy as np
import pytest
import torch

from condgen_helpers.cli import class_names, main
from condgen_helpers.data import FASHION_CLASSES, load_dataset
from condgen_helpers.real_digits import write_idx


def write_fashion_idx(root, n_train=600, n_test=200, seed=0):
    """Torchvision's FashionMNIST layout: noise plus a block whose place depends on the class."""
    raw = root / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        labels = rng.integers(0, 10, n).astype(np.uint8)
        images = (rng.random((n, 28, 28)) < 0.1).astype(np.uint8) * 255
        for c in range(10):
            images[labels == c, 2 + 2 * c:5 + 2 * c, 6:22] = 200
        write_idx(raw, prefix, images, labels)


@pytest.fixture(scope="module")
def fashion_root(tmp_path_factory):
    from condgen_helpers.evaluation.classifier import _classifier_for, classifier_file

    root = tmp_path_factory.mktemp("fashion")
    write_fashion_idx(root)
    # an untrained evaluation classifier in the cache: this test is about the path, not the figures
    (root / "classifiers").mkdir()
    torch.save(_classifier_for(28).state_dict(), root / "classifiers" / classifier_file("fashion-mnist"))
    return root


def test_fashion_loads_with_the_garments_names(fashion_root):
    train = load_dataset("fashion-mnist", "train", root=fashion_root, download=False)
    test = load_dataset("fashion-mnist", "test", root=fashion_root, download=False)
    assert train.class_names == FASHION_CLASSES and train.class_names[9] == "Ankle boot"
    assert len(train) == 500 and len(test) == 200 and train.image_shape == (1, 28, 28)
    assert class_names("fashion-mnist", 10) == FASHION_CLASSES
    assert class_names("mnist", 10) == tuple("0123456789")


def test_train_sample_evaluate_on_fashion(fashion_root, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("CONDGEN_DATA", str(fashion_root))
    shown = {}
    import condgen_helpers.notebook.plots as plots
    real_save = plots.save_grid

    def spy(images, path, nrow=10, title=None, row_labels=None):
        shown["rows"] = row_labels
        real_save(images, path, nrow, title, row_labels)

    monkeypatch.setattr(plots, "save_grid", spy)
    run = tmp_path / "run"
    assert main(["train", "cgan", "--dataset", "fashion-mnist", "--epochs", "1", "--out", str(run), "--quiet"]) == 0
    assert (run / "samples.png").stat().st_size > 0
    assert shown["rows"] == FASHION_CLASSES, "the sample grid names each row's garment"
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["dataset"] == "fashion-mnist" and 0 <= metrics["conditional_accuracy"] <= 1
    assert main(["sample", str(run), "--n-per-class", "2", "--out", str(tmp_path / "s.npz")]) == 0
    with np.load(tmp_path / "s.npz") as f:
        assert f["images"].shape == (20, 1, 28, 28)
        assert [str(n) for n in f["class_names"]] == list(FASHION_CLASSES)
    assert main(["evaluate", str(run)]) == 0
    assert "conditional" in capsys.readouterr().out
