"""Packing (PacGAN): the discriminator judges m samples at once."""
import pytest
import torch

from condgen_helpers.data import ring
from condgen_helpers.errors import CondgenError
from condgen_helpers.models import build_model
from condgen_helpers.models.gan import GAN, Discriminator
from condgen_helpers.reproducibility import seed_everything
from condgen_helpers.training import fit


def test_packed_discriminator_reads_consecutive_groups_as_one_input():
    torch.manual_seed(0)
    D = Discriminator((2,), hidden=(8,), pack=3)
    x = torch.randn(7, 2)
    out = D(x)
    assert out.shape == (2,)  # 7 samples -> two groups of 3, the last one dropped
    by_hand = D.net(torch.cat([x[0:3].flatten(), x[3:6].flatten()]).view(2, 6)).squeeze(1)
    torch.testing.assert_close(out, by_hand)
    # the group is read as a whole: swapping samples between groups changes both logits
    swapped = x.clone()
    swapped[[2, 3]] = x[[3, 2]]
    assert (D(swapped) - out).abs().min() > 0


def test_pack_one_is_the_plain_discriminator():
    torch.manual_seed(0)
    plain = Discriminator((2,), hidden=(8,))
    torch.manual_seed(0)
    packed = Discriminator((2,), hidden=(8,), pack=1)
    x = torch.randn(5, 2)
    torch.testing.assert_close(plain(x), packed(x))


def test_packed_gan_trains_one_step_with_half_as_many_logits():
    seed_everything(0)
    m = GAN((2,), n_classes=8, output="identity", z_dim=2, g_hidden=(16,), d_hidden=(16,), pack=2)
    x, y = ring(64, seed=0)
    stats = m.train_step(x, y)
    assert all(torch.isfinite(torch.tensor(v)) for v in stats.values())
    assert m.discriminate(x, None).shape == (32,)


@pytest.mark.parametrize("name, shape, pack, message", [
    ("gan", (2,), 0, "pack must lie in [1, 16]"),
    ("gan", (2,), 17, "pack must lie in [1, 16]"),
    ("cgan", (1, 8, 8), 2, "pack=2 works for the unconditional MLP discriminator only"),
    ("gan", (1, 28, 28), 2, "pack=2 works for the unconditional MLP discriminator only"),
])
def test_pack_refuses_what_it_cannot_do(name, shape, pack, message):
    with pytest.raises(CondgenError, match=message.replace("[", r"\[").replace("]", r"\]")):
        build_model(name, shape, 10, pack=pack)


def test_short_packed_training_moves_samples_onto_the_ring():
    points, modes = ring(1024, seed=0)
    seed_everything(0)
    m = GAN((2,), n_classes=8, output="identity", z_dim=2, g_hidden=(64, 64), d_hidden=(64,),
            lr=2e-3, g_batch_norm=False, pack=2)

    def off_ring() -> float:  # mean distance of the samples from the circle of radius 2
        s = m.sample(1000, generator=torch.Generator().manual_seed(1))
        return (s.norm(dim=1) - 2).abs().mean().item()

    before = off_ring()
    fit(m, (points, modes), epochs=30, batch_size=64, seed=0, progress=False)
    assert off_ring() < 0.5 * before, (before, off_ring())
