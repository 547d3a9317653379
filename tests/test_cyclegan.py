"""CycleGAN (method=cyclegan): the least-squares losses against hand values, cycle and
identity losses of zero for identity generators, each player's gradients, the running
statistics of the probed encoder (real A images only), and a command-line run on two
synthetic datasets that leaves the translated images as PNG. Its real run (CIFAR-10 colour
vs grayscale) is tests/test_domain_learning.py (slow)."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from conftest import smoke
from kit import views_batch
from ssltrain.compose import compose_settings
from ssltrain.losses.lsgan import lsgan_discriminator_loss, lsgan_generator_loss
from ssltrain.methods.cyclegan import CycleGAN
from ssltrain.registry import ENCODERS
from ssltrain.run import run


def test_lsgan_losses_by_hand():
    real, fake = torch.tensor([[1.0, 0.5], [0.0, 1.0]]), torch.tensor([0.0, 0.5, -1.0])
    # D: 0.5 * (mean of (0, 0.25, 1, 0) + mean of (0, 0.25, 1))
    assert lsgan_discriminator_loss(real, fake).item() == pytest.approx(0.5 * (1.25 / 4 + 1.25 / 3))
    assert lsgan_generator_loss(fake).item() == pytest.approx((1 + 0.25 + 4) / 3)
    assert lsgan_discriminator_loss(torch.ones(2, 1, 3, 3), torch.zeros(2, 1, 3, 3)).item() == 0.0
    assert lsgan_generator_loss(torch.ones(5)).item() == 0.0


def _cyclegan() -> CycleGAN:
    torch.manual_seed(0)
    encoder = ENCODERS.build("small_cnn", context={"image_size": 16}, channels=[4, 8])
    return CycleGAN(encoder, image_size=16, mean=(0.5,) * 3, std=(0.25,) * 3, discriminator_widths=(8, 16))


class _Unchanged(nn.Module):
    """A generator that returns its input image (in [-1, 1] pixels)."""

    def __init__(self, method: CycleGAN):
        super().__init__()
        self.method = [method]  # not a submodule

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.method[0].to_pixels(images)


def test_identity_generators_have_zero_cycle_and_identity_losses():
    method = _cyclegan()
    method.a_to_b, method.b_to_a = _Unchanged(method), _Unchanged(method)
    outputs = method(views_batch([16], batch=4, target=True))
    assert outputs["cycle_loss"].item() == pytest.approx(0.0, abs=1e-6)
    assert outputs["identity_loss"].item() == pytest.approx(0.0, abs=1e-6)


def _grads(method: CycleGAN, loss: torch.Tensor) -> dict[str, torch.Tensor]:
    method.zero_grad()
    loss.backward(retain_graph=True)
    return {name: p.grad.clone() if p.grad is not None else torch.zeros_like(p) for name, p in method.named_parameters()}


def test_each_player_descends_only_its_own_loss():
    method = _cyclegan()
    outputs = method(views_batch([16], batch=4, target=True))
    total = _grads(method, outputs["loss"])
    generators = _grads(method, outputs["g_loss"])
    discriminators = _grads(method, outputs["d_loss"])
    for name in total:
        own = discriminators if name.startswith("discriminator") else generators
        torch.testing.assert_close(total[name], own[name], rtol=1e-4, atol=1e-7)
    assert all(not g.any() for n, g in generators.items() if n.startswith("discriminator"))
    assert all(not g.any() for n, g in discriminators.items() if not n.startswith("discriminator"))


def test_only_real_a_images_update_the_probed_encoders_running_statistics():
    method = _cyclegan()
    reference = copy.deepcopy(method.encoder)
    batch = views_batch([16], batch=4, target=True)
    method(batch)
    reference(batch.views[0])
    for (name, got), expected in zip(method.encoder.named_buffers(), reference.buffers()):
        torch.testing.assert_close(got, expected, msg=name)


def test_cyclegan_trains_and_saves_its_translations(tmp_path):
    """In this process: the two-dataset command line is tested end to end by test_dann.py."""
    settings = compose_settings(smoke("method=cyclegan", "trainer.epochs=1", "dataset.num_images=64",
                                      "target_dataset=synthetic", "target_dataset.num_images=64",
                                      "target_dataset.seed=3", "method.discriminator_widths=[8,16]"))
    assert run(settings, tmp_path, search_roots=[])["method"] == "cyclegan"
    assert sorted(path.name for path in (tmp_path / "pictures").iterdir()) == ["a_to_b_to_a.png", "b_to_a_to_b.png"]
