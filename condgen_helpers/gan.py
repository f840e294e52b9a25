"""GAN networks and recipes: the unconditional GAN (notebook 01), the conditional GAN with a
concatenating or a projection discriminator (notebook 02) and AC-GAN (notebook 03).

The networks are small multilayer perceptrons: on 8x8 digits they train in seconds on a laptop CPU,
and the same code runs on 28x28 MNIST. Each network takes an optional conditioning module
(see ``conditioning.py``); with none it is the plain GAN of notebook 01.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from . import losses
from .conditioning import LabelEmbedding, LabelProjection
from .errors import CondgenError
from .models import Recipe


def mlp(sizes: list[int], slope: float = 0.2, dropout: float = 0.0,
        batch_norm: bool = False) -> nn.Sequential:
    """Linear layers with LeakyReLU (and optional batch norm, dropout) between them, none after the last."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            if batch_norm:
                layers.append(nn.BatchNorm1d(b))
            layers.append(nn.LeakyReLU(slope))
            if dropout:
                layers.append(nn.Dropout(dropout))
    return nn.Sequential(*layers)


def features(in_dim: int, hidden, dropout: float = 0.0) -> nn.Sequential:
    """phi(x) for discriminators with heads: the hidden layers of ``mlp`` with the activation (and
    dropout) after the last one too, so a head on top sees what a plain Discriminator's output layer sees."""
    layers = list(mlp([in_dim, *hidden], dropout=dropout)) + [nn.LeakyReLU(0.2)]
    return nn.Sequential(*layers, *([nn.Dropout(dropout)] if dropout else []))


class Generator(nn.Module):
    """G(z[, y]): noise (N, z_dim) and an optional condition -> images (N, C, H, W) in [0, 1]."""

    def __init__(self, z_dim: int, image_shape: tuple[int, ...], hidden=(128, 256),
                 cond: nn.Module | None = None, output: str = "sigmoid", batch_norm: bool = True):
        super().__init__()
        self.z_dim, self.image_shape, self.cond, self.output = z_dim, tuple(image_shape), cond, output
        extra = cond.out_dim if cond is not None else 0
        # batch norm in G keeps its hidden units spread out, which on digits stops early mode collapse
        self.net = mlp([z_dim + extra, *hidden, math.prod(image_shape)], batch_norm=batch_norm)

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        h = z if self.cond is None else torch.cat([z, self.cond(y)], dim=1)
        out = self.net(h)
        # images live in [0, 1]; 2-D points (the ring) are unbounded
        return (torch.sigmoid(out) if self.output == "sigmoid" else out).view(-1, *self.image_shape)


class Discriminator(nn.Module):
    """D(x[, y]) -> one logit per image (N,); the condition, if any, is concatenated to the pixels."""

    def __init__(self, image_shape: tuple[int, int, int], hidden=(256, 128),
                 cond: nn.Module | None = None, dropout: float = 0.0):
        super().__init__()
        self.cond = cond
        extra = cond.out_dim if cond is not None else 0
        self.net = mlp([math.prod(image_shape) + extra, *hidden, 1], dropout=dropout)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        h = x.flatten(1)
        if self.cond is not None:
            h = torch.cat([h, self.cond(y)], dim=1)
        return self.net(h).squeeze(1)


class GAN(Recipe):
    """The unconditional GAN: models p(x) only, so it cannot be asked for a class."""

    name = "gan"
    conditional = False
    defaults = {"z_dim": 32, "g_hidden": (128, 256), "d_hidden": (256, 128), "lr": 5e-4,
                "betas": (0.5, 0.999), "g_loss": "non_saturating", "d_dropout": 0.0,
                "output": "sigmoid", "g_batch_norm": True}
    default_epochs = 200
    batch_size = 64

    def build(self) -> None:
        c = self.config
        self.G = Generator(c["z_dim"], self.image_shape, tuple(c["g_hidden"]), output=c["output"],
                           batch_norm=c["g_batch_norm"])
        self.D = Discriminator(self.image_shape, tuple(c["d_hidden"]), dropout=c["d_dropout"])
        self.opt_G = torch.optim.Adam(self.G.parameters(), lr=c["lr"], betas=tuple(c["betas"]))
        self.opt_D = torch.optim.Adam(self.D.parameters(), lr=c["lr"], betas=tuple(c["betas"]))

    def modules(self) -> dict[str, nn.Module]:
        return {"G": self.G, "D": self.D}

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"G": self.opt_G, "D": self.opt_D}

    # The two hooks a conditional GAN overrides: how G and D see the label.
    def generate(self, z: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        return self.G(z)

    def discriminate(self, x: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        return self.D(x)

    def train_step(self, x: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
        x, y = x.to(self.device), y.to(self.device)
        n = len(x)
        y_fake = self.sample_labels(n, None) if self.conditional else None
        # 1) discriminator: push D(x) up on real pairs, down on generated ones
        fake = self.generate(self.noise(n, self.config["z_dim"]), y_fake)
        real_logits = self.discriminate(x, y if self.conditional else None)
        fake_logits = self.discriminate(fake.detach(), y_fake)
        loss_D = losses.discriminator_loss(real_logits, fake_logits)
        self.opt_D.zero_grad(set_to_none=True)
        loss_D.backward()
        self.opt_D.step()
        # 2) generator: make D accept its samples
        loss_G = losses.generator_loss(self.discriminate(fake, y_fake), self.config["g_loss"])
        self.opt_G.zero_grad(set_to_none=True)
        loss_G.backward()
        self.opt_G.step()
        return {"loss_D": loss_D.item(), "loss_G": loss_G.item(),
                "D_real": torch.sigmoid(real_logits).mean().item(),
                "D_fake": torch.sigmoid(fake_logits).mean().item()}

    @torch.no_grad()
    def sample(self, n: int, labels=None, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` images (n, C, H, W) in [0, 1]; conditional subclasses take ``labels`` (n,)."""
        if labels is not None and not self.conditional:
            raise CondgenError(f"model {self.name!r} is unconditional and takes no labels: "
                               "sample with n only, or train a conditional model such as cgan")
        was_training = self.G.training
        self.G.eval()
        y = self.sample_labels(n, labels, generator) if self.conditional else None
        z = self.noise(n, self.config["z_dim"], generator)
        out = self.generate(z, y).cpu()
        self.G.train(was_training)
        return out


# --- conditional GANs (notebooks 02 and 03) ------------------------------------------------------

class ProjectionDiscriminator(nn.Module):
    """D(x, y) = psi(phi(x)) + embed(y) . phi(x) (Miyato and Koyama 2018, section 3) -> logits (N,).

    phi is the MLP body (features (N, F)), psi a linear "is it a digit at all" head and the
    projection term asks "does it look like *this* digit"; y never touches the pixels.
    """

    def __init__(self, image_shape: tuple[int, int, int], hidden=(256, 128), n_classes: int = 10,
                 dropout: float = 0.0):
        super().__init__()
        self.phi = features(math.prod(image_shape), hidden, dropout)
        self.psi = nn.Linear(hidden[-1], 1)
        self.project = LabelProjection(n_classes, hidden[-1])

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        h = self.phi(x.flatten(1))
        return self.psi(h).squeeze(1) + self.project(h, y)


DISCRIMINATORS = ("concat", "projection")


class ConditionalGAN(GAN):
    """The conditional GAN (Mirza and Osindero 2014): G(z, y) and D(x, y) both read the label
    through a learned embedding, so the game is played on (image, label) pairs and models p(x | y).

    ``discriminator="concat"`` appends the embedding to the pixels; ``"projection"`` uses
    :class:`ProjectionDiscriminator`. The training step is the GAN's: ``conditional = True`` makes
    it draw a label for every fake and hand the real labels to D.
    """

    name = "cgan"
    conditional = True
    defaults = {**GAN.defaults, "embed_dim": 16, "d_dropout": 0.2, "discriminator": "concat"}
    default_epochs = 400

    def build(self) -> None:
        c = self.config
        if c["discriminator"] not in DISCRIMINATORS:
            raise CondgenError(f"unknown discriminator {c['discriminator']!r}: use one of "
                               f"{', '.join(DISCRIMINATORS)}")
        self.G = Generator(c["z_dim"], self.image_shape, tuple(c["g_hidden"]), output=c["output"],
                           batch_norm=c["g_batch_norm"], cond=LabelEmbedding(self.n_classes, c["embed_dim"]))
        if c["discriminator"] == "concat":
            self.D = Discriminator(self.image_shape, tuple(c["d_hidden"]), dropout=c["d_dropout"],
                                   cond=LabelEmbedding(self.n_classes, c["embed_dim"]))
        else:
            self.D = ProjectionDiscriminator(self.image_shape, tuple(c["d_hidden"]), self.n_classes,
                                             dropout=c["d_dropout"])
        self.opt_G = torch.optim.Adam(self.G.parameters(), lr=c["lr"], betas=tuple(c["betas"]))
        self.opt_D = torch.optim.Adam(self.D.parameters(), lr=c["lr"], betas=tuple(c["betas"]))

    def generate(self, z: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        return self.G(z, y)

    def discriminate(self, x: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        return self.D(x, y)


class ProjectionCGAN(ConditionalGAN):
    """The conditional GAN with a projection discriminator, under its own name for the CLI."""

    name = "cgan-proj"
    defaults = {**ConditionalGAN.defaults, "discriminator": "projection"}


class AuxiliaryClassifierDiscriminator(nn.Module):
    """D(x) -> (source logit (N,), class logits (N, K)): a "real or generated?" head and a "which
    class?" head (Odena, Olah and Shlens 2017). D never reads y; y is the class head's target.

    With ``shared=True`` both heads sit on one body phi(x), as in the paper. On 8x8 digits with small
    MLPs the class task then crowds out the source task (D(real) and D(fake) both stay near 1/2
    while G collapses to one image per class), so the course default gives each head its own body.
    """

    def __init__(self, image_shape: tuple[int, ...], hidden=(256, 128), n_classes: int = 10,
                 dropout: float = 0.0, shared: bool = False):
        super().__init__()
        d, h = math.prod(image_shape), hidden[-1]
        self.phi = features(d, hidden, dropout) if shared else nn.Identity()

        def body() -> nn.Module:  # what each head adds on top of phi
            return nn.Identity() if shared else features(d, hidden, dropout)

        self.source = nn.Sequential(body(), nn.Linear(h, 1))
        self.classes = nn.Sequential(body(), nn.Linear(h, n_classes))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.phi(x.flatten(1))
        return self.source(h).squeeze(1), self.classes(h)


class ACGAN(ConditionalGAN):
    """AC-GAN: G(z, c) reads the class like the cGAN's generator, but D does not; the class acts
    through the loss, as a second head that must recognise it (implicit conditioning).

    D maximises L_S + L_C and G maximises L_C - L_S (Odena, Olah and Shlens 2017, section 3),
    both terms taken from ``losses``: L_S is the GAN's real-vs-fake log-likelihood, L_C the class
    log-likelihood of real *and* generated images.
    """

    name = "acgan"
    defaults = {**{k: v for k, v in ConditionalGAN.defaults.items() if k != "discriminator"},
                "shared_body": False}

    def build(self) -> None:
        c = self.config
        self.G = Generator(c["z_dim"], self.image_shape, tuple(c["g_hidden"]), output=c["output"],
                           batch_norm=c["g_batch_norm"], cond=LabelEmbedding(self.n_classes, c["embed_dim"]))
        self.D = AuxiliaryClassifierDiscriminator(self.image_shape, tuple(c["d_hidden"]), self.n_classes,
                                                  dropout=c["d_dropout"], shared=c["shared_body"])
        self.opt_G = torch.optim.Adam(self.G.parameters(), lr=c["lr"], betas=tuple(c["betas"]))
        self.opt_D = torch.optim.Adam(self.D.parameters(), lr=c["lr"], betas=tuple(c["betas"]))

    def discriminate(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """The source logit only; the label is not an input of D (it is the class head's target)."""
        return self.D(x)[0]

    def train_step(self, x: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
        x, y = x.to(self.device), y.to(self.device)
        n = len(x)
        y_fake = self.sample_labels(n, None)
        fake = self.generate(self.noise(n, self.config["z_dim"]), y_fake)
        # 1) discriminator: maximise L_S + L_C, i.e. tell real from generated AND name the class of both
        real_src, real_cls = self.D(x)
        fake_src, fake_cls = self.D(fake.detach())
        l_s = losses.source_log_likelihood(real_src, fake_src)
        l_c = losses.class_log_likelihood(real_cls, y) + losses.class_log_likelihood(fake_cls, y_fake)
        loss_D = -(l_s + l_c)
        self.opt_D.zero_grad(set_to_none=True)
        loss_D.backward()
        self.opt_D.step()
        # 2) generator: maximise L_C - L_S, i.e. look real AND be easy to classify as the asked class
        src, cls = self.D(fake)
        loss_G = losses.acgan_generator_loss(src, cls, y_fake, self.config["g_loss"])
        self.opt_G.zero_grad(set_to_none=True)
        loss_G.backward()
        self.opt_G.step()
        return {"loss_D": loss_D.item(), "loss_G": loss_G.item(), "L_S": l_s.item(), "L_C": l_c.item(),
                "D_real": torch.sigmoid(real_src).mean().item(),
                "D_fake": torch.sigmoid(fake_src).mean().item(),
                "aux_acc_real": (real_cls.argmax(1) == y).float().mean().item(),
                "aux_acc_fake": (fake_cls.argmax(1) == y_fake).float().mean().item()}

    @torch.no_grad()
    def auxiliary_accuracy(self, images: torch.Tensor, labels: torch.Tensor) -> float:
        """Share of ``images`` (N, C, H, W) that D's class head assigns to ``labels`` (N,), in eval mode."""
        was_training = self.D.training
        self.D.eval()
        pred = self.D(images.to(self.device))[1].argmax(1).cpu()
        self.D.train(was_training)
        return (pred == torch.as_tensor(labels).cpu()).float().mean().item()
