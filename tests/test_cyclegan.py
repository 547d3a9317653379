"""CycleGAN (method=cyclegan): the least-squares losses against hand values, cycle and
identity losses of zero for identity generators, each player's gradients, which generator's
encoder is probed and its running statistics (real A images only), the paper's history of 50 fakes,
instance norm and lr schedule, and a command-line run on two
synthetic datasets that leaves the translated images as PNG. Its real run (CIFAR-10 colour
vs grayscale) is tests/test_domain_learning.py (slow)."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from conftest import smoke
from kit import views_batch
from ssltrain.build import build_optimizer
from ssltrain.compose import compose_settings
from ssltrain.errors import UserError
from ssltrain.losses.lsgan import lsgan_discriminator_loss, lsgan_generator_loss
from ssltrain.methods.cyclegan import CycleGAN
from ssltrain.parts.image_pool import ImagePool
from ssltrain.registry import ENCODERS
from ssltrain.run import run


def test_lsgan_losses_by_hand():
    real, fake = torch.tensor([[1.0, 0.5], [0.0, 1.0]]), torch.tensor([0.0, 0.5, -1.0])
    # D: 0.5 * (mean of (0, 0.25, 1, 0) + mean of (0, 0.25, 1))
    assert lsgan_discriminator_loss(real, fake).item() == pytest.approx(0.5 * (1.25 / 4 + 1.25 / 3))
    assert lsgan_generator_loss(fake).item() == pytest.approx((1 + 0.25 + 4) / 3)
    assert lsgan_discriminator_loss(torch.ones(2, 1, 3, 3), torch.zeros(2, 1, 3, 3)).item() == 0.0
    assert lsgan_generator_loss(torch.ones(5)).item() == 0.0


def _cyclegan(**options) -> CycleGAN:
    torch.manual_seed(0)
    encoder = ENCODERS.build("small_cnn", context={"image_size": 16}, channels=[4, 8])
    return CycleGAN(encoder, image_size=16, mean=(0.5,) * 3, std=(0.25,) * 3, discriminator_widths=(8, 16), **options)


def test_the_pool_passes_and_stores_new_images_until_it_holds_its_size():
    pool = ImagePool(5, (1, 1, 1))
    first, second = torch.arange(3.0).view(3, 1, 1, 1), torch.arange(3.0, 5.0).view(2, 1, 1, 1)
    assert torch.equal(pool.query(first), first) and torch.equal(pool.query(second), second)
    assert torch.equal(pool.images, torch.arange(5.0).view(5, 1, 1, 1)) and pool.count.item() == 5


def test_a_full_pool_returns_a_stored_image_half_the_time_and_keeps_the_new_one_in_its_place():
    torch.manual_seed(0)
    pool = ImagePool(50, (1, 1, 1))
    pool.query(-torch.arange(1.0, 51.0).view(50, 1, 1, 1))  # stored images are negative
    new = torch.arange(1.0, 2001.0).view(2000, 1, 1, 1)  # positive and distinct
    before = set(pool.images.flatten().tolist())
    out = pool.query(new).flatten()
    swapped = out != new.flatten()
    assert 0.45 < swapped.float().mean().item() < 0.55  # probability 1/2, 2,000 draws
    after = set(pool.images.flatten().tolist())
    assert set(out[swapped].tolist()) <= before | set(new.flatten().tolist())  # what went out had been stored
    assert after <= before | set(new[swapped].flatten().tolist())  # only swapped-in images entered
    assert len(pool.images.unique()) == 50


def test_a_pool_of_size_zero_passes_images_as_they_are():
    images = torch.randn(4, 3, 2, 2)
    assert ImagePool(0, (3, 2, 2)).query(images) is images


def test_instance_norm_replaces_batchnorm_everywhere_but_in_the_probed_encoder():
    method = _cyclegan()
    elsewhere = [method.a_to_b.decoder, method.b_to_a]
    assert not any(isinstance(layer, nn.BatchNorm2d) for part in elsewhere for layer in part.modules())
    assert sum(isinstance(layer, nn.InstanceNorm2d) for part in elsewhere for layer in part.modules()) >= 4
    encoder = ENCODERS.build("small_cnn", context={"image_size": 16}, channels=[4, 8])
    encoder.load_state_dict(method.encoder.state_dict())  # loads as the configured encoder
    batch_norm = _cyclegan(generator_norm="batch")
    assert not any(isinstance(layer, nn.InstanceNorm2d) for layer in batch_norm.b_to_a.modules())


def test_the_recipes_lr_is_constant_for_half_the_run_then_falls_linearly_to_zero():
    settings = compose_settings(smoke("method=cyclegan", "target_dataset=synthetic", "trainer.epochs=2",
                                      "trainer.batch_size=64"))
    _, schedule = build_optimizer(settings, _cyclegan(), steps_per_epoch=5)
    assert schedule.lr == pytest.approx([2e-4] * 6 + [2e-4 * k / 5 for k in (4, 3, 2, 1)])  # 8e-4 per 256 images


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


@pytest.mark.parametrize("representation", ["a_to_b", "b_to_a"])
def test_the_representation_is_the_chosen_generators_encoder_and_the_other_has_instance_norm(representation):
    method = _cyclegan(representation=representation)
    other = "b_to_a" if representation == "a_to_b" else "a_to_b"
    assert getattr(method, representation).encoder is method.encoder
    assert not any(isinstance(layer, nn.BatchNorm2d) for layer in getattr(method, other).modules())


def test_an_unknown_representation_lists_the_valid_ones():
    with pytest.raises(UserError, match="method.representation='g'.*a_to_b, b_to_a"):
        _cyclegan(representation="g")


@pytest.mark.parametrize("representation", ["a_to_b", "b_to_a"])
def test_only_real_a_images_update_the_probed_encoders_running_statistics(representation):
    method = _cyclegan(representation=representation)
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
