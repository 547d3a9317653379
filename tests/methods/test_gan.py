"""DCGAN in one optimizer step: each player's loss moves only its own weights."""

from __future__ import annotations

import copy
import math

import pytest
import torch

from kit import train_step, views_batch
from ssltrain.data.batch import Batch
from ssltrain.losses.gan import discriminator_loss, generator_loss
from ssltrain.methods.gan import GAN, upsampling_plan, uniform_latents
from ssltrain.registry import ENCODERS

MEAN, STD = (0.4, 0.5, 0.6), (0.2, 0.25, 0.3)


def tiny_gan() -> GAN:
    torch.manual_seed(0)
    encoder = ENCODERS.build("small_cnn", channels=(8, 16))
    return GAN(encoder, image_size=16, latent_dim=8, generator_width=16, samples=4, mean=MEAN, std=STD).train()


def real_batch() -> Batch:
    return views_batch([16], batch=6)


def discriminator_params(method: GAN) -> list[torch.nn.Parameter]:
    return [*method.encoder.parameters(), *method.head.parameters()]


def gradients(loss: torch.Tensor, params: list[torch.nn.Parameter]) -> list[torch.Tensor | None]:
    return list(torch.autograd.grad(loss, params, retain_graph=True, allow_unused=True))


def is_zero(grad: torch.Tensor | None) -> bool:
    return grad is None or not grad.abs().sum() > 0


def test_the_discriminator_loss_moves_the_discriminator_and_never_reaches_the_generator():
    method = tiny_gan()
    d_loss = method(real_batch())["d_loss"]
    assert all(is_zero(g) for g in gradients(d_loss, list(method.generator.parameters())))
    assert not all(is_zero(g) for g in gradients(d_loss, discriminator_params(method)))


def test_the_generator_loss_moves_the_generator_and_never_reaches_the_discriminator():
    method = tiny_gan()
    g_loss = method(real_batch())["g_loss"]
    assert all(is_zero(g) for g in gradients(g_loss, discriminator_params(method)))
    assert not any(is_zero(g) for g in gradients(g_loss, list(method.generator.parameters())))


def test_batchnorm_running_statistics_come_from_the_real_images_only():
    method = tiny_gan()
    batch = real_batch()
    reference = copy.deepcopy(method.encoder)
    reference(batch.views[0])  # train mode: one update of the running statistics from the real batch
    method(batch)
    for (name, buffer), expected in zip(method.encoder.named_buffers(), reference.buffers()):
        assert torch.equal(buffer, expected), name


def test_one_optimizer_step_on_the_summed_loss_moves_both_players():
    method = tiny_gan()
    before = {name: p.detach().clone() for name, p in method.named_parameters()}
    train_step(method, real_batch(), torch.optim.AdamW(method.param_groups(), betas=(0.5, 0.999)), lr=2e-4)
    moved = {name for name, p in method.named_parameters() if not torch.equal(p, before[name])}
    assert any(name.startswith("generator.") for name in moved)
    assert any(name.startswith("encoder.") for name in moved) and "head.weight" in moved


def test_the_step_loss_is_the_two_players_losses_computed_by_hand():
    method = tiny_gan()
    batch = real_batch()
    torch.manual_seed(5)
    outputs = method(batch)
    torch.manual_seed(5)
    latents = torch.rand(6, 8) * 2 - 1  # the method's first random draw: z ~ U(-1, 1)
    with torch.no_grad():
        fake = method.generate(latents)
        real_p = torch.sigmoid(method.head(method.encoder(batch.views[0]))).flatten().tolist()
        fake_p = torch.sigmoid(method.head(method.encoder(fake))).flatten().tolist()
    d_loss = sum(-math.log(p) for p in real_p) / 6 + sum(-math.log(1 - p) for p in fake_p) / 6
    g_loss = sum(-math.log(p) for p in fake_p) / 6
    assert outputs["d_loss"].item() == pytest.approx(d_loss, rel=1e-5)
    assert outputs["g_loss"].item() == pytest.approx(g_loss, rel=1e-5)
    assert outputs["loss"].item() == pytest.approx(d_loss + g_loss, rel=1e-5)
    assert outputs["d_real"].item() == pytest.approx(sum(real_p) / 6, rel=1e-5)
    assert outputs["d_fake"].item() == pytest.approx(sum(fake_p) / 6, rel=1e-5)


def test_the_gan_losses_match_the_binary_cross_entropy_by_hand():
    real, fake = torch.tensor([2.0, -1.0, 0.5]), torch.tensor([-3.0, 0.0])
    sigmoid = lambda x: 1 / (1 + math.exp(-x))  # noqa: E731
    expected_d = -(math.log(sigmoid(2.0)) + math.log(sigmoid(-1.0)) + math.log(sigmoid(0.5))) / 3 \
        - (math.log(1 - sigmoid(-3.0)) + math.log(1 - sigmoid(0.0))) / 2
    expected_g = -(math.log(sigmoid(-3.0)) + math.log(sigmoid(0.0))) / 2
    assert discriminator_loss(real, fake).item() == pytest.approx(expected_d, rel=1e-6)
    assert generator_loss(fake).item() == pytest.approx(expected_g, rel=1e-6)


def test_generated_images_live_in_the_normalised_space_of_the_real_views():
    method = tiny_gan()
    x = method.generate(uniform_latents(6, 8))  # tanh in [-1, 1] -> pixels in [0, 1] -> normalised
    assert x.shape == (6, 3, 16, 16)
    for c in range(3):
        lowest, highest = -MEAN[c] / STD[c], (1 - MEAN[c]) / STD[c]
        assert x[:, c].min() >= lowest - 1e-5 and x[:, c].max() <= highest + 1e-5


@pytest.mark.parametrize("size,plan", [(32, (4, 3)), (64, (4, 4)), (96, (6, 4)), (28, (7, 2))])
def test_the_generator_starts_small_and_doubles_up_to_the_image_size(size, plan):
    assert upsampling_plan(size) == plan


def test_samples_come_from_fixed_latents_whatever_the_random_state():
    method = tiny_gan().eval()
    with torch.no_grad():
        torch.manual_seed(1)
        first = method.images(real_batch())
        torch.manual_seed(2)
        second = method.images(real_batch())
    assert first["samples"].shape == (4, 3, 16, 16) and first["real"].shape == (4, 3, 16, 16)
    assert torch.equal(first["samples"], second["samples"])
