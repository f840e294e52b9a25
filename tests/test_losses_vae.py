"""The likelihood-model objectives against closed forms, torch.distributions and hand values."""

import math

import pytest
import torch
from torch.distributions import MultivariateNormal, Normal, kl_divergence

from condgen_helpers.errors import CondgenError
from condgen_helpers.models.vae import LinearGaussian, elbo_gradient_samples
from condgen_helpers.nn import losses


def _model(orthogonal: bool = False, seed: int = 0) -> LinearGaussian:
    g = torch.Generator().manual_seed(seed)
    W = torch.randn(5, 2, generator=g)
    if orthogonal:  # orthogonal columns make the true posterior diagonal, so a diagonal q can match it
        W = torch.linalg.qr(W).Q * torch.tensor([1.5, 0.7])
    return LinearGaussian(W, torch.randn(5, generator=g), sigma2=0.5,
                          prior_mu=torch.tensor([1.0, -0.5]), prior_logvar=torch.tensor([0.3, -0.2]))


# --- the Gaussian KL -------------------------------------------------------------------------------

def test_gaussian_kl_hand_values():
    zero = torch.zeros(1, 3)
    # a distribution has no divergence from itself
    assert losses.gaussian_kl(zero, zero).item() == 0.0
    # KL(N(1, 1) || N(0, 1)) = 1/2 per dimension: only the squared mean difference remains
    assert losses.gaussian_kl(torch.ones(1, 3), zero).item() == pytest.approx(1.5)
    # KL(N(0, e) || N(0, 1)) = 1/2 (e - 1 - 1) per dimension
    assert losses.gaussian_kl(zero, torch.ones(1, 3)).item() == pytest.approx(1.5 * (math.e - 2), rel=1e-6)


def test_gaussian_kl_matches_torch_distributions():
    g = torch.Generator().manual_seed(1)
    mu_q, lv_q, mu_p, lv_p = (torch.randn(6, 4, generator=g) for _ in range(4))
    want = kl_divergence(Normal(mu_q, (0.5 * lv_q).exp()), Normal(mu_p, (0.5 * lv_p).exp())).sum(-1)
    assert torch.allclose(losses.gaussian_kl(mu_q, lv_q, mu_p, lv_p), want, atol=1e-5)
    # not symmetric: swapping the arguments gives another value
    assert not torch.allclose(losses.gaussian_kl(mu_p, lv_p, mu_q, lv_q), want, atol=1e-2)


def test_gaussian_kl_matches_monte_carlo():
    g = torch.Generator().manual_seed(2)
    mu_q, lv_q = torch.tensor([0.5, -1.0]), torch.tensor([-0.5, 0.4])
    mu_p, lv_p = torch.tensor([0.0, 0.3]), torch.tensor([0.2, -0.1])
    z = mu_q + (0.5 * lv_q).exp() * torch.randn(200_000, 2, generator=g)
    samples = losses.log_normal(z, mu_q, lv_q) - losses.log_normal(z, mu_p, lv_p)
    se = samples.std().item() / math.sqrt(len(samples))
    assert losses.gaussian_kl(mu_q, lv_q, mu_p, lv_p).item() == pytest.approx(samples.mean().item(), abs=4 * se)


# --- the ELBO on a model whose evidence is known ---------------------------------------------------

def test_linear_gaussian_evidence_matches_monte_carlo():
    m, g = _model(), torch.Generator().manual_seed(3)
    x = torch.randn(3, 5, generator=g)
    # log p(x) = log E_{p(z)} p(x | z), estimated with draws from the prior
    z = m.prior_mu + (0.5 * m.prior_logvar).exp() * torch.randn(200_000, 1, 2, generator=g, dtype=torch.float64)
    log_lik = m.log_likelihood(x, z)
    mc = torch.logsumexp(log_lik, 0) - math.log(len(z))
    w = (log_lik - mc).exp()                      # likelihoods relative to their mean
    se = w.std(0) / math.sqrt(len(z))              # standard error of log(mean), by the delta method
    assert ((mc - m.log_evidence(x)).abs() < 4 * se).all()
    assert ((mc - m.log_evidence(x)).abs() < 0.1).all()


def test_elbo_is_below_log_evidence_by_the_kl_to_the_posterior():
    m, g = _model(), torch.Generator().manual_seed(4)
    x = torch.randn(8, 5, generator=g)
    mu_q, lv_q = torch.randn(8, 2, generator=g), 0.5 * torch.randn(8, 2, generator=g)
    elbo, log_p = m.elbo(x, mu_q, lv_q), m.log_evidence(x)
    assert (elbo < log_p).all()
    q = MultivariateNormal(mu_q.double(), torch.diag_embed(lv_q.double().exp()))
    assert torch.allclose(log_p - elbo, kl_divergence(q, m.posterior(x)), atol=1e-8)
    # the closed-form ELBO agrees with a Monte Carlo average of log p(x, z) - log q(z) ...
    lw = m.log_weights(x, mu_q, lv_q, 100_000, g)
    assert ((lw.mean(0) - elbo).abs() < 4 * lw.std(0) / math.sqrt(len(lw))).all()
    # ... and with the reconstruction-minus-KL form assembled by losses.elbo
    z = mu_q.double() + (0.5 * lv_q.double()).exp() * torch.randn(100_000, 8, 2, generator=g, dtype=torch.float64)
    log_lik = m.log_likelihood(x, z)
    kl = losses.gaussian_kl(mu_q.double(), lv_q.double(), m.prior_mu, m.prior_logvar)
    se = log_lik.std(0) / math.sqrt(len(z))
    assert ((losses.elbo(log_lik.mean(0), kl) - elbo).abs() < 4 * se).all()


def test_elbo_equals_log_evidence_at_the_true_posterior():
    m, g = _model(orthogonal=True), torch.Generator().manual_seed(5)
    x = torch.randn(4, 5, generator=g)
    post = m.posterior(x)
    var = torch.diagonal(post.covariance_matrix, dim1=-2, dim2=-1)
    assert torch.allclose(post.covariance_matrix, torch.diag_embed(var))
    lv = var.log()
    assert torch.allclose(m.elbo(x, post.mean, lv), m.log_evidence(x), atol=1e-9)
    # any other q is strictly worse
    assert (m.elbo(x, post.mean + 0.1, lv) < m.log_evidence(x)).all()


def test_iwae_bound_grows_with_k_towards_log_evidence():
    m, g = _model(), torch.Generator().manual_seed(6)
    x = torch.randn(5, 5, generator=g)
    mu_q, lv_q = torch.zeros(5, 2), torch.zeros(5, 2)   # a poor q: the prior's shape, not the posterior
    log_p, repeats = m.log_evidence(x), 200
    bounds = []
    for k in (1, 10, 100, 1000):
        lw = m.log_weights(x, mu_q, lv_q, k * repeats, g).view(repeats, k, 5).transpose(0, 1)
        bounds.append(losses.iwae_bound(lw).mean(0))   # average of `repeats` independent estimates
    assert torch.allclose(bounds[0], m.elbo(x, mu_q, lv_q), atol=0.5 + 0.1 * m.elbo(x, mu_q, lv_q).abs().max())
    for smaller, larger in zip(bounds, bounds[1:], strict=False):
        assert (larger > smaller).all()
    assert (bounds[-1] <= log_p + 0.05).all()
    assert ((log_p - bounds[-1]) < 0.5 * (log_p - bounds[0])).all()   # most of the gap is closed


def test_iwae_bound_hand_values():
    # equal weights: log mean of identical numbers is the number itself
    assert losses.iwae_bound(torch.full((7, 2), -3.0)).tolist() == pytest.approx([-3.0, -3.0])
    # weights 1 and 3: log((1 + 3) / 2) = log 2
    lw = torch.tensor([[0.0], [math.log(3.0)]])
    assert losses.iwae_bound(lw).item() == pytest.approx(math.log(2.0))


# --- the pixel likelihoods -------------------------------------------------------------------------

def test_categorical_log_likelihood_hand_values():
    # one image, two pixels, three levels
    logits = torch.tensor([[[0.0, 0.0, 0.0], [2.0, 0.0, -1.0]]])
    targets = torch.tensor([[1, 0]])
    want = math.log(1 / 3) + (2.0 - math.log(math.exp(2.0) + 1.0 + math.exp(-1.0)))
    assert losses.categorical_log_likelihood(logits, targets).item() == pytest.approx(want, rel=1e-6)
    # uniform logits over 17 levels and 64 pixels: -64 log 17 nats whatever the image
    flat = torch.zeros(3, 64, 17)
    any_image = torch.randint(17, (3, 64))
    assert torch.allclose(losses.categorical_log_likelihood(flat, any_image), torch.full((3,), -64 * math.log(17)))
    # a proper distribution: the probabilities of every value of one pixel sum to 1
    lg = torch.randn(1, 1, 5)
    total = sum(losses.categorical_log_likelihood(lg, torch.tensor([[v]])).exp() for v in range(5))
    assert total.item() == pytest.approx(1.0, rel=1e-6)


def test_categorical_log_likelihood_broadcasts_over_samples():
    logits = torch.randn(4, 3, 2, 5)          # (K samples, N images, pixels, levels)
    targets = torch.randint(5, (3, 2))
    out = losses.categorical_log_likelihood(logits, targets)
    assert out.shape == (4, 3)
    assert out[2, 1].item() == pytest.approx(losses.categorical_log_likelihood(logits[2, 1:2], targets[1:2]).item())


def test_bernoulli_log_likelihood_hand_values():
    logits = torch.tensor([[0.0, math.log(3.0)]])          # p = 1/2 and p = 3/4
    assert losses.bernoulli_log_likelihood(logits, torch.tensor([[1.0, 1.0]])).item() == pytest.approx(
        math.log(0.5) + math.log(0.75))
    assert losses.bernoulli_log_likelihood(logits, torch.tensor([[0.0, 0.0]])).item() == pytest.approx(
        math.log(0.5) + math.log(0.25))
    # large logits stay finite (computed from logits, not from sigmoid then log)
    assert torch.isfinite(losses.bernoulli_log_likelihood(torch.tensor([[200.0]]), torch.tensor([[0.0]]))).all()


# --- gradient estimators ---------------------------------------------------------------------------

def test_both_gradient_estimators_are_unbiased_and_reparam_has_less_variance():
    m, g = _model(), torch.Generator().manual_seed(7)
    x = torch.randn(5, generator=g)
    mu, lv = torch.tensor([0.2, 0.1], dtype=torch.float64), torch.tensor([-1.0, -0.5], dtype=torch.float64)
    exact_mu = mu.clone().requires_grad_(True)
    exact, = torch.autograd.grad(m.elbo(x, exact_mu, lv), exact_mu)
    log_joint = lambda z: m.log_joint(x, z)  # noqa: E731
    for name in ("reparam", "score"):
        grads = elbo_gradient_samples(log_joint, mu, lv, 20_000, name, g)
        se = grads.std(0) / math.sqrt(len(grads))
        assert ((grads.mean(0) - exact).abs() < 4 * se).all(), name
    var = {n: elbo_gradient_samples(log_joint, mu, lv, 5000, n, g).var(0) for n in ("reparam", "score")}
    assert (var["score"] > 3 * var["reparam"]).all()
    with pytest.raises(CondgenError, match="reparam"):
        elbo_gradient_samples(log_joint, mu, lv, 10, "finite_differences")
