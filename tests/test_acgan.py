import math

import pytest
import torch
from torch.distributions import Bernoulli, Categorical

from condgen_helpers import CondgenError
from condgen_helpers.data import load_dataset
from condgen_helpers.evaluation import evaluate_model
from condgen_helpers.models import build_model
from condgen_helpers.models.gan import ACGAN, AuxiliaryClassifierDiscriminator
from condgen_helpers.nn import losses
from condgen_helpers.training import fit

SHAPE = (1, 8, 8)
sig = lambda t: 1 / (1 + math.exp(-t))  # noqa: E731


def test_source_log_likelihood_by_hand():
    real, fake = torch.tensor([2.0, 0.0]), torch.tensor([-1.0, 3.0])
    # E log P(S=real | x_real) + E log P(S=fake | x_fake), P(S=real | x) = sigmoid(logit)
    by_hand = 0.5 * (math.log(sig(2.0)) + math.log(0.5)) + 0.5 * (math.log(1 - sig(-1.0)) + math.log(1 - sig(3.0)))
    assert losses.source_log_likelihood(real, fake).item() == pytest.approx(by_hand, rel=1e-6)
    via_torch = Bernoulli(logits=real).log_prob(torch.ones(2)).mean() + Bernoulli(logits=fake).log_prob(torch.zeros(2)).mean()
    assert losses.source_log_likelihood(real, fake).item() == pytest.approx(via_torch.item(), rel=1e-6)


def test_class_log_likelihood_by_hand_and_against_categorical():
    logits = torch.tensor([[2.0, 0.0, -1.0], [0.5, 0.5, 3.0]])
    labels = torch.tensor([0, 1])
    z0 = math.exp(2) + math.exp(0) + math.exp(-1)
    z1 = 2 * math.exp(0.5) + math.exp(3)
    by_hand = 0.5 * (math.log(math.exp(2) / z0) + math.log(math.exp(0.5) / z1))
    assert losses.class_log_likelihood(logits, labels).item() == pytest.approx(by_hand, rel=1e-6)
    via_torch = Categorical(logits=logits).log_prob(labels).mean().item()
    assert losses.class_log_likelihood(logits, labels).item() == pytest.approx(via_torch, rel=1e-6)
    # a shift of every logit of a row changes nothing: the softmax is inside
    assert losses.class_log_likelihood(logits + 7.0, labels).item() == pytest.approx(by_hand, rel=1e-5)


def test_class_log_likelihood_refuses_probabilities():
    probs = torch.softmax(torch.tensor([[2.0, 0.0, -1.0]]), dim=1)
    with pytest.raises(CondgenError, match="applying a softmax before a loss that expects logits"):
        losses.class_log_likelihood(probs, torch.tensor([0]))
    with pytest.raises(CondgenError, match=r"shape \(N, K\)"):
        losses.class_log_likelihood(torch.zeros(3), torch.tensor([0]))


@pytest.mark.parametrize("kind", ["minimax", "non_saturating"])
def test_generator_loss_is_minus_lc_plus_ls_on_its_own_terms(kind):
    src, cls, labels = torch.tensor([0.3, -2.0]), torch.tensor([[1.0, 0.0], [0.0, 2.0]]), torch.tensor([1, 1])
    class_term = 0.5 * (math.log(math.exp(0) / (math.exp(1) + 1)) + math.log(math.exp(2) / (1 + math.exp(2))))
    if kind == "minimax":  # E log(1 - D_S(G)), the fake part of L_S
        source_term = 0.5 * (math.log(1 - sig(0.3)) + math.log(1 - sig(-2.0)))
    else:  # the non-saturating swap: -E log D_S(G)
        source_term = -0.5 * (math.log(sig(0.3)) + math.log(sig(-2.0)))
    got = losses.acgan_generator_loss(src, cls, labels, kind).item()
    assert got == pytest.approx(source_term - class_term, rel=1e-6)


def test_discriminator_has_two_heads_and_ignores_labels():
    d = AuxiliaryClassifierDiscriminator(SHAPE, (16, 8), n_classes=10)
    src, cls = d(torch.rand(4, *SHAPE))
    assert src.shape == (4,) and cls.shape == (4, 10)
    model = build_model("acgan", SHAPE)
    x = torch.rand(3, *SHAPE)
    model.D.eval()
    assert torch.equal(model.discriminate(x, torch.tensor([0, 1, 2])), model.discriminate(x, torch.tensor([9, 9, 9])))
    assert not hasattr(model.config, "discriminator")


def test_training_step_returns_the_terms_and_steps_both_players():
    torch.manual_seed(0)
    model = build_model("acgan", SHAPE)
    g0 = [p.detach().clone() for p in model.G.parameters()]
    d0 = [p.detach().clone() for p in model.D.parameters()]
    out = model.train_step(torch.rand(32, *SHAPE), torch.arange(32) % 10)
    assert out["loss_D"] == pytest.approx(-(out["L_S"] + out["L_C"]), rel=1e-5)
    # at the start D knows nothing: L_S near 2 log(1/2), L_C near 2 log(1/10)
    assert out["L_S"] == pytest.approx(-2 * math.log(2), abs=0.3)
    assert out["L_C"] == pytest.approx(-2 * math.log(10), abs=0.5)
    # an untrained class head reads 10 classes at about chance, far below a trained one
    assert out["aux_acc_real"] < 0.5 and out["aux_acc_fake"] < 0.5
    assert all(not torch.equal(a, b) for a, b in zip(g0, model.G.parameters(), strict=True))
    assert all(not torch.equal(a, b) for a, b in zip(d0, model.D.parameters(), strict=True))


def test_sampling_refuses_labels_outside_the_classes():
    model = build_model("acgan", SHAPE)
    assert model.sample(4, labels=torch.tensor([1, 2, 3, 4])).shape == (4, *SHAPE)
    with pytest.raises(CondgenError, match="label 10 is outside the classes"):
        model.sample(1, labels=torch.tensor([10]))


def test_short_training_teaches_the_class_head_and_the_generator():
    data = load_dataset("digits", "train")
    val = load_dataset("digits", "val")
    torch.manual_seed(0)
    model = ACGAN(data.image_shape)
    assert model.auxiliary_accuracy(val.images, val.labels) < 0.3
    before = evaluate_model(model)["conditional_accuracy"]
    fit(model, data, epochs=30, seed=0, progress=False)
    assert model.auxiliary_accuracy(val.images, val.labels) > 0.8
    # after 30 epochs the generator draws the asked digit far more often than chance (0.1) and than before;
    # how far varies with the CPU's rounding (0.61 and above 0.7 on two kinds of CPU), so the bar is 4x chance
    after = evaluate_model(model)["conditional_accuracy"]
    assert after > 0.4 and after > before + 0.25, (before, after)


def test_tacgan_adds_a_twin_classifier_with_its_own_optimiser_and_its_term_in_the_generator_loss():
    """TAC-GAN = AC-GAN's networks plus a twin classifier of generated images (checkpointed with them)."""
    torch.manual_seed(0)
    model = build_model("tacgan", (2,), 2, output="identity", z_dim=4, g_hidden=(16,), d_hidden=(16,), embed_dim=2)
    assert set(model.modules()) == {"G", "D", "twin"} and set(model.optimizers()) == {"G", "D", "twin"}
    x, y = torch.randn(64, 2), torch.randint(2, (64,))
    out = model.train_step(x, y)
    assert {"loss_D", "loss_G", "loss_twin"} <= set(out) and all(math.isfinite(v) for v in out.values())
    # the generator's loss is AC-GAN's minus the twin's class term (which adds its cross-entropy back)
    fake_labels = torch.randint(2, (64,))
    fake = model.generate(model.noise(64, 4), fake_labels)
    src, cls = model.D(fake)
    twin = model.twin(fake)
    want = losses.acgan_generator_loss(src, cls, fake_labels) + losses.class_log_likelihood(twin, fake_labels)
    assert torch.isfinite(want)


def test_tacgan_twin_learns_the_class_of_generated_points():
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    y = torch.randint(2, (2000,), generator=g)
    x = torch.tensor([[-2.0, 0.0], [2.0, 0.0]])[y] + 0.5 * torch.randn(2000, 2, generator=g)
    model = build_model("tacgan", (2,), 2, output="identity", z_dim=4, g_hidden=(32, 32), d_hidden=(32, 32),
                        embed_dim=2, d_dropout=0.0, lr=2e-3)
    history = fit(model, (x, y), epochs=15, batch_size=128, progress=False)
    twin = history["loss_twin"]
    assert sum(twin[-10:]) / 10 < 0.5 * sum(twin[:10]) / 10, "the twin should learn the generated classes"
    labels = torch.arange(2).repeat_interleave(200)
    points = model.sample(400, labels=labels, generator=torch.Generator().manual_seed(1))
    assert ((points[:, 0] > 0).long() == labels).float().mean() > 0.9, "G should follow the label"
