import pytest
import torch

from condgen_helpers.data import load_dataset
from condgen_helpers.evaluation import evaluate_model
from condgen_helpers.models import Recipe, build_model
from condgen_helpers.training import History, TrainingDiverged, fit


def test_short_gan_training_improves_the_samples():
    data = load_dataset("digits", "train")
    torch.manual_seed(0)
    model = build_model("gan", data.image_shape)
    before = evaluate_model(model)["fd"]
    history = fit(model, data, epochs=40, seed=0, progress=False)
    after = evaluate_model(model)
    assert model.steps == 40 * (1000 // 64)
    assert len(history["loss_D"]) == model.steps
    assert after["fd"] < before / 3, (before, after["fd"])
    assert after["classes_covered"] >= 6
    images = model.sample(5)
    assert images.shape == (5, 1, 8, 8) and images.min() >= 0 and images.max() <= 1


class _Exploding(Recipe):
    name = "exploding"
    defaults = {}

    def build(self):
        self.w = torch.nn.Linear(1, 1)

    def modules(self):
        return {"w": self.w}

    def train_step(self, x, y):
        return {"loss": float("nan") if self.steps >= 3 else 1.0}


def test_nan_stops_training_with_the_step_named():
    model = _Exploding((1, 8, 8))
    with pytest.raises(TrainingDiverged, match="diverged at step 4 .*loss is nan; lower the learning rate"):
        fit(model, load_dataset("digits", "train"), epochs=2, progress=False)


def test_history_epoch_means():
    h = History()
    h.steps_per_epoch = 2
    for v in (1.0, 3.0, 5.0, 7.0):
        h.append({"loss": v})
    assert h.epoch_means("loss") == [2.0, 6.0]


def test_bad_epochs_and_unknown_setting():
    from condgen_helpers import CondgenError

    data = load_dataset("digits", "train")
    model = build_model("gan", data.image_shape)
    with pytest.raises(CondgenError, match="non-negative"):
        fit(model, data, epochs=-1, progress=False)
    with pytest.raises(CondgenError, match="unknown setting"):
        build_model("gan", data.image_shape, learning_rate=1.0)
    with pytest.raises(CondgenError, match="unconditional"):
        model.sample(3, labels=torch.tensor([1, 2, 3]))
