"""DCGAN: a generator and a discriminator trained against each other; the discriminator's
trunk is the encoder, and its features are what evaluation probes (the paper's CIFAR-10
experiment, sec. 5.1).

Radford et al., "Unsupervised Representation Learning with Deep Convolutional Generative
Adversarial Networks", ICLR 2016, https://arxiv.org/abs/1511.06434.

Two players, one optimizer, one backward. The step returns loss = d_loss + g_loss where
- d_loss = BCE(D(x), real) + BCE(D(G(z).detach()), fake): the detach keeps it off G;
- g_loss = BCE(D'(G(z)), real) (non-saturating), D' being D run through detached copies
  of its weights: the gradient reaches G through D's input but never D's weights.
Both passes on generated images run on throwaway copies of D's BatchNorm statistics, so
the running statistics that evaluation uses describe real images only.
So d(loss)/d(theta_D) = d(d_loss)/d(theta_D) and d(loss)/d(theta_G) = d(g_loss)/d(theta_G):
each player descends its own objective in the same optimizer step. Unlike the paper's
alternating updates, G is scored by D before (not after) this step's D update
(simultaneous gradient descent).

Defaults: DCGAN sec. 3-4: z 100-d uniform; generator width 512 at 4x4 for 32 px (the paper's
fig. 1, 1024 at 4x4 for 64 px, with one stage fewer).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.func import functional_call

from ssltrain.data.batch import Batch
from ssltrain.augment.pixels import denormalize, normalize
from ssltrain.errors import UserError
from ssltrain.losses.gan import discriminator_loss, generator_loss
from ssltrain.methods.base import SSLMethod
from ssltrain.optim.param_groups import default_param_groups
from ssltrain.registry import METHODS


def isolated_call(module: nn.Module, inputs: torch.Tensor, frozen: bool) -> torch.Tensor:
    """module(inputs) on throwaway copies of its buffers, so BatchNorm running statistics
    stay as they were; frozen: through detached copies of its parameters too, so gradients
    reach `inputs` but never the module's weights."""
    state = {name: param.detach() if frozen else param for name, param in module.named_parameters()}
    state.update({name: buffer.clone() for name, buffer in module.named_buffers()})
    return functional_call(module, state, (inputs,))


def dcgan_init(module: nn.Module) -> None:
    """Weights from N(0, 0.02), BatchNorm scales from N(1, 0.02), biases 0 (DCGAN sec. 4)."""
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
        nn.init.normal_(module.weight, 0.0, 0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.BatchNorm2d):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


def uniform_latents(count: int, dim: int, device: torch.device | None = None,
                    generator: torch.Generator | None = None) -> torch.Tensor:
    """[count, dim] from U(-1, 1) (DCGAN fig. 1: "100 dimensional uniform distribution")."""
    return torch.rand(count, dim, device=device, generator=generator) * 2 - 1


def upsampling_plan(image_size: int) -> tuple[int, int]:
    """(start side, doublings): halve the image side while the half is a whole number >= 4
    (32 px: 4 x 4 and three doublings, as DCGAN's 64 px generator starts at 4 x 4)."""
    side, doublings = image_size, 0
    while side % 2 == 0 and side // 2 >= 4:
        side, doublings = side // 2, doublings + 1
    if doublings == 0:
        raise UserError(f"the DCGAN generator needs an even image size of 8 px or more, got {image_size}")
    return side, doublings


class DCGANGenerator(nn.Module):
    """z [B, Z] -> images [B, 3, S, S] in [-1, 1] (DCGAN sec. 3, fig. 1): a transposed
    convolution projects z to a start x start map of `width` channels; stride-2 4x4
    transposed convolutions then double the side and halve the channels, with BatchNorm +
    ReLU after each but the last, which gives 3 channels through tanh."""

    def __init__(self, latent_dim: int, width: int, image_size: int):
        super().__init__()
        start, doublings = upsampling_plan(image_size)
        if width >> (doublings - 1) < 1:
            raise UserError(f"method.generator_width={width} halves {doublings - 1} times: use at least {1 << (doublings - 1)}")
        layers: list[nn.Module] = [nn.ConvTranspose2d(latent_dim, width, start, 1, 0, bias=False),
                                   nn.BatchNorm2d(width), nn.ReLU(inplace=True)]
        channels = width
        for _ in range(doublings - 1):
            layers += [nn.ConvTranspose2d(channels, channels // 2, 4, 2, 1, bias=False),
                       nn.BatchNorm2d(channels // 2), nn.ReLU(inplace=True)]
            channels //= 2
        layers += [nn.ConvTranspose2d(channels, 3, 4, 2, 1), nn.Tanh()]
        self.net = nn.Sequential(*layers)
        self.apply(dcgan_init)

    def forward(self, latents: torch.Tensor) -> torch.Tensor:
        return self.net(latents[:, :, None, None])  # [B, 3, S, S]


@METHODS.register("gan")
class GAN(SSLMethod):
    views = (1, 1)
    encoder_kinds = ("cnn",)

    def __init__(self, encoder: nn.Module, image_size: int, latent_dim: int = 100, generator_width: int = 512,
                 samples: int = 64, mean: tuple[float, float, float] = (0.5, 0.5, 0.5),
                 std: tuple[float, float, float] = (0.5, 0.5, 0.5)):
        super().__init__(encoder)
        self.latent_dim = latent_dim
        self.generator = DCGANGenerator(latent_dim, generator_width, image_size)
        self.head = nn.Linear(encoder.out_dim, 1)  # pooled features -> real/fake logit
        dcgan_init(self.head)
        self.mean, self.std = tuple(mean), tuple(std)
        fixed = uniform_latents(samples, latent_dim, generator=torch.Generator().manual_seed(0))  # [samples, Z]
        self.register_buffer("fixed_latents", fixed)  # the same samples drawn at every image log

    def generate(self, latents: torch.Tensor) -> torch.Tensor:
        """Samples in the dataset-normalised space the real views arrive in: [B, 3, H, W]."""
        pixels = (self.generator(latents) + 1) / 2  # tanh's [-1, 1] -> [0, 1]
        return normalize(pixels, self.mean, self.std)

    def discriminate(self, images: torch.Tensor, real: bool = True, frozen: bool = False) -> torch.Tensor:
        """Real/fake logits [B]. Only real images update BatchNorm's running statistics:
        evaluation reads real images through them. frozen: D's weights take no gradient
        (the generator's view)."""
        if real and not frozen:
            return self.head(self.encoder(images)).squeeze(1)
        return isolated_call(self.head, isolated_call(self.encoder, images, frozen), frozen).squeeze(1)

    def training_step(self, batch: Batch) -> dict[str, torch.Tensor]:
        real = batch.views[0]  # [B, 3, H, W]
        fake = self.generate(uniform_latents(real.shape[0], self.latent_dim, device=real.device))  # [B, 3, H, W]
        real_logits = self.discriminate(real)  # [B]
        fake_logits = self.discriminate(fake.detach(), real=False)  # [B]
        d_loss = discriminator_loss(real_logits, fake_logits)
        g_loss = generator_loss(self.discriminate(fake, real=False, frozen=True))
        return {"loss": d_loss + g_loss, "d_loss": d_loss, "g_loss": g_loss,
                "d_real": torch.sigmoid(real_logits.detach().float()).mean(),
                "d_fake": torch.sigmoid(fake_logits.detach().float()).mean()}

    def param_groups(self) -> list[dict]:
        """Every group at the constant base lr: DCGAN trains without a schedule (sec. 4)."""
        return [{**group, "fixed_lr": True} for group in default_param_groups(self)]

    def images(self, batch: Batch) -> dict[str, torch.Tensor]:
        samples = (self.generator(self.fixed_latents).float() + 1) / 2  # [samples, 3, H, W]
        real = batch.views[0][: len(self.fixed_latents)]
        return {"samples": samples.clamp(0, 1), "real": denormalize(real.float(), self.mean, self.std)}
