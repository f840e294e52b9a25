"""Typed settings: each model family's frozen dataclass, checked when the model is built."""

import dataclasses

import pytest
import torch

from condgen_helpers import CondgenError
from condgen_helpers.models import MODELS, build_model, model_class
from condgen_helpers.training import load_checkpoint, save_checkpoint

SHAPE = (1, 8, 8)


@pytest.mark.parametrize("name", list(MODELS))
def test_every_model_builds_with_its_defaults_and_its_settings_are_frozen(name):
    model = build_model(name, SHAPE, 10)
    assert dataclasses.is_dataclass(model.config)
    assert model.config == model_class(name).Config()
    field = dataclasses.fields(model.config)[0].name
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(model.config, field, None)


@pytest.mark.parametrize("name, settings, message", [
    ("gan", {"z_dimm": 8}, "unknown setting 'z_dimm' for model 'gan': did you mean 'z_dim'?"),
    ("gan", {"g_loss": "nonsaturating"}, "g_loss='nonsaturating' is not a choice: did you mean 'non_saturating'?"),
    ("gan", {"output": "sigmoid "}, "output='sigmoid ' is not a choice: did you mean 'sigmoid'?"),
    ("cgan", {"discriminator": "projektion"}, "did you mean 'projection'?"),
    ("cvae-complete", {"prior": "learned"}, "unknown setting 'prior' for model 'cvae-complete'"),
    ("cvae", {"priors": "learned"}, "did you mean 'prior'?"),
    ("cfm", {"solver": "heune"}, "did you mean 'heun'?"),
    ("cfm", {"p_uncond": 1.0}, r"p_uncond must lie in \[0, 1\)"),
    ("vae", {"z_dim": 2.5}, "z_dim must be a whole number"),
    ("vae", {"hidden": 256}, "hidden must be a sequence"),
    ("acgan", {"shared_body": "yes"}, "shared_body must be True or False"),
    ("cvae-attr", {"attributes": ["thickness", "width"]}, "attributes must be some of thickness, slant"),
])
def test_a_bad_setting_fails_at_build_time_with_one_line(name, settings, message):
    with pytest.raises(CondgenError, match=message) as info:
        build_model(name, SHAPE, 10, **settings)
    assert "\n" not in str(info.value)


def test_json_lists_become_tuples_and_numbers_floats():
    model = build_model("gan", SHAPE, 10, g_hidden=[64, 64], betas=[0.5, 0.9], lr=1)
    assert model.config.g_hidden == (64, 64) and model.config.betas == (0.5, 0.9)
    assert isinstance(model.config.lr, float)
    assert model.config.replace(z_dim=8).z_dim == 8 and model.config.z_dim == 32
    with pytest.raises(CondgenError, match="did you mean 'z_dim'"):
        model.config.replace(zdim=8)


def test_a_checkpoint_written_before_the_typed_settings_still_loads(tmp_path):
    """Checkpoints of cvae-complete used to carry `prior` and `label_dim`, which it never read."""
    model = build_model("cvae-complete", SHAPE, 10)
    path = save_checkpoint(model, tmp_path / "model.pt")
    ckpt = torch.load(path, weights_only=True)
    ckpt["config"] = {**ckpt["config"], "prior": "standard", "label_dim": 16,
                      "hidden": list(ckpt["config"]["hidden"])}
    torch.save(ckpt, path)
    loaded, _ = load_checkpoint(path)
    assert loaded.config == model.config
    for a, b in zip(loaded.state_dict()["decoder"].values(), model.state_dict()["decoder"].values(), strict=True):
        assert torch.equal(a, b)
