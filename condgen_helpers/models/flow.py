"""Conditional flow matching with classifier-free and classifier guidance (notebook 07).

The model transports noise to data along straight lines. With noise x0 ~ N(0, I) and a data point
x1 (pixels rescaled to [-1, 1]), the *interpolant* at time t in [0, 1] is

    x_t = (1 - t) x0 + t x1,        its velocity  d x_t / dt = x1 - x0.

A network v(x_t, t, y) is trained to predict x1 - x0 by least squares (Lipman et al. 2023, eq. 23,
with sigma_min = 0; Liu et al. 2023's rectified flow). The minimiser is the *marginal* velocity
E[x1 - x0 | x_t, y], and integrating dx/dt = v from noise at t = 0 to t = 1 draws from p(x | y).

**One network, two models.** During training the label is replaced by a learned "no label" entry
with probability ``p_uncond`` (Ho and Salimans 2022), so the same network also learns the
unconditional velocity v(x_t, t, none) of p(x).

**Guidance, one formula** (the course's convention; the scale is called g everywhere here):

    v_g = v(x, t, none) + g * (v(x, t, y) - v(x, t, none))

g = 0 is the unconditional model, g = 1 the plain conditional model, g > 1 extrapolates past it.
Ho and Salimans write the same rule with a weight w and g = 1 + w: their w = 0 is our g = 1.

**Velocity and score.** For this interpolant (Gaussian noise, straight lines)
E[x0 | x_t] = x_t - t v, and the score of p_t is -E[x0 | x_t] / (1 - t), so

    score = (t v - x) / (1 - t),        v = (x + (1 - t) score) / t.

Both maps are affine in the other quantity, so a weighted sum of scores (Bayes' rule, below) is the
same weighted sum of velocities. Classifier guidance (Dhariwal and Nichol 2021) adds
s * grad_x log p_phi(y | x_t) to the score, which is s * (1 - t) / t * grad_x log p_phi(y | x_t) on the
velocity, with a classifier phi trained on noisy interpolants x_t at every t.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import CondgenError
from ..nn.conv import ConvVelocityNet, pick_network
from ..nn.layers import eval_mode, mlp
from .base import Config, Recipe, check_range

SOLVERS = ("euler", "heun")


# --- the maths, independent of any network ---------------------------------------------------------

def interpolate(x0: torch.Tensor, x1: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """x_t = (1 - t) x0 + t x1, with ``t`` (N,) broadcast over the other dimensions of x0, x1 (N, ...)."""
    t = t.reshape(-1, *([1] * (x0.ndim - 1)))
    return (1 - t) * x0 + t * x1


def velocity_to_score(v: torch.Tensor, x: torch.Tensor, t: float | torch.Tensor) -> torch.Tensor:
    """grad_x log p_t(x) from the marginal velocity v at (x, t): (t v - x) / (1 - t), for t < 1."""
    t = _broadcast_time(t, x)
    return (t * v - x) / (1 - t)


def score_to_velocity(score: torch.Tensor, x: torch.Tensor, t: float | torch.Tensor) -> torch.Tensor:
    """The marginal velocity from the score at (x, t): (x + (1 - t) score) / t, for t > 0."""
    t = _broadcast_time(t, x)
    return (x + (1 - t) * score) / t


def _broadcast_time(t, x: torch.Tensor) -> torch.Tensor:
    t = torch.as_tensor(t, dtype=x.dtype, device=x.device)
    return t.reshape(-1, *([1] * (x.ndim - 1))) if t.ndim else t


def check_guidance(g) -> float:
    """The guidance scale as a float, or a one-line error for a negative, NaN or non-numeric one."""
    try:
        value = float(g)
    except (TypeError, ValueError):
        raise CondgenError(f"guidance must be a number, got {g!r}") from None
    if not math.isfinite(value) or value < 0:
        raise CondgenError(f"guidance must be a finite number >= 0 (0: unconditional, 1: conditional, "
                           f">1: guided; the paper's w is g - 1), got {g!r}")
    return value


def guided_velocity(v_uncond: torch.Tensor, v_cond: torch.Tensor, g: float) -> torch.Tensor:
    """v_uncond + g (v_cond - v_uncond): g = 0 gives v_uncond, g = 1 gives v_cond (both exactly)."""
    g = check_guidance(g)
    if g == 0:
        return v_uncond
    if g == 1:
        return v_cond
    return v_uncond + g * (v_cond - v_uncond)


def mixture_velocity(x: torch.Tensor, t: float, means: torch.Tensor, std: float,
                     weights: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Closed-form marginal velocity and score at time ``t`` in (0, 1) when the data are a mixture of
    isotropic Gaussians N(means[k], std^2 I) with ``weights`` (default equal): x (N, D) -> (v, score).

    x_t given component k is N(t m_k, V I) with V = t^2 std^2 + (1 - t)^2, and x1, x0, x_t are
    jointly Gaussian, so E[x1 - x0 | x_t, k] = m_k + (t std^2 - (1 - t)) / V (x_t - t m_k); the
    marginal velocity averages that over the component's posterior given x_t.
    """
    means = means.to(x.dtype)
    k = len(means)
    weights = torch.full((k,), 1.0 / k, dtype=x.dtype) if weights is None else weights.to(x.dtype)
    var = t * t * std * std + (1 - t) ** 2
    diff = x[:, None, :] - t * means[None, :, :]                     # (N, K, D)
    log_post = weights.log()[None, :] - 0.5 * (diff ** 2).sum(-1) / var
    post = torch.softmax(log_post, dim=1)[:, :, None]               # (N, K, 1)
    v = (post * (means[None] + (t * std * std - (1 - t)) / var * diff)).sum(1)
    score = (post * (-diff / var)).sum(1)
    return v, score


def ema_update(ema_net: nn.Module, net: nn.Module, decay: float) -> None:
    """Move every weight of ``ema_net`` a step ``1 - decay`` towards ``net``'s (an exponential moving
    average of the weights, which samples more smoothly than the last step's weights)."""
    with torch.no_grad():
        torch._foreach_lerp_(list(ema_net.parameters()), list(net.parameters()), 1 - decay)


def integrate(velocity, x0: torch.Tensor, steps: int, solver: str = "euler") -> torch.Tensor:
    """Integrate dx/dt = velocity(x, t) from t = 0 to 1 in ``steps`` equal steps (Euler or Heun)."""
    if not isinstance(steps, int) or steps < 1:
        raise CondgenError(f"sampling steps must be a whole number >= 1, got {steps!r}")
    if solver not in SOLVERS:
        raise CondgenError(f"unknown solver {solver!r}: use one of {', '.join(SOLVERS)}")
    x, dt = x0, 1.0 / steps
    for i in range(steps):
        t = i * dt
        v = velocity(x, t)
        if solver == "heun":
            x_next = x + dt * v
            x = x + dt / 2 * (v + velocity(x_next, t + dt))
        else:
            x = x + dt * v
    return x


# --- networks --------------------------------------------------------------------------------------

class TimeFeatures(nn.Module):
    """t in [0, 1] (N,) -> sines and cosines at fixed, geometrically spaced frequencies (N, dim)."""

    def __init__(self, dim: int = 32, max_freq: float = 100.0):
        super().__init__()
        self.out_dim = dim
        self.register_buffer("freqs", torch.logspace(0, math.log10(max_freq), dim // 2))

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        angle = t.reshape(-1, 1) * self.freqs[None, :]
        return torch.cat([angle.sin(), angle.cos()], dim=1)


class VelocityNet(nn.Module):
    """v(x_t, t, y): flattened x (N, D), t (N,) and labels (N,) in 0..K, where K means "no label",
    -> velocity (N, D). The label table has K + 1 rows; the last is the learned "no label" entry."""

    def __init__(self, dim: int, n_classes: int, hidden=(256, 256, 256), time_dim: int = 32,
                 embed_dim: int = 32):
        super().__init__()
        self.n_classes, self.null = n_classes, n_classes
        self.time = TimeFeatures(time_dim)
        self.embed = nn.Embedding(n_classes + 1, embed_dim)
        self.net = mlp([dim + time_dim + embed_dim, *hidden, dim], activation="silu")

    def forward(self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([x, self.time(t), self.embed(y)], dim=1))


class NoisyClassifier(nn.Module):
    """log p_phi(y | x_t) for interpolants at any t: x (N, D), t (N,) -> class logits (N, K)."""

    def __init__(self, dim: int, n_classes: int, hidden=(256, 256), time_dim: int = 32):
        super().__init__()
        self.time = TimeFeatures(time_dim)
        self.net = mlp([dim + time_dim, *hidden, n_classes], activation="silu")

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([x, self.time(t)], dim=1))


# --- the recipe ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class FlowConfig(Config):
    """Settings of ``cfm``: the velocity network, label dropout ``p_uncond``, the sampler (steps,
    solver, default guidance scale), the noisy classifier of classifier guidance, and the EMA decay.

    ``network``: ``"mlp"`` (hidden sizes ``hidden``), ``"conv"`` (a small U-Net of ``width`` channels,
    for 28x28 images) or ``"auto"``: the U-Net on 28x28 images, the MLP otherwise. ``lr``,
    ``max_grad_norm`` and ``sample_steps`` left at None take the network's own (``NETWORK_DEFAULTS``):
    for the MLP 3e-3, no clipping and 50 steps; for the U-Net 1e-3, a gradient norm clipped at 1
    (which keeps long runs on MNIST stable) and 20 steps (on real MNIST digits 10 steps classified
    as well as 20, and each step of the U-Net costs as much as many of the MLP's)."""

    network: Literal["auto", "mlp", "conv"] = "auto"
    hidden: tuple[int, ...] = (256, 256, 256)
    width: int = 32
    time_dim: int = 32
    embed_dim: int = 32
    lr: float | None = None
    max_grad_norm: float | None = None
    p_uncond: float = 0.1
    sample_steps: int | None = None
    solver: Literal["euler", "heun"] = "euler"
    guidance: float = 1.0
    classifier: bool = True
    classifier_hidden: tuple[int, ...] = (256, 256)
    ema: float = 0.999

    def validate(self) -> None:
        check_range("p_uncond", self.p_uncond, 0.0, 1.0)
        check_range("ema", self.ema, 0.0, 1.0)
        check_guidance(self.guidance)
        if (self.sample_steps is not None and self.sample_steps < 1) or (self.lr is not None and self.lr <= 0) or self.width < 1:
            raise CondgenError(f"sample_steps and width must be at least 1 and lr positive, got "
                               f"{self.sample_steps}, {self.width} and {self.lr}")
        if self.max_grad_norm is not None and self.max_grad_norm <= 0:
            raise CondgenError(f"max_grad_norm must be positive (or None), got {self.max_grad_norm}")


# each network's own learning rate and gradient clipping (used where the settings leave them at None)
# (and the batch size: the U-Net trains on batches of 64, where a step costs half as much)
NETWORK_DEFAULTS = {"mlp": {"lr": 3e-3, "max_grad_norm": None, "sample_steps": 50, "batch_size": 128},
                    "conv": {"lr": 1e-3, "max_grad_norm": 1.0, "sample_steps": 20, "batch_size": 64}}


class ConditionalFlowMatching(Recipe):
    """Class-conditional flow matching with the label dropped in training (``cfm``).

    ``sample(..., guidance=g)`` integrates the guided velocity (g = 0 unconditional, 1 conditional,
    > 1 guided; the paper's w = g - 1) in ``sample_steps`` steps of the ``solver``;
    ``classifier_scale=s`` adds classifier guidance from the noisy classifier trained alongside.
    Images are rescaled from [0, 1] to [-1, 1] for the flow and back (clipped) for the samples.
    """

    name = "cfm"
    conditional = True
    guided = True
    Config = FlowConfig
    figures = ("guidance",)
    # 7,000 steps on the 1000 training digits (1500 epochs at lr 2e-3 scored the same within a seed's
    # noise and took 1.5 times as long; measured by `condgen benchmark cfm`)
    default_epochs = 1000
    batch_size = 128
    # 28x28: 4,000 steps of the U-Net (on 3,334 real MNIST digits 2,000 steps already drew the asked
    # digit 0.96 of the time at g = 2)
    dataset_steps = {"mnist": 4000, "fashion-mnist": 4000}
    dataset_batch_size = {"mnist": NETWORK_DEFAULTS["conv"]["batch_size"],
                          "fashion-mnist": NETWORK_DEFAULTS["conv"]["batch_size"]}

    def build(self) -> None:
        c = self.config
        self.dim = math.prod(self.image_shape)
        self.network = pick_network(c.network, self.image_shape)
        if self.network == "conv" and c.width % 8:
            raise CondgenError(f"the U-Net's width must be a multiple of 8 (its group norms take groups "
                               f"of 8 channels), got {c.width}")
        own = NETWORK_DEFAULTS[self.network]
        self.lr = own["lr"] if c.lr is None else c.lr
        self.max_grad_norm = own["max_grad_norm"] if c.max_grad_norm is None else c.max_grad_norm
        self.sample_steps = own["sample_steps"] if c.sample_steps is None else c.sample_steps
        self.batch_size = own["batch_size"]
        self.v = self.velocity_net()
        # an exponential moving average of the weights is what samples: it smooths the last steps' noise
        self.v_ema = self.velocity_net()
        self.v_ema.load_state_dict(self.v.state_dict())
        self.v_ema.requires_grad_(False)
        self.opt_v = torch.optim.Adam(self.v.parameters(), lr=self.lr)
        self.C = NoisyClassifier(self.dim, self.n_classes, c.classifier_hidden, c.time_dim) \
            if c.classifier else None
        self.opt_C = torch.optim.Adam(self.C.parameters(), lr=1e-3) if self.C is not None else None

    def velocity_net(self) -> nn.Module:
        """The network the settings ask for: the MLP, or the U-Net on 28x28 images."""
        c = self.config
        if self.network == "conv":
            return ConvVelocityNet(self.image_shape, self.n_classes, TimeFeatures(c.time_dim), c.width, c.embed_dim)
        return VelocityNet(self.dim, self.n_classes, c.hidden, c.time_dim, c.embed_dim)

    def modules(self) -> dict[str, nn.Module]:
        return {"v": self.v, "v_ema": self.v_ema, **({"C": self.C} if self.C is not None else {})}

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"v": self.opt_v, **({"C": self.opt_C} if self.C is not None else {})}

    # pixels in [0, 1] <-> flow space [-1, 1], flattened
    def to_flow(self, images: torch.Tensor) -> torch.Tensor:
        return images.reshape(len(images), -1) * 2 - 1

    def to_images(self, x: torch.Tensor) -> torch.Tensor:
        return ((x + 1) / 2).clamp(0, 1).reshape(-1, *self.image_shape)

    def train_step(self, x: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
        x1, y = self.to_flow(x.to(self.device)), y.to(self.device)
        n = len(x1)
        x0 = torch.randn_like(x1)
        t = torch.rand(n, device=self.device)
        xt = interpolate(x0, x1, t)
        # label dropout: the same network learns v(x, t, y) and v(x, t, none)
        drop = torch.rand(n, device=self.device) < self.config.p_uncond
        y_in = torch.where(drop, torch.full_like(y, self.v.null), y)
        loss = F.mse_loss(self.v(xt, t, y_in), x1 - x0)
        self.opt_v.zero_grad(set_to_none=True)
        loss.backward()
        if self.max_grad_norm is not None:
            nn.utils.clip_grad_norm_(self.v.parameters(), self.max_grad_norm)
        self.opt_v.step()
        ema_update(self.v_ema, self.v, min(self.config.ema, (1 + self.steps) / (10 + self.steps)))
        out = {"loss_fm": loss.item()}
        if self.C is not None:  # the noisy classifier of classifier guidance sees the same x_t
            # (half of the batch: a classifier needs fewer examples than the velocity field, and
            # this halves its share of the training time)
            k = max(1, n // 2)
            logits, y = self.C(xt[:k].detach(), t[:k]), y[:k]
            loss_c = F.cross_entropy(logits, y)
            self.opt_C.zero_grad(set_to_none=True)
            loss_c.backward()
            self.opt_C.step()
            out.update(loss_clf=loss_c.item(), clf_acc=(logits.argmax(1) == y).float().mean().item())
        return out

    def velocity(self, x: torch.Tensor, t: float | torch.Tensor, y: torch.Tensor, guidance: float = 1.0,
                 classifier_scale: float = 0.0, ema: bool = True) -> torch.Tensor:
        """The guided velocity at flow-space points x (N, D), time t and labels y (N,) in 0..K-1:
        v_none + g (v_y - v_none), plus s (1 - t) / t grad_x log p_phi(y | x_t) when s > 0."""
        g = check_guidance(guidance)
        net = self.v_ema if ema else self.v
        t_vec = torch.as_tensor(t, dtype=x.dtype, device=x.device).expand(len(x))
        if g == 1:
            v = net(x, t_vec, y)
        elif g == 0:
            v = net(x, t_vec, torch.full_like(y, net.null))
        else:  # one batched pass for both velocities
            both = net(torch.cat([x, x]), torch.cat([t_vec, t_vec]), torch.cat([y, torch.full_like(y, net.null)]))
            v = guided_velocity(both[len(x):], both[:len(x)], g)
        if classifier_scale:
            v = v + classifier_scale * self.classifier_push(x, t_vec, y)
        return v

    def classifier_push(self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """(1 - t) / t * grad_x log p_phi(y | x_t): the classifier's score term, as a velocity.

        As t -> 0 the gradient vanishes (x_t is almost pure noise) while (1 - t) / t grows; for the
        exact classifier their product tends to E[x1 | y] - E[x1], a finite push, not 0. The code leaves
        the term out at t = 0 exactly (the first Euler step), a practical choice: a classifier of noisy
        inputs is least reliable there."""
        if self.C is None:
            raise CondgenError("this cfm was trained without the noisy classifier (classifier=False): "
                               "use classifier_scale=0, or retrain with classifier=True")
        with torch.enable_grad():
            xg = x.detach().requires_grad_(True)
            log_p = torch.log_softmax(self.C(xg, t), dim=1).gather(1, y[:, None]).sum()
            grad, = torch.autograd.grad(log_p, xg)
        factor = torch.where(t > 0, (1 - t) / t.clamp_min(1e-12), torch.zeros_like(t))
        return factor[:, None] * grad

    @torch.no_grad()
    def sample(self, n: int, labels=None, generator: torch.Generator | None = None,
               guidance: float | None = None, steps: int | None = None, classifier_scale: float = 0.0,
               solver: str | None = None) -> torch.Tensor:
        """``n`` images (n, C, H, W) in [0, 1] for ``labels`` (n,) (drawn uniformly if None), from
        noise drawn with ``generator`` (the same seed gives the same images). ``guidance`` defaults to
        the config's (1.0, the plain conditional model); ``steps`` and ``solver`` to the config's."""
        g = check_guidance(self.config.guidance if guidance is None else guidance)
        steps = self.sample_steps if steps is None else steps
        solver = solver or self.config.solver
        if classifier_scale < 0 or not math.isfinite(classifier_scale):
            raise CondgenError(f"classifier_scale must be a finite number >= 0, got {classifier_scale!r}")
        y = self.sample_labels(n, labels, generator)
        with eval_mode(self.v_ema):
            x0 = self.noise(n, self.dim, generator)
            x1 = integrate(lambda x, t: self.velocity(x, t, y, g, classifier_scale), x0, steps, solver)
        return self.to_images(x1).cpu()
