"""CycleGAN: unpaired translation between domain A (`dataset`) and domain B
(`target_dataset`). Two generators G: A -> B and F: B -> A, two PatchGAN discriminators;
the encoder half of one of them (`representation`: G, "a_to_b", by default) is the
representation evaluation probes (`self.encoder`), on A images (`dataset`'s holdout).

Zhu et al., "Unpaired Image-to-Image Translation using Cycle-Consistent Adversarial
Networks", ICCV 2017, https://arxiv.org/abs/1703.10593.

Each generator is an encoder (the probed generator's is the configured encoder; the other's
a copy of it, initialised afresh) whose feature map a mirror decoder (parts/decoders.py)
brings back to the image size, then tanh: pixels in [-1, 1]. The paper's generator is a
ResNet encoder-decoder with instance norm (sec. 7.2); here the encoder group's network
(e.g. a CIFAR-stem ResNet-18).
generator_norm="instance" (default) gives the decoders and the other generator's encoder
instance norm as the paper's (InstanceNorm2d without affine parameters or running statistics,
as the authors' code's norm='instance'); the probed encoder keeps the encoder group's
BatchNorm, since its weights must load as that encoder
(backbone.pt, checkpoint=RUN). "batch" keeps BatchNorm everywhere. The PatchGAN
discriminators have instance norm (parts/patchgan.py).
Losses in [-1, 1] pixel space (sec. 3, eq. 1-3; sec. 5.2 and 7.1):
- adversarial (least squares, losses/lsgan.py): D_B(real b) -> 1, D_B(G(a)) -> 0, and G wants
  D_B(G(a)) -> 1; the same for F and D_A;
- cycle: cycle_weight * (|F(G(a)) - a|_1 + |G(F(b)) - b|_1);
- identity: identity_weight * cycle_weight * (|G(b) - b|_1 + |F(a) - a|_1).
The discriminators score fakes drawn through a history of pool_size past fakes each
(parts/image_pool.py, sec. 7.1); the generators are scored on their latest fakes.
One optimizer, one backward, as methods/gan.py: the discriminators see detached fakes, and
the generators are scored by the discriminators through detached copies of their weights
(gan.isolated_call), so each player descends its own objective in the same step. Only real
A images (what evaluation feeds it) update the running statistics of the probed generator:
its other passes run on throwaway copies of its buffers.
Which encoder: G's ("a_to_b") takes A images as its main input. F's ("b_to_a") takes B
images, and A images through the identity loss (F(a) ~ a) only, so it needs
identity_weight > 0 to have been trained on what the probe feeds it; it is the one to probe
when B -> A is the direction that needs the image's content, e.g. A = colour, B = grayscale
(F colours images: colorization's task; G only weighs the channels, a per-pixel map).
The lr: constant for the first half of the run, then linearly to zero (the recipe's
optimizer.lr_schedule=linear_decay; sec. 7.1: 100 epochs constant, 100 decaying).

Defaults: cycle_weight 10 and identity_weight 0.5 (sec. 7.1: lambda = 10, identity 0.5
lambda), pool_size 50 (sec. 7.1), generator_norm instance (sec. 7.2); representation a_to_b
(the paper probes neither; G's encoder is trained mostly on the images evaluation feeds it).
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from ssltrain.augment.pixels import RGB, denormalize, normalize
from ssltrain.data.batch import Batch
from ssltrain.losses.lsgan import lsgan_discriminator_loss, lsgan_generator_loss
from ssltrain.methods.base import SSLMethod
from ssltrain.errors import check_choice
from ssltrain.methods.gan import dcgan_init, isolated_call
from ssltrain.parts.decoders import mirror_decoder
from ssltrain.parts.image_pool import ImagePool
from ssltrain.parts.patchgan import patch_discriminator
from ssltrain.registry import METHODS

PICTURES = 8  # images per logged grid and per saved picture


def with_instance_norm(module: nn.Module) -> nn.Module:
    """`module` with every BatchNorm2d replaced, in place, by an InstanceNorm2d (no affine
    parameters, no running statistics: the authors' code's norm='instance')."""
    for name, child in module.named_children():
        if isinstance(child, nn.BatchNorm2d):
            setattr(module, name, nn.InstanceNorm2d(child.num_features))
        else:
            with_instance_norm(child)
    return module


class Translator(nn.Module):
    """A generator: normalised images [B, 3, H, W] -> pixels in [-1, 1] [B, 3, H, W].
    instance_norm: the decoder's normalisation layers are InstanceNorm2d (else BatchNorm2d)."""

    def __init__(self, encoder: nn.Module, image_size: int, instance_norm: bool):
        super().__init__()
        self.encoder = encoder
        decoder = mirror_decoder(encoder, image_size)
        self.decoder = with_instance_norm(decoder) if instance_norm else decoder

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.decoder(self.encoder.forward_features(images)))


def fresh_copy(module: nn.Module) -> nn.Module:
    """A copy of `module` with every layer's parameters initialised anew."""
    twin = copy.deepcopy(module)
    for layer in twin.modules():
        if hasattr(layer, "reset_parameters"):
            layer.reset_parameters()
    return twin


@METHODS.register("cyclegan")
class CycleGAN(SSLMethod):
    views = (1, 1)
    encoder_kinds = ("cnn",)
    needs_target = True

    def __init__(self, encoder: nn.Module, image_size: int, mean: RGB = (0.5,) * 3, std: RGB = (0.5,) * 3,
                 cycle_weight: float = 10.0, identity_weight: float = 0.5,
                 discriminator_widths: tuple[int, ...] = (64, 128, 256), pool_size: int = 50,
                 generator_norm: str = "instance", representation: str = "a_to_b"):
        """pool_size: past fakes each discriminator draws from (0: none); generator_norm:
        instance or batch, for the decoders and the other generator's encoder (the probed
        encoder keeps its own); representation: the generator whose encoder half is
        self.encoder, a_to_b (G) or b_to_a (F)."""
        super().__init__(encoder)
        check_choice("method.generator_norm", generator_norm, ("instance", "batch"))
        check_choice("method.representation", representation, ("a_to_b", "b_to_a"))
        instance_norm = generator_norm == "instance"
        self.mean, self.std = tuple(mean), tuple(std)
        self.cycle_weight, self.identity_weight, self.representation = cycle_weight, identity_weight, representation
        probed = Translator(encoder, image_size, instance_norm)  # its encoder is self.encoder
        twin = fresh_copy(encoder)
        other = Translator(with_instance_norm(twin) if instance_norm else twin, image_size, instance_norm)
        self.a_to_b, self.b_to_a = (probed, other) if representation == "a_to_b" else (other, probed)  # G, F
        self.discriminator_a = patch_discriminator(discriminator_widths)  # real A vs F(b)
        self.discriminator_b = patch_discriminator(discriminator_widths)  # real B vs G(a)
        self.pool_a = ImagePool(pool_size, (3, image_size, image_size))  # past F(b), for discriminator_a
        self.pool_b = ImagePool(pool_size, (3, image_size, image_size))  # past G(a), for discriminator_b
        for part in (self.a_to_b.decoder, self.b_to_a.decoder, self.discriminator_a, self.discriminator_b):
            part.apply(dcgan_init)  # N(0, 0.02), as the paper's code initialises

    def to_input(self, pixels: torch.Tensor) -> torch.Tensor:
        """Pixels in [-1, 1] -> the normalised images a generator takes."""
        return normalize((pixels + 1) / 2, self.mean, self.std)

    def to_pixels(self, images: torch.Tensor) -> torch.Tensor:
        """Normalised images -> pixels in [-1, 1]."""
        return denormalize(images.float(), self.mean, self.std) * 2 - 1

    def generate(self, direction: str, images: torch.Tensor, real_a: bool = False) -> torch.Tensor:
        """The a_to_b or b_to_a generator on `images`; the probed one's running statistics see
        real A images only."""
        generator = getattr(self, direction)
        if direction == self.representation and not real_a:
            return isolated_call(generator, images, frozen=False)
        return generator(images)

    def translate(self, images_a: torch.Tensor, images_b: torch.Tensor) -> dict[str, torch.Tensor]:
        """Every image of one step, in [-1, 1]: the reals, G(a), F(b), F(G(a)), G(F(b)), G(b), F(a)."""
        fake_b = self.generate("a_to_b", images_a, real_a=True)  # [B, 3, H, W]
        fake_a = self.generate("b_to_a", images_b)
        return {"a": self.to_pixels(images_a), "b": self.to_pixels(images_b), "a_to_b": fake_b, "b_to_a": fake_a,
                "a_to_b_to_a": self.generate("b_to_a", self.to_input(fake_b)),
                "b_to_a_to_b": self.generate("a_to_b", self.to_input(fake_a)),
                "b_identity": self.generate("a_to_b", images_b),
                "a_identity": self.generate("b_to_a", images_a, real_a=True)}

    def training_step(self, batch: Batch) -> dict[str, torch.Tensor]:
        x = self.translate(batch.views[0], batch.target.views[0])
        adversarial = (lsgan_generator_loss(isolated_call(self.discriminator_b, x["a_to_b"], frozen=True))
                       + lsgan_generator_loss(isolated_call(self.discriminator_a, x["b_to_a"], frozen=True)))
        cycle = F.l1_loss(x["a_to_b_to_a"], x["a"]) + F.l1_loss(x["b_to_a_to_b"], x["b"])
        identity = F.l1_loss(x["b_identity"], x["b"]) + F.l1_loss(x["a_identity"], x["a"])
        g_loss = adversarial + self.cycle_weight * (cycle + self.identity_weight * identity)
        fake_b, fake_a = self.pool_b.query(x["a_to_b"].detach()), self.pool_a.query(x["b_to_a"].detach())
        d_loss = (lsgan_discriminator_loss(self.discriminator_b(x["b"]), self.discriminator_b(fake_b))
                  + lsgan_discriminator_loss(self.discriminator_a(x["a"]), self.discriminator_a(fake_a)))
        return {"loss": g_loss + d_loss, "g_loss": g_loss, "d_loss": d_loss, "adversarial_loss": adversarial,
                "cycle_loss": cycle, "identity_loss": identity}

    def images(self, batch: Batch) -> dict[str, torch.Tensor]:
        """A -> B -> A and B -> A -> B, one row each of input, translation and reconstruction."""
        x = self.translate(batch.views[0][:PICTURES], batch.target.views[0][:PICTURES])
        rows = {"a_to_b_to_a": ("a", "a_to_b", "a_to_b_to_a"), "b_to_a_to_b": ("b", "b_to_a", "b_to_a_to_b")}
        return {tag: (torch.cat([x[name].float() for name in names]) + 1).div(2).clamp(0, 1)
                for tag, names in rows.items()}
