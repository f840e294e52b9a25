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


TRAINING_ONLY = {"epochs", "device", "train_seconds", "steps", "final_losses"}


@pytest.mark.parametrize("model, figures", [
    # 30 s (importance-weighted bounds with K = 1000 over the test split): `make test-slow`
    pytest.param("cvae", {"test_nll_x_given_y_nats", "test_bits_per_dim", "bayes_accuracy", "decoder_means"},
                 marks=pytest.mark.slow),
    ("cfm", {"best_guidance", "guidance_sweep"}),
])
def test_evaluate_prints_the_figures_train_wrote(model, figures, tmp_path, capsys):
    """`condgen evaluate RUN` runs the same pipeline step as `condgen train`: the same figures,
    the same values (the samples are drawn from the training seed)."""
    run = tmp_path / model
    assert main(["train", model, "--out", str(run), "--epochs", "1", "--seed", "2", "--quiet"]) == 0
    written = json.loads((run / "metrics.json").read_text())
    capsys.readouterr()
    assert main(["evaluate", str(run)]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert figures <= set(printed), f"evaluate left out {figures - set(printed)}"
    assert set(printed) == set(written) - TRAINING_ONLY
    assert printed == {k: v for k, v in written.items() if k not in TRAINING_ONLY}


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


def test_existing_run_folder_is_refused_unless_overwrite(gan_run, capsys):
    before = (gan_run / "model.pt").read_bytes()
    assert main(["train", "gan", "--out", str(gan_run), "--epochs", "1", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "already holds a run" in err and "--overwrite" in err and err.count("\n") == 1
    assert (gan_run / "model.pt").read_bytes() == before, "nothing may be lost"


def test_overwrite_replaces_files_atomically(tmp_path):
    run = tmp_path / "run"
    assert main(["train", "gan", "--out", str(run), "--epochs", "1", "--quiet"]) == 0
    assert main(["train", "gan", "--out", str(run), "--epochs", "1", "--seed", "3", "--quiet",
                 "--overwrite"]) == 0
    assert json.loads((run / "metrics.json").read_text())["seed"] == 3
    assert not [p for p in run.iterdir() if p.name.endswith(".tmp")], "no temporary file is left"


def test_interrupted_training_ends_with_one_line_and_writes_nothing(tmp_path, monkeypatch, capsys):
    import condgen_helpers.experiments.pipeline as bench

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(bench, "train_and_evaluate", interrupted)
    assert main(["train", "gan", "--out", str(tmp_path / "run"), "--quiet"]) == 130
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "interrupted" in err
    assert not (tmp_path / "run").exists()


def test_leaderboard_renders_a_stored_file(tmp_path, capsys):
    from condgen_helpers.experiments import leaderboard as lb

    result = {"n": 447, "seeds": [0, 1], "runs": [
        {"model": "gan", "seed": 0, "conditional": False, "fd": 30.0, "train_seconds": 10.0},
        {"model": "gan", "seed": 1, "conditional": False, "fd": 34.0, "train_seconds": 12.0}],
        "floor": {"fd": 6.0, "interval": {"fd": [4.0, 9.0]}}}
    lb.save(result, tmp_path / "lb.json")
    assert main(["leaderboard", "--from", str(tmp_path / "lb.json")]) == 0
    out = capsys.readouterr().out
    assert "| gan | 2 | 11 ± 1 | 32.0 ± 2.8 |" in out and "6.0 [4.0, 9.0]" in out
    assert main(["leaderboard", "--from", str(tmp_path / "missing.json")]) == 2
    assert "make leaderboard" in capsys.readouterr().err


def test_decode_choices_match_the_likelihoods():
    from condgen_helpers.cli import DECODES
    from condgen_helpers.nn.likelihoods import DECODES as LIKELIHOOD_DECODES
    assert DECODES == LIKELIHOOD_DECODES


def test_sample_decode_gives_means_modes_and_draws_of_the_same_codes(tmp_path, capsys):
    run = tmp_path / "cvae"
    assert main(["train", "cvae", "--out", str(run), "--epochs", "2", "--seed", "0", "--quiet"]) == 0
    got = {}
    for decode in ("mean", "mode", "draw"):
        out = tmp_path / f"{decode}.npz"
        assert main(["sample", str(run), "--out", str(out), "--n-per-class", "3", "--decode", decode]) == 0
        got[decode] = np.load(out)["images"]
    default = tmp_path / "default.npz"
    assert main(["sample", str(run), "--out", str(default), "--n-per-class", "3"]) == 0
    np.testing.assert_array_equal(np.load(default)["images"], got["mean"])   # the mean by default
    for decode in ("mode", "draw"):                                        # the 17 grey levels
        np.testing.assert_allclose(got[decode] * 16, np.round(got[decode] * 16), atol=1e-5)
    assert not np.allclose(got["mean"] * 16, np.round(got["mean"] * 16))
    assert not np.array_equal(got["mode"], got["draw"])


def test_decode_refused_for_a_gan(gan_run, tmp_path, capsys):
    assert main(["sample", str(gan_run), "--out", str(tmp_path / "s.npz"), "--decode", "mode"]) == 2
    err = capsys.readouterr().err
    assert "--decode is for the VAE family" in err and err.count("\n") == 1
