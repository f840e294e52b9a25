import os

import pytest
import torch

from condgen_helpers import CondgenError
from condgen_helpers.data import load_dataset
from condgen_helpers.models import build_model
from condgen_helpers.training import fit, load_checkpoint, save_checkpoint


def test_round_trip_gives_identical_samples(tmp_path):
    data = load_dataset("digits", "train")
    model = build_model("gan", data.image_shape)
    fit(model, data, epochs=2, progress=False)
    save_checkpoint(model, tmp_path / "model.pt")
    loaded, meta = load_checkpoint(tmp_path)
    assert meta["model"] == "gan" and meta["steps"] == model.steps
    a = model.sample(8, generator=torch.Generator().manual_seed(3))
    b = loaded.sample(8, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a, b)


class _Payload:
    def __reduce__(self):
        return (os.makedirs, ("PWNED_DIR",))


def test_checkpoint_carrying_code_is_refused_not_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    torch.save({"format": "condgen-checkpoint/1", "x": _Payload()}, tmp_path / "model.pt")
    with pytest.raises(CondgenError, match="not a condgen checkpoint"):
        load_checkpoint(tmp_path / "model.pt")
    assert not (tmp_path / "PWNED_DIR").exists()


def test_foreign_and_missing_files(tmp_path):
    torch.save({"weights": torch.zeros(3)}, tmp_path / "model.pt")
    with pytest.raises(CondgenError, match="marker"):
        load_checkpoint(tmp_path)
    (tmp_path / "junk.pt").write_text("not a checkpoint")
    with pytest.raises(CondgenError, match="not a condgen checkpoint"):
        load_checkpoint(tmp_path / "junk.pt")
    with pytest.raises(CondgenError, match="condgen train"):
        load_checkpoint(tmp_path / "nowhere")
