"""The run store: the same training twice is trained once; any change to what decides the weights
trains afresh; a loaded model samples exactly as the freshly trained one did."""

import torch

from condgen_helpers.data import load_dataset
from condgen_helpers.experiments import runs


def _small():
    d = load_dataset("digits", "train")
    return d.subset(fraction=0.1, seed=0)


def test_the_same_training_is_loaded_and_gives_the_same_model(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(runs.STORE_ENV, str(tmp_path))
    data = _small()
    m1, h1, how1 = runs.trained("cgan", data, epochs=2, seed=0, progress=False)
    m2, h2, how2 = runs.trained("cgan", data, epochs=2, seed=0, progress=False)
    assert (how1, how2) == ("trained here", "loaded from the run store")
    out = capsys.readouterr().out
    assert "RETRAIN = True" in out
    labels = torch.arange(10)
    g = lambda: torch.Generator().manual_seed(3)  # noqa: E731
    assert torch.equal(m1.sample(10, labels, generator=g()), m2.sample(10, labels, generator=g()))
    assert dict(h1) == dict(h2) and h1 and h1.steps_per_epoch == h2.steps_per_epoch
    assert m2.steps == m1.steps
    # the global random state afterwards is the seed's, loaded or trained
    a = torch.rand(3)
    runs.trained("cgan", data, epochs=2, seed=0, progress=False)
    assert torch.equal(a, torch.rand(3))


def test_what_decides_the_weights_is_in_the_key(tmp_path, monkeypatch):
    monkeypatch.setenv(runs.STORE_ENV, str(tmp_path))
    data = _small()
    key = runs.run_key("cgan", data, 2, 0, 64, {})
    assert runs.run_key("cgan", data, 3, 0, 64, {}) != key
    assert runs.run_key("cgan", data, 2, 1, 64, {}) != key
    assert runs.run_key("cgan", data, 2, 0, 64, {"lr": 1e-4}) != key
    assert runs.run_key("cgan-proj", data, 2, 0, 64, {}) != key
    other = (data.images.clone(), data.labels.flip(0))
    assert runs.run_key("cgan", other, 2, 0, 64, {}) != key
    _, _, how = runs.trained("cgan", data, epochs=1, seed=0, progress=False)
    _, _, how_again = runs.trained("cgan", data, epochs=1, seed=0, progress=False, retrain=True)
    assert how == how_again == "trained here"
