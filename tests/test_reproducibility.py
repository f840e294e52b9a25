import pytest
import torch

from condgen_helpers import CondgenError
from condgen_helpers.reproducibility import pick_device, seed_everything


def test_same_seed_same_numbers():
    g1 = seed_everything(7)
    a, ga = torch.randn(5), torch.randn(5, generator=g1)
    g2 = seed_everything(7)
    b, gb = torch.randn(5), torch.randn(5, generator=g2)
    assert torch.equal(a, b) and torch.equal(ga, gb)
    seed_everything(8)
    assert not torch.equal(torch.randn(5), a)


def test_bad_seed_and_device():
    with pytest.raises(CondgenError):
        seed_everything(-1)
    with pytest.raises(CondgenError, match="use one of auto, cpu, cuda, mps"):
        pick_device("tpu")


def test_auto_device_picks_what_exists():
    dev = pick_device("auto")
    mps = getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
    assert dev.type == ("cuda" if torch.cuda.is_available() else "mps" if mps else "cpu")
    assert pick_device("cpu").type == "cpu"
    if not torch.cuda.is_available():
        with pytest.raises(CondgenError, match="--device cpu"):
            pick_device("cuda")
