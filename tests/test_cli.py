import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from condgen_helpers.cli import main


@pytest.fixture(scope="module")
def gan_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    assert main(["train", "gan", "--out", str(out), "--epochs", "3", "--seed", "1", "--quiet"]) == 0
    return out


def test_train_writes_checkpoint_metrics_and_grid(gan_run):
    assert {p.name for p in gan_run.iterdir()} >= {"model.pt", "metrics.json", "samples.png"}
    m = json.loads((gan_run / "metrics.json").read_text())
    assert (m["model"], m["dataset"], m["epochs"], m["seed"]) == ("gan", "digits", 3, 1)
    assert m["train_seconds"] > 0 and m["fd"] > m["floor"]["fd"]
    assert set(m) >= {"intra_fd", "diversity", "min_class_share", "classes_covered", "floor"}


def test_sample_writes_images_in_range(gan_run, tmp_path):
    assert main(["sample", str(gan_run), "--out", str(tmp_path / "s.npz"), "--n", "12"]) == 0
    arrays = np.load(tmp_path / "s.npz")
    assert arrays["images"].shape == (12, 1, 8, 8) and arrays["images"].dtype == np.float32
    assert 0 <= arrays["images"].min() and arrays["images"].max() <= 1
    assert "labels" not in arrays  # an unconditional model has none


def test_evaluate_prints_json(gan_run, capsys):
    assert main(["evaluate", str(gan_run)]) == 0
    figures = json.loads(capsys.readouterr().out)
    assert figures["model"] == "gan" and figures["n"] == 447


@pytest.mark.parametrize("argv,needle", [
    (["train", "vqgan", "--out", "X"], "unknown model 'vqgan'"),
    (["train", "gan", "--out", "X", "--dataset", "svhn"], "unknown dataset 'svhn'"),
    (["train", "gan", "--out", "X", "--device", "tpu"], "unknown device"),
    (["evaluate", "no/such/run"], "train one first"),
])
def test_bad_input_exits_2_with_one_line(argv, needle, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert needle in err and err.count("\n") == 1


def test_label_options_refused_for_unconditional_model(gan_run, tmp_path, capsys):
    assert main(["sample", str(gan_run), "--out", str(tmp_path / "s.npz"), "--n-per-class", "2"]) == 2
    assert "unconditional" in capsys.readouterr().err


def test_foreign_checkpoint_exits_2(tmp_path, capsys):
    torch.save({"state": {}}, tmp_path / "model.pt")
    assert main(["evaluate", str(tmp_path)]) == 2
    assert "not a condgen checkpoint" in capsys.readouterr().err


def test_module_entry_point_and_argparse_errors_are_one_line():
    r = subprocess.run([sys.executable, "-m", "condgen_helpers", "train", "gan", "--out", "x",
                        "--epochs", "-5"], capture_output=True, text=True)
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and "must be zero or more" in r.stderr
    assert "Traceback" not in r.stderr
