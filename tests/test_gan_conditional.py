import json

import numpy as np
import pytest
import torch

from condgen_helpers import CondgenError
from condgen_helpers.cli import main
from condgen_helpers.data import load_dataset
from condgen_helpers.evaluation import evaluate_model
from condgen_helpers.models import build_model
from condgen_helpers.models.gan import ConditionalGAN, Discriminator, ProjectionDiscriminator
from condgen_helpers.nn.conditioning import LabelEmbedding, LabelProjection
from condgen_helpers.training import fit, load_checkpoint, save_checkpoint

SHAPE = (1, 8, 8)


def test_label_projection_is_the_inner_product_of_class_vector_and_features():
    proj = LabelProjection(3, 2)
    assert torch.equal(proj(torch.randn(4, 2), torch.tensor([0, 1, 2, 0])), torch.zeros(4))  # starts blind
    with torch.no_grad():
        proj.table.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 2.0], [-1.0, 1.0]]))
    features = torch.tensor([[3.0, 4.0], [3.0, 4.0], [3.0, 4.0]])
    # by hand: (1, 0).(3, 4) = 3, (0, 2).(3, 4) = 8, (-1, 1).(3, 4) = 1
    assert proj(features, torch.tensor([0, 1, 2])).tolist() == [3.0, 8.0, 1.0]


def test_label_projection_refuses_bad_input():
    proj = LabelProjection(3, 2)
    with pytest.raises(CondgenError, match="label 3 is outside the classes: use integers 0..2"):
        proj(torch.zeros(1, 2), torch.tensor([3]))
    with pytest.raises(CondgenError, match=r"features must have shape \(N, 2\)"):
        proj(torch.zeros(1, 5), torch.tensor([0]))


def test_projection_discriminator_is_psi_plus_projection():
    d = ProjectionDiscriminator(SHAPE, (16, 8), n_classes=10)
    torch.nn.init.normal_(d.project.table.weight)
    x, y = torch.rand(5, *SHAPE), torch.tensor([0, 1, 2, 3, 9])
    h = d.phi(x.flatten(1))
    expected = d.psi(h).squeeze(1) + (d.project.table.weight[y] * h).sum(1)
    assert torch.allclose(d(x, y), expected)
    # the label acts only through the projection: two labels differ by (e_a - e_b) . phi(x)
    e = d.project.table.weight
    assert torch.allclose(d(x, torch.full((5,), 4)) - d(x, torch.full((5,), 7)), h @ (e[4] - e[7]), atol=1e-5)


def test_registry_names_select_the_discriminator():
    assert isinstance(build_model("cgan", SHAPE).D, Discriminator)
    proj = build_model("cgan-proj", SHAPE)
    assert isinstance(proj.D, ProjectionDiscriminator) and proj.name == "cgan-proj"
    assert isinstance(build_model("cgan", SHAPE, discriminator="projection").D, ProjectionDiscriminator)
    with pytest.raises(CondgenError, match="discriminator='hinge' is not a choice: .*'concat', 'projection'"):
        build_model("cgan", SHAPE, discriminator="hinge")
    with pytest.raises(CondgenError, match="did you mean 'projection'"):
        build_model("cgan", SHAPE, discriminator="projektion")


@pytest.mark.parametrize("name", ["cgan", "cgan-proj"])
def test_sampling_follows_the_labels_and_refuses_unknown_ones(name):
    model = build_model(name, SHAPE)
    labels = torch.tensor([0, 3, 9, 3])
    images = model.sample(4, labels=labels, generator=torch.Generator().manual_seed(1))
    assert images.shape == (4, *SHAPE) and 0 <= images.min() and images.max() <= 1
    # same noise, same label -> same image; same noise, other label -> another image
    again = model.sample(4, labels=labels, generator=torch.Generator().manual_seed(1))
    other = model.sample(4, labels=torch.tensor([1, 4, 8, 2]), generator=torch.Generator().manual_seed(1))
    assert torch.equal(images, again) and not torch.allclose(images, other)
    for bad in (torch.tensor([10]), torch.tensor([-1])):
        with pytest.raises(CondgenError, match="outside the classes"):
            model.sample(1, labels=bad)
    with pytest.raises(CondgenError, match="one label per sample"):
        model.sample(3, labels=torch.tensor([1, 2]))


def test_training_step_shows_d_the_real_labels_and_g_drawn_ones():
    model = build_model("cgan", SHAPE)
    seen = []
    original = model.discriminate
    model.discriminate = lambda x, y: seen.append(y.clone()) or original(x, y)
    x, y = torch.rand(16, *SHAPE), torch.arange(16) % 10
    model.train_step(x, y)
    assert len(seen) == 3  # real pairs, fakes for D, fakes for G
    assert torch.equal(seen[0], y)
    assert torch.equal(seen[1], seen[2]) and seen[1].shape == (16,)  # G is judged on the labels it was given


def test_embedding_table_learns_during_training():
    model = build_model("cgan", SHAPE)
    before = model.G.cond.table.weight.detach().clone()
    data = load_dataset("digits", "train")
    fit(model, data, epochs=1, progress=False)
    assert isinstance(model.G.cond, LabelEmbedding)
    assert not torch.allclose(before, model.G.cond.table.weight)


def test_short_training_makes_the_generator_follow_the_label():
    data = load_dataset("digits", "train")
    torch.manual_seed(0)
    model = ConditionalGAN(data.image_shape)
    before = evaluate_model(model)["conditional_accuracy"]
    fit(model, data, epochs=40, seed=0, progress=False)
    after = evaluate_model(model)
    assert before < 0.3  # an untrained generator ignores the label
    assert after["conditional_accuracy"] > 0.7, after["conditional_accuracy"]


def test_checkpoint_round_trip_keeps_the_projection_variant(tmp_path):
    model = build_model("cgan-proj", SHAPE)
    torch.nn.init.normal_(model.D.project.table.weight)
    save_checkpoint(model, tmp_path / "model.pt")
    loaded, meta = load_checkpoint(tmp_path)
    assert meta["model"] == "cgan-proj" and isinstance(loaded.D, ProjectionDiscriminator)
    assert torch.equal(loaded.D.project.table.weight, model.D.project.table.weight)
    labels = torch.arange(10)
    a = model.sample(10, labels=labels, generator=torch.Generator().manual_seed(2))
    b = loaded.sample(10, labels=labels, generator=torch.Generator().manual_seed(2))
    assert torch.equal(a, b)


def test_cli_train_and_sample_per_class(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "cgan", "--out", str(run), "--epochs", "2", "--quiet"]) == 0
    metrics = json.loads((run / "metrics.json").read_text())
    assert {"conditional_accuracy", "intra_fd", "intra_kid", "copy_share"} <= set(metrics)
    # the model never trains a copy of itself to grade itself
    assert not any("tenth" in k for k in metrics)
    assert main(["sample", str(run), "--out", str(tmp_path / "s.npz"), "--n-per-class", "3"]) == 0
    arrays = np.load(tmp_path / "s.npz")
    assert arrays["images"].shape == (30, 1, 8, 8)
    assert arrays["labels"].tolist() == [c for c in range(10) for _ in range(3)]
    capsys.readouterr()
    assert main(["sample", str(run), "--out", str(tmp_path / "t.npz"), "--labels", "3,12"]) == 2
    err = capsys.readouterr().err
    assert "label 12 is outside the classes" in err and err.count("\n") == 1
