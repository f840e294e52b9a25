"""A digit drawn from a short text prompt, with classifier-free guidance and negative prompts
(notebook 08).

The model is notebook 07's flow matching with the class label replaced by a prompt vector: a
bag-of-words encoder (``nn.text``) trained with the velocity network. In training every image gets a
prompt made from its own class and measured attributes, each part named with probability
``p_mention``; with probability ``p_uncond`` the prompt is dropped (empty), so the same network also
learns the prompt-free velocity.

**Words it never saw together.** The pen words are never named together with the digits 2, 5 and 8
in training, nor the slant words with 1, 4 and 7 (``HELD_OUT_PEN``, ``HELD_OUT_SLANT``). The images
are all there; a prompt for such an image names the digit or the words, never both. "A thick five" or
"a seven leaning right" are then new combinations of known words: each word was seen, with other
digits.

**Guidance with a negative prompt.** With a positive prompt p and a negative prompt q,

    v = v(x, t, q) + g * (v(x, t, p) - v(x, t, q)),

and q = "" (the empty prompt) is plain classifier-free guidance. A negative prompt replaces the
prompt-free velocity by the velocity of what to avoid, so guidance pushes away from it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import CondgenError
from ..nn.layers import eval_mode, mlp
from ..nn.text import VOCAB, AttributeThirds, BagOfWords, parts_to_counts, tokenize
from .base import Config, Recipe, check_range
from .flow import TimeFeatures, check_guidance, ema_update, integrate, interpolate

HELD_OUT_PEN = (2, 5, 8)     # "thin", "medium" and "thick" are never named together with these digits
HELD_OUT_SLANT = (1, 4, 7)   # nor "leaning left", "upright" and "leaning right" with these


def held_out(digits: torch.Tensor) -> torch.Tensor:
    """Whether each digit's pen words (column 0) and slant words (column 1) are held out, (N, 2) bool."""
    digits = torch.as_tensor(digits).cpu()
    return torch.stack([torch.isin(digits, torch.tensor(HELD_OUT_PEN)),
                        torch.isin(digits, torch.tensor(HELD_OUT_SLANT))], dim=1)


def training_mentions(digits: torch.Tensor, p_mention: float, p_uncond: float,
                      generator: torch.Generator | None = None) -> torch.Tensor:
    """Which parts (digit, pen, slant) each training prompt names, (N, 3) bool: each with probability
    ``p_mention``, none with probability ``p_uncond``, and never a digit together with words held out
    for it (one of the two is dropped, at random)."""
    n, dev = len(digits), digits.device
    mention = torch.rand(n, 3, generator=generator).to(dev) < p_mention
    banned = held_out(digits).to(dev)
    coin = torch.rand(n, 2, generator=generator).to(dev) < 0.5
    for j in (0, 1):
        clash = mention[:, 0] & mention[:, j + 1] & banned[:, j]
        mention[:, 0] &= ~(clash & coin[:, j])                        # drop the digit ...
        mention[:, j + 1] &= ~(clash & ~coin[:, j])                   # ... or the words
    drop = torch.rand(n, generator=generator).to(dev) < p_uncond
    return mention & ~drop[:, None]


class PromptVelocityNet(nn.Module):
    """v(x_t, t, prompt): x (N, D), t (N,), word counts (N, V) -> velocity (N, D)."""

    def __init__(self, dim: int, hidden=(256, 256, 256), time_dim: int = 32, text_dim: int = 32,
                 word_dim: int = 64):
        super().__init__()
        self.time = TimeFeatures(time_dim)
        self.text = BagOfWords(len(VOCAB), word_dim, text_dim)
        self.net = mlp([dim + time_dim + text_dim, *hidden, dim], activation="silu")

    def forward(self, x: torch.Tensor, t: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([x, self.time(t), self.text(counts)], dim=1))


@dataclass(frozen=True)
class PromptFlowConfig(Config):
    """Settings of ``cfm-prompt``: the velocity network and prompt encoder, how often each part of a
    prompt is named (``p_mention``) and the prompt dropped (``p_uncond``), the sampler, the EMA."""

    hidden: tuple[int, ...] = (256, 256, 256)
    time_dim: int = 32
    text_dim: int = 32
    word_dim: int = 64
    lr: float = 3e-3
    p_mention: float = 0.7
    p_uncond: float = 0.1
    sample_steps: int = 50
    ema: float = 0.999

    def validate(self) -> None:
        check_range("p_mention", self.p_mention, 0.0, 1.0, closed_high=True)
        check_range("p_uncond", self.p_uncond, 0.0, 1.0)
        check_range("ema", self.ema, 0.0, 1.0)
        if self.sample_steps < 1 or self.lr <= 0:
            raise CondgenError(f"sample_steps must be at least 1 and lr positive, got "
                               f"{self.sample_steps} and {self.lr}")


class PromptFlow(Recipe):
    """Flow matching conditioned on a text prompt (``cfm-prompt``); see the module's docstring.

    ``sample(n, prompts, negative="", guidance=g)``: prompts is one string or n strings; ``labels``
    instead of prompts asks for "a <digit>" (so the class-conditional evaluation can score it)."""

    name = "cfm-prompt"
    conditional = True
    guided = True
    Config = PromptFlowConfig
    default_epochs = 1000
    batch_size = 128

    def build(self) -> None:
        c = self.config
        self.dim = math.prod(self.image_shape)
        make = lambda: PromptVelocityNet(self.dim, c.hidden, c.time_dim, c.text_dim, c.word_dim)  # noqa: E731
        self.v, self.v_ema = make(), make()
        self.v_ema.load_state_dict(self.v.state_dict())
        self.v_ema.requires_grad_(False)
        self.thirds = AttributeThirds(self.n_classes)
        self.opt_v = torch.optim.Adam(self.v.parameters(), lr=c.lr)

    def modules(self) -> dict[str, nn.Module]:
        return {"v": self.v, "v_ema": self.v_ema, "thirds": self.thirds}

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"v": self.opt_v}

    def prepare(self, images: torch.Tensor, labels: torch.Tensor) -> None:
        """Fit each class's thirds of ink mass and slant on the training split (once)."""
        if not bool(self.thirds.fitted):
            self.thirds.fit(images, labels)

    def to_flow(self, images: torch.Tensor) -> torch.Tensor:
        return images.reshape(len(images), -1) * 2 - 1

    def to_images(self, x: torch.Tensor) -> torch.Tensor:
        return ((x + 1) / 2).clamp(0, 1).reshape(-1, *self.image_shape)

    def train_step(self, x: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
        x, y = x.to(self.device), y.to(self.device)
        thirds = self.thirds(x, y)
        mention = training_mentions(y, self.config.p_mention, self.config.p_uncond)
        counts = parts_to_counts(y, thirds, mention)
        x1 = self.to_flow(x)
        x0 = torch.randn_like(x1)
        t = torch.rand(len(x1), device=self.device)
        loss = F.mse_loss(self.v(interpolate(x0, x1, t), t, counts), x1 - x0)
        self.opt_v.zero_grad(set_to_none=True)
        loss.backward()
        self.opt_v.step()
        ema_update(self.v_ema, self.v, min(self.config.ema, (1 + self.steps) / (10 + self.steps)))
        return {"loss_fm": loss.item()}

    def _counts(self, prompts, n: int, what: str) -> torch.Tensor:
        counts = tokenize(prompts)
        if len(counts) == 1:
            counts = counts.expand(n, -1)
        if len(counts) != n:
            raise CondgenError(f"got {len(counts)} {what} for {n} samples: give one, or one per sample")
        return counts.to(self.device)

    def velocity(self, x: torch.Tensor, t: float, pos: torch.Tensor, neg: torch.Tensor,
                 guidance: float = 1.0) -> torch.Tensor:
        """v(x, t, neg) + g (v(x, t, pos) - v(x, t, neg)) for word counts ``pos`` and ``neg`` (N, V)."""
        g = check_guidance(guidance)
        t_vec = torch.full((len(x),), float(t), dtype=x.dtype, device=x.device)
        if g == 1:
            return self.v_ema(x, t_vec, pos)
        both = self.v_ema(torch.cat([x, x]), torch.cat([t_vec, t_vec]), torch.cat([pos, neg]))
        v_pos, v_neg = both[:len(x)], both[len(x):]
        return v_neg + g * (v_pos - v_neg)

    @torch.no_grad()
    def sample(self, n: int, prompts=None, generator: torch.Generator | None = None, negative="",
               guidance: float = 1.0, steps: int | None = None, labels=None) -> torch.Tensor:
        """``n`` images (n, C, H, W) in [0, 1] for ``prompts`` (one string or n), pushed away from
        ``negative`` (one string or n; "" is plain classifier-free guidance) at guidance scale g."""
        if prompts is None:
            digits = self.sample_labels(n, labels, generator).cpu()
            prompts = [f"a {VOCAB[int(d)]}" for d in digits]
        pos, neg = self._counts(prompts, n, "prompts"), self._counts(negative, n, "negative prompts")
        steps = self.config.sample_steps if steps is None else steps
        with eval_mode(self.v_ema):
            x0 = self.noise(n, self.dim, generator)
            x1 = integrate(lambda x, t: self.velocity(x, t, pos, neg, guidance), x0, steps)
        return self.to_images(x1).cpu()
