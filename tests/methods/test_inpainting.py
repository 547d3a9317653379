"""Context Encoder: the hidden blocks, the loss on them, and the optional adversarial term."""

from __future__ import annotations

import pytest
import torch

from ssltrain.data.batch import Batch
from ssltrain.encoders.small import small_cnn
from ssltrain.methods.inpainting import Inpainting

from pretext_testing import assert_picture_grids

MEAN, STD = (0.5, 0.4, 0.3), (0.25, 0.2, 0.3)


def build(**options) -> Inpainting:
    torch.manual_seed(0)
    return Inpainting(small_cnn(channels=(8, 16)), image_size=16, mean=MEAN, std=STD, **options)


def views(count: int = 2) -> torch.Tensor:
    pixels = torch.rand(count, 3, 16, 16)
    return (pixels - torch.tensor(MEAN).view(1, 3, 1, 1)) / torch.tensor(STD).view(1, 3, 1, 1)


def test_the_centre_block_is_exactly_the_hidden_region_filled_with_the_mean_colour():
    images = views()
    inputs, region = build(block=6, center=True).corrupt(images)
    block = torch.zeros(2, 1, 16, 16, dtype=torch.bool)
    block[:, :, 5:11, 5:11] = True
    assert torch.equal(region, block)
    assert (inputs[:, :, 5:11, 5:11] == 0).all()  # 0 in normalised space: the dataset's mean colour
    outside = ~block.expand_as(images)
    assert torch.equal(inputs[outside], images[outside])


def test_random_blocks_hide_at_most_their_total_area_and_only_there():
    images = views(16)
    inputs, region = build(block=4, blocks=3).corrupt(images)
    hidden = region.flatten(1).sum(1)
    assert (hidden >= 16).all() and (hidden <= 48).all()
    assert (inputs[region.expand_as(images)] == 0).all()
    assert torch.equal(inputs[~region.expand_as(images)], images[~region.expand_as(images)])


def test_the_loss_is_the_squared_error_on_the_hidden_region_only():
    method = build(block=6, center=True)
    images, outputs = views(), views()
    _, region = method.corrupt(images)
    hand = ((outputs - images)[:, :, 5:11, 5:11] ** 2).mean()
    assert method.losses(images, outputs, region)["loss"].item() == pytest.approx(hand.item(), rel=1e-5)
    changed_outside = outputs.clone()
    changed_outside[:, :, :5] += 1.0
    assert method.losses(images, changed_outside, region)["loss"].item() == pytest.approx(hand.item(), rel=1e-5)


def test_an_outside_weight_adds_the_weighted_error_on_the_rest():
    method = build(block=6, center=True, outside_weight=0.001)
    images, outputs = views(), views()
    _, region = method.corrupt(images)
    errors = ((outputs - images) ** 2).mean(dim=1)  # [B, H, W]
    inside = region[:, 0]
    hand = errors[inside].mean() + 0.001 * errors[~inside].mean()
    assert method.losses(images, outputs, region)["loss"].item() == pytest.approx(hand.item(), rel=1e-5)


def test_without_adversarial_weight_there_is_no_discriminator():
    assert build().discriminator is None


def grads(module: torch.nn.Module) -> list[bool]:
    return [p.grad is not None and p.grad.abs().sum().item() > 0 for p in module.parameters()]


def test_the_generator_term_moves_only_the_encoder_and_the_critic_term_only_the_discriminator():
    method = build(adversarial_weight=0.001)
    images = views(4)
    inputs, region = method.corrupt(images)
    parts = method.losses(images, method.reconstruct(inputs), region)
    parts["adversarial"].backward(retain_graph=True)
    assert any(grads(method.encoder)) and not any(grads(method.discriminator))
    method.zero_grad()
    parts["discriminator"].backward()
    assert all(grads(method.discriminator)) and not any(grads(method.encoder))


def test_the_adversarial_loss_mixes_reconstruction_and_adversarial_terms_as_in_the_paper():
    method = build(adversarial_weight=0.001)
    images = views(4)
    inputs, region = method.corrupt(images)
    parts = method.losses(images, method.reconstruct(inputs), region)
    expected = 0.999 * parts["reconstruction"] + 0.001 * parts["adversarial"] + parts["discriminator"]
    assert parts["loss"].item() == pytest.approx(expected.item(), rel=1e-6)


def test_images_show_the_holes_the_masks_the_outputs_and_the_targets():
    method = build(block=6, center=True).eval()
    with torch.no_grad():
        grids = method.images(Batch(views=[views(4)], labels=torch.zeros(4)))
    assert set(grids) == {"inputs", "masks", "outputs", "targets"}
    assert (grids["masks"][:, :, 5:11, 5:11] == 1).all() and grids["masks"].sum() == 4 * 3 * 36
    assert_picture_grids(grids, (4, 3, 16, 16))
