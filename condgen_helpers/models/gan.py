"""GAN networks and recipes: the unconditional GAN (notebook 01), the conditional GAN with a
concatenating or a projection discriminator (notebook 02) and AC-GAN (notebook 03).

The networks are small multilayer perceptrons: on 8x8 digits they train in seconds on a laptop CPU,
and the same code runs on 28x28 MNIST. Each network takes an optional conditioning module
(see ``conditioning.py``); with none it is the plain GAN of notebook 01.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from ..errors import CondgenError
from ..nn import losses
from ..nn.conditioning import LabelEmbedding, LabelProjection
from ..nn.conv import check_conv_shape, pick_network
from ..nn.layers import eval_mode, feature_layers, mlp
from .base import Config, Recipe, check_range


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
    """D(x[, y]) -> one logit per image (N,); the condition, if any, is concatenated to the pixels.

    With ``pack`` = m > 1 (PacGAN, Lin et al. 2018) D judges m images at once: consecutive groups of
    m are concatenated into one input and get one logit, (N // m,). A generator that repeats itself
    is then easy to spot, because m samples from one mode rarely look like m real samples.
    """

    def __init__(self, image_shape: tuple[int, int, int], hidden=(256, 128),
                 cond: nn.Module | None = None, dropout: float = 0.0, pack: int = 1):
        super().__init__()
        if pack > 1 and cond is not None:
            raise CondgenError("pack > 1 is for the unconditional discriminator; use pack=1 with a label")
        self.cond, self.pack = cond, pack
        extra = cond.out_dim if cond is not None else 0
        self.net = mlp([pack * math.prod(image_shape) + extra, *hidden, 1], dropout=dropout)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        h = x.flatten(1)
        if self.pack > 1:  # a last short group is dropped: (N, d) -> (N // m, m * d)
            h = h[: len(h) - len(h) % self.pack].reshape(-1, self.pack * h.shape[1])
        if self.cond is not None:
            h = torch.cat([h, self.cond(y)], dim=1)
        return self.net(h).squeeze(1)


@dataclass(frozen=True)
class GANConfig(Config):
    """Settings of the unconditional GAN. ``output``: "sigmoid" for images in [0, 1], "identity"
    for unbounded points (the 2-D ring). ``pack``: how many samples D judges at once (PacGAN; 1 is
    the plain GAN, and the only choice for conditional models and 28x28 images). ``network``:
    ``"mlp"``, ``"conv"`` (DCGAN-style convolutions, 28x28 images only) or ``"auto"``, the
    convolutions on 28x28 images and the MLPs otherwise."""

    network: Literal["auto", "mlp", "conv"] = "auto"
    z_dim: int = 32
    g_hidden: tuple[int, ...] = (128, 256)
    d_hidden: tuple[int, ...] = (256, 128)
    lr: float = 5e-4
    betas: tuple[float, ...] = (0.5, 0.999)
    g_loss: Literal["non_saturating", "minimax"] = "non_saturating"
    d_dropout: float = 0.0
    output: Literal["sigmoid", "identity"] = "sigmoid"
    g_batch_norm: bool = True
    pack: int = 1

    def validate(self) -> None:
        check_range("d_dropout", self.d_dropout, 0.0, 1.0)
        check_range("pack", self.pack, 1, 16, closed_high=True)
        if self.lr <= 0 or self.z_dim < 1:
            raise CondgenError(f"lr and z_dim must be positive, got lr={self.lr}, z_dim={self.z_dim}")


@dataclass(frozen=True)
class ConditionalGANConfig(GANConfig):
    """The GAN's settings, plus the label embedding's size and the discriminator's kind."""

    embed_dim: int = 16
    d_dropout: float = 0.2
    discriminator: Literal["concat", "projection"] = "concat"


@dataclass(frozen=True)
class ProjectionCGANConfig(ConditionalGANConfig):
    discriminator: Literal["concat", "projection"] = "projection"


@dataclass(frozen=True)
class ACGANConfig(GANConfig):
    """AC-GAN's settings: D never reads y, so there is no discriminator kind; ``shared_body`` puts
    both heads on one body, as in the paper."""

    embed_dim: int = 16
    d_dropout: float = 0.2
    shared_body: bool = False


class GAN(Recipe):
    """The unconditional GAN: models p(x) only, so it cannot be asked for a class."""

    name = "gan"
    Config = GANConfig
    conditional = False
    default_epochs = 200
    # 28x28: 3,900 steps (5 epochs over MNIST's 50,000 training images); on 3,334 real MNIST digits
    # that many steps gave a cGAN with conditional accuracy 0.99 in 270 s on 2 CPU cores
    dataset_steps = {"mnist": 3900, "fashion-mnist": 3900}
    batch_size = 64

    def build(self) -> None:
        """G, then D, then one Adam optimiser each; subclasses change only how G and D read y."""
        c = self.config
        self.network = pick_network(c.network, self.image_shape)
        if self.network == "conv":
            check_conv_shape(self.image_shape)
        if c.pack != 1 and (self.conditional or self.network == "conv"):
            raise CondgenError(f"pack={c.pack} works for the unconditional MLP discriminator only: "
                               f"use pack=1 for {self.name!r} on images of shape {self.image_shape}")
        cond = self.generator_condition()
        if self.network == "conv":  # MNIST-sized images: convolutional networks (DCGAN-style)
            self.G = ConvGenerator(c.z_dim, self.image_shape, cond=cond, output=c.output)
        else:
            self.G = Generator(c.z_dim, self.image_shape, c.g_hidden, output=c.output,
                               batch_norm=c.g_batch_norm, cond=cond)
        self.D = self.make_discriminator()
        self.opt_G = torch.optim.Adam(self.G.parameters(), lr=c.lr, betas=c.betas)
        self.opt_D = torch.optim.Adam(self.D.parameters(), lr=c.lr, betas=c.betas)

    def generator_condition(self) -> nn.Module | None:
        """How G reads the label: not at all in the unconditional GAN."""
        return None

    def make_discriminator(self) -> nn.Module:
        c = self.config
        if self.network == "conv":
            return ConvDiscriminator(self.image_shape, dropout=c.d_dropout)
        return Discriminator(self.image_shape, c.d_hidden, dropout=c.d_dropout, pack=c.pack)

    def modules(self) -> dict[str, nn.Module]:
        return {"G": self.G, "D": self.D}

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"G": self.opt_G, "D": self.opt_D}

    # The two hooks a conditional GAN overrides: how G and D see the label.
    def generate(self, z: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        return self.G(z)

    def discriminate(self, x: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        return self.D(x)

    def draw_fakes(self, n: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``n`` generated images for a training step, with the labels they were asked for (None
        when unconditional); the graph to G is kept, so G's loss can flow back through them."""
        y_fake = self.sample_labels(n, None) if self.conditional else None
        return self.generate(self.noise(n, self.config.z_dim), y_fake), y_fake

    @staticmethod
    def update(optimizer: torch.optim.Optimizer, loss: torch.Tensor) -> None:
        """One gradient step of ``optimizer`` on ``loss``."""
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    def train_step(self, x: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
        x, y = x.to(self.device), y.to(self.device)
        fake, y_fake = self.draw_fakes(len(x))
        # 1) discriminator: push D(x) up on real pairs, down on generated ones
        real_logits = self.discriminate(x, y if self.conditional else None)
        fake_logits = self.discriminate(fake.detach(), y_fake)
        loss_D = losses.discriminator_loss(real_logits, fake_logits)
        self.update(self.opt_D, loss_D)
        # 2) generator: make D accept its samples
        loss_G = losses.generator_loss(self.discriminate(fake, y_fake), self.config.g_loss)
        self.update(self.opt_G, loss_G)
        return {"loss_D": loss_D.item(), "loss_G": loss_G.item(),
                "D_real": torch.sigmoid(real_logits).mean().item(),
                "D_fake": torch.sigmoid(fake_logits).mean().item()}

    @torch.no_grad()
    def sample(self, n: int, labels=None, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` images (n, C, H, W) in [0, 1]; conditional subclasses take ``labels`` (n,)."""
        if labels is not None and not self.conditional:
            raise CondgenError(f"model {self.name!r} is unconditional and takes no labels: "
                               "sample with n only, or train a conditional model such as cgan")
        with eval_mode(self.G):
            y = self.sample_labels(n, labels, generator) if self.conditional else None
            z = self.noise(n, self.config.z_dim, generator)
            return self.generate(z, y).cpu()


# --- conditional GANs (notebooks 02 and 03) ------------------------------------------------------

class ProjectionDiscriminator(nn.Module):
    """D(x, y) = psi(phi(x)) + embed(y) . phi(x) (Miyato and Koyama 2018, section 3) -> logits (N,).

    phi is the MLP body (features (N, F)), psi a linear "is it a digit at all" head and the
    projection term asks "does it look like *this* digit"; y never touches the pixels.
    """

    def __init__(self, image_shape: tuple[int, int, int], hidden=(256, 128), n_classes: int = 10,
                 dropout: float = 0.0):
        super().__init__()
        self.phi = feature_layers(math.prod(image_shape), hidden, dropout)
        self.psi = nn.Linear(hidden[-1], 1)
        self.project = LabelProjection(n_classes, hidden[-1])

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        h = self.phi(x.flatten(1))
        return self.psi(h).squeeze(1) + self.project(h, y)


class ConditionalGAN(GAN):
    """The conditional GAN (Mirza and Osindero 2014): G(z, y) and D(x, y) both read the label
    through a learned embedding, so the game is played on (image, label) pairs and models p(x | y).

    ``discriminator="concat"`` appends the embedding to the pixels; ``"projection"`` uses
    :class:`ProjectionDiscriminator`. The training step is the GAN's: ``conditional = True`` makes
    it draw a label for every fake and hand the real labels to D.
    """

    name = "cgan"
    conditional = True
    Config = ConditionalGANConfig
    default_epochs = 400

    def generator_condition(self) -> nn.Module:
        return LabelEmbedding(self.n_classes, self.config.embed_dim)

    def make_discriminator(self) -> nn.Module:
        c, conv = self.config, self.network == "conv"
        if c.discriminator == "concat":
            cond = LabelEmbedding(self.n_classes, c.embed_dim)
            if conv:
                return ConvDiscriminator(self.image_shape, dropout=c.d_dropout, cond=cond)
            return Discriminator(self.image_shape, c.d_hidden, dropout=c.d_dropout, cond=cond)
        if conv:
            return ConvProjectionDiscriminator(self.image_shape, self.n_classes, dropout=c.d_dropout)
        return ProjectionDiscriminator(self.image_shape, c.d_hidden, self.n_classes,
                                       dropout=c.d_dropout)

    def generate(self, z: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        return self.G(z, y)

    def discriminate(self, x: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        return self.D(x, y)


class ProjectionCGAN(ConditionalGAN):
    """The conditional GAN with a projection discriminator, under its own name for the CLI."""

    name = "cgan-proj"
    Config = ProjectionCGANConfig


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
        self.phi = feature_layers(d, hidden, dropout) if shared else nn.Identity()

        def body() -> nn.Module:  # what each head adds on top of phi
            return nn.Identity() if shared else feature_layers(d, hidden, dropout)

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
    Config = ACGANConfig

    def make_discriminator(self) -> nn.Module:
        c = self.config
        if self.network == "conv":
            return ConvAuxiliaryClassifierDiscriminator(self.image_shape, self.n_classes, dropout=c.d_dropout,
                                                        shared=c.shared_body)
        return AuxiliaryClassifierDiscriminator(self.image_shape, c.d_hidden, self.n_classes,
                                                dropout=c.d_dropout, shared=c.shared_body)

    def discriminate(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """The source logit only; the label is not an input of D (it is the class head's target)."""
        return self.D(x)[0]

    def train_step(self, x: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
        x, y = x.to(self.device), y.to(self.device)
        fake, y_fake = self.draw_fakes(len(x))
        # 1) discriminator: maximise L_S + L_C, i.e. tell real from generated AND name the class of both
        real_src, real_cls = self.D(x)
        fake_src, fake_cls = self.D(fake.detach())
        l_s = losses.source_log_likelihood(real_src, fake_src)
        l_c = losses.class_log_likelihood(real_cls, y) + losses.class_log_likelihood(fake_cls, y_fake)
        loss_D = -(l_s + l_c)
        self.update(self.opt_D, loss_D)
        # 2) generator: maximise L_C - L_S, i.e. look real AND be easy to classify as the asked class
        src, cls = self.D(fake)
        loss_G = losses.acgan_generator_loss(src, cls, y_fake, self.config.g_loss)
        self.update(self.opt_G, loss_G)
        return {"loss_D": loss_D.item(), "loss_G": loss_G.item(), "L_S": l_s.item(), "L_C": l_c.item(),
                "D_real": torch.sigmoid(real_src).mean().item(),
                "D_fake": torch.sigmoid(fake_src).mean().item(),
                "aux_acc_real": (real_cls.argmax(1) == y).float().mean().item(),
                "aux_acc_fake": (fake_cls.argmax(1) == y_fake).float().mean().item()}

    @torch.no_grad()
    def auxiliary_accuracy(self, images: torch.Tensor, labels: torch.Tensor) -> float:
        """Share of ``images`` (N, C, H, W) that D's class head assigns to ``labels`` (N,), in eval mode."""
        with eval_mode(self.D):
            pred = self.D(images.to(self.device))[1].argmax(1).cpu()
        return (pred == torch.as_tensor(labels).cpu()).float().mean().item()


class TACGAN(ACGAN):
    """TAC-GAN (Gong et al. 2019): AC-GAN with a *twin* classifier that learns the class of generated
    images only, p_g(c | x), and a generator that is also pushed to make that twin unsure.

    AC-GAN's class term for G is E_{p_g}[-log p(c | x)] = E KL(p_g(c|x) || p(c|x)) + H_g(C | X)
    (Shu's decomposition, notebook 03): besides matching the data's posterior it rewards samples whose
    class is obvious. The twin's term E_{p_g}[-log p_g(c | x)] = H_g(C | X) is subtracted, which leaves
    the KL term. D's class head here learns from real images only, so it estimates p(c | x) of the data.
    """

    name = "tacgan"

    def build(self) -> None:
        super().build()
        c = self.config
        if self.network == "conv":
            body, width = ConvFeatures(self.image_shape, 256, dropout=c.d_dropout), 256
        else:
            body, width = feature_layers(math.prod(self.image_shape), c.d_hidden, c.d_dropout), c.d_hidden[-1]
        self.twin = nn.Sequential(nn.Flatten(), body, nn.Linear(width, self.n_classes))
        self.opt_twin = torch.optim.Adam(self.twin.parameters(), lr=c.lr, betas=c.betas)

    def modules(self) -> dict[str, nn.Module]:
        return {**super().modules(), "twin": self.twin}

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {**super().optimizers(), "twin": self.opt_twin}

    def train_step(self, x: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
        x, y = x.to(self.device), y.to(self.device)
        fake, y_fake = self.draw_fakes(len(x))
        # 1) discriminator: real vs generated, and the class of *real* images (p(c | x) of the data)
        real_src, real_cls = self.D(x)
        fake_src, _ = self.D(fake.detach())
        l_s = losses.source_log_likelihood(real_src, fake_src)
        l_c = losses.class_log_likelihood(real_cls, y)
        loss_D = -(l_s + l_c)
        self.update(self.opt_D, loss_D)
        # 2) twin classifier: the class of *generated* images (p_g(c | x))
        loss_twin = -losses.class_log_likelihood(self.twin(fake.detach()), y_fake)
        self.update(self.opt_twin, loss_twin)
        # 3) generator: AC-GAN's loss, minus the twin's class term (which cancels the entropy bonus)
        src, cls = self.D(fake)
        loss_G = losses.acgan_generator_loss(src, cls, y_fake, self.config.g_loss) \
            + losses.class_log_likelihood(self.twin(fake), y_fake)
        self.update(self.opt_G, loss_G)
        return {"loss_D": loss_D.item(), "loss_G": loss_G.item(), "loss_twin": loss_twin.item(),
                "L_S": l_s.item(), "D_real": torch.sigmoid(real_src).mean().item(),
                "D_fake": torch.sigmoid(fake_src).mean().item()}


# --- networks for 28x28 images (MNIST, Fashion-MNIST) ---------------------------------------------
# On 8x8 digits the MLPs above train in seconds; on 28x28 images small convolutional networks in the
# style of DCGAN (Radford, Metz and Chintala 2016: strided convolutions, batch norm in G, LeakyReLU
# in D) give sharper samples for the same time. They take the same conditioning modules, so the
# label embedding, the projection term and the auxiliary head work unchanged.

class ConvGenerator(nn.Module):
    """G(z[, y]) for (1, 28, 28) images: a linear layer to 2w x 7 x 7 maps, then two transposed
    convolutions (7 -> 14 -> 28) with batch norm and ReLU between; output in [0, 1]."""

    def __init__(self, z_dim: int, image_shape: tuple[int, ...], cond: nn.Module | None = None,
                 width: int = 64, output: str = "sigmoid"):
        super().__init__()
        self.z_dim, self.image_shape, self.cond, self.output, self.width = z_dim, tuple(image_shape), cond, output, width
        extra = cond.out_dim if cond is not None else 0
        self.project = nn.Sequential(nn.Linear(z_dim + extra, 2 * width * 49), nn.BatchNorm1d(2 * width * 49), nn.ReLU())
        self.net = nn.Sequential(
            nn.ConvTranspose2d(2 * width, width, 4, stride=2, padding=1), nn.BatchNorm2d(width), nn.ReLU(),
            nn.ConvTranspose2d(width, image_shape[0], 4, stride=2, padding=1))

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        h = z if self.cond is None else torch.cat([z, self.cond(y)], dim=1)
        out = self.net(self.project(h).view(-1, 2 * self.width, 7, 7))
        return torch.sigmoid(out) if self.output == "sigmoid" else out


class ConvFeatures(nn.Module):
    """phi(x) for (1, 28, 28) images, flattened or not: two strided convolutions (28 -> 14 -> 7) with
    LeakyReLU, then a linear layer to ``out_dim`` features with LeakyReLU (and dropout)."""

    def __init__(self, image_shape: tuple[int, ...], out_dim: int = 256, width: int = 64, dropout: float = 0.0):
        super().__init__()
        self.image_shape, self.out_dim = tuple(image_shape), out_dim
        self.net = nn.Sequential(
            nn.Conv2d(image_shape[0], width, 4, stride=2, padding=1), nn.LeakyReLU(0.2),
            nn.Conv2d(width, 2 * width, 4, stride=2, padding=1), nn.LeakyReLU(0.2), nn.Flatten(),
            *([nn.Dropout(dropout)] if dropout else []),
            nn.Linear(2 * width * 49, out_dim), nn.LeakyReLU(0.2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.reshape(-1, *self.image_shape))


class ConvDiscriminator(nn.Module):
    """D(x[, y]) -> logits (N,) for 28x28 images: convolutional features, the label embedding (if
    any) concatenated to them, then a hidden layer and the logit. (A linear layer straight after the
    concatenation would add a term of y alone to a term of x alone, so D could not judge the pair.)"""

    def __init__(self, image_shape: tuple[int, ...], cond: nn.Module | None = None, dropout: float = 0.0,
                 features_dim: int = 256):
        super().__init__()
        self.cond = cond
        self.phi = ConvFeatures(image_shape, features_dim, dropout=dropout)
        self.out = mlp([features_dim + (cond.out_dim if cond is not None else 0), features_dim, 1])

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        h = self.phi(x)
        if self.cond is not None:
            h = torch.cat([h, self.cond(y)], dim=1)
        return self.out(h).squeeze(1)


class ConvProjectionDiscriminator(ProjectionDiscriminator):
    """The projection discriminator with convolutional features phi(x); psi and the projection
    term are the same as in :class:`ProjectionDiscriminator`."""

    def __init__(self, image_shape: tuple[int, ...], n_classes: int = 10, dropout: float = 0.0,
                 features_dim: int = 256):
        nn.Module.__init__(self)
        self.phi = ConvFeatures(image_shape, features_dim, dropout=dropout)
        self.psi = nn.Linear(features_dim, 1)
        self.project = LabelProjection(n_classes, features_dim)


class ConvAuxiliaryClassifierDiscriminator(AuxiliaryClassifierDiscriminator):
    """AC-GAN's two-headed discriminator with convolutional bodies (one per head unless ``shared``)."""

    def __init__(self, image_shape: tuple[int, ...], n_classes: int = 10, dropout: float = 0.0,
                 shared: bool = False, features_dim: int = 256):
        nn.Module.__init__(self)

        def body() -> nn.Module:
            return ConvFeatures(image_shape, features_dim, dropout=dropout)

        self.phi = body() if shared else nn.Identity()
        self.source = nn.Sequential(nn.Identity() if shared else body(), nn.Linear(features_dim, 1))
        self.classes = nn.Sequential(nn.Identity() if shared else body(), nn.Linear(features_dim, n_classes))
