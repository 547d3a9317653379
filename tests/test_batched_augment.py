"""The batched augmentation backend against torchvision, on CPU tensors.

Parameters: the same distributions as torchvision's transforms (two-sample KS and
chi-square tests over thousands of draws from each, fixed seeds). Ops: the same output as
torchvision.transforms.v2.functional called per sample with that sample's parameters
(float images: to float precision; uint8 images, what the CPU pipeline runs: to within
uint8 rounding).
"""

from __future__ import annotations

import itertools
import math

import pytest
import torch
from scipy import stats
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as TF

from ssltrain.augment.views import ViewConfig
from ssltrain.augment import batched_ops as ops
from ssltrain.augment.batched import (BatchAugment, crop_and_flip, crop_boxes, recolour, sample_colour,
                                      sample_geometry)
from ssltrain.augment.per_sample import blur_kernel_size

DRAWS = 4000
P_MIN = 0.01  # a distribution test fails below this p-value
SIMCLR_VIEW = ViewConfig(crop_scale=(0.08, 1.0), crop_ratio=(0.75, 4 / 3), flip_p=0.5, jitter_p=0.8, brightness=0.4,
                         contrast=0.4, saturation=0.4, hue=0.1, grayscale_p=0.2, blur_p=0.5, solarize_p=0.2)
# torchvision's uint8 ops round at most twice: a floored luma (contrast, saturation) or
# an intermediate pass (resize), then the result; on average well under one level
UINT8_TOLERANCE, UINT8_MEAN_TOLERANCE = 2 / 255, 0.6 / 255


def _generator(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _images(count: int = 6, height: int = 20, width: int = 20, seed: int = 0) -> torch.Tensor:
    """Float images [B, 3, H, W] in [0, 1] with saturated, gray and mid-range pixels."""
    images = torch.rand(count, 3, height, width, generator=_generator(seed))
    images[:, :, 0, :] = images[:, :1, 0, :]  # a gray row (zero chroma)
    images[:, :, 1, :4] = torch.tensor([1.0, 0.0, 0.0]).view(1, 3, 1)  # pure red
    images[:, :, 2, :4] = 1.0  # white
    return images


def _quantised(images: torch.Tensor) -> torch.Tensor:
    return (images * 255).round().to(torch.uint8)


def _per_sample(reference, images: torch.Tensor, *params) -> torch.Tensor:
    """torchvision's op run one sample at a time: the naive reference."""
    return torch.stack([reference(image, *(p[i] for p in params)) for i, image in enumerate(images)])


def _to_unit(images: torch.Tensor) -> torch.Tensor:
    return images.float() / 255 if images.dtype == torch.uint8 else images


def _torchvision_boxes(height: int, width: int, scale, ratio, seed: int = 1) -> torch.Tensor:
    torch.manual_seed(seed)
    crop = v2.RandomResizedCrop((height, width), scale=scale, ratio=ratio)
    image = torch.zeros(3, height, width)
    boxes = [crop.make_params([image]) for _ in range(DRAWS)]
    return torch.tensor([[b["top"], b["left"], b["height"], b["width"]] for b in boxes], dtype=torch.float32)


def _box_statistics(boxes: torch.Tensor, height: int, width: int) -> dict[str, torch.Tensor]:
    top, left, crop_h, crop_w = boxes.unbind(dim=1)
    return {"area": crop_h * crop_w / (height * width), "log_ratio": torch.log(crop_w / crop_h),
            "top": top / (height - crop_h + 1), "left": left / (width - crop_w + 1)}


# -- parameter distributions


@pytest.mark.parametrize("height,width,scale,ratio", [
    (32, 32, (0.08, 1.0), (3 / 4, 4 / 3)),  # SimCLR / BYOL
    (24, 40, (0.14, 1.0), (3 / 4, 4 / 3)),  # non-square, DINO's global crops
    (32, 32, (0.6, 1.0), (1 / 3, 3.0)),  # often no fit in ten tries: the fallback matters
])
def test_crop_boxes_follow_torchvision_random_resized_crop(height, width, scale, ratio):
    ours = _box_statistics(crop_boxes(DRAWS, height, width, scale, ratio, _generator()), height, width)
    theirs = _box_statistics(_torchvision_boxes(height, width, scale, ratio), height, width)
    for key in ours:
        assert stats.ks_2samp(ours[key].numpy(), theirs[key].numpy()).pvalue > P_MIN, key


def test_the_crop_distribution_test_detects_a_wrong_scale():
    ours = _box_statistics(crop_boxes(DRAWS, 32, 32, (0.2, 1.0), (3 / 4, 4 / 3), _generator()), 32, 32)
    theirs = _box_statistics(_torchvision_boxes(32, 32, (0.08, 1.0), (3 / 4, 4 / 3)), 32, 32)
    assert stats.ks_2samp(ours["area"].numpy(), theirs["area"].numpy()).pvalue < 1e-6


def test_crop_boxes_lie_inside_the_image():
    top, left, crop_h, crop_w = crop_boxes(DRAWS, 24, 40, (0.08, 1.0), (3 / 4, 4 / 3), _generator()).unbind(dim=1)
    assert bool((top >= 0).all() and (left >= 0).all() and (crop_h >= 1).all() and (crop_w >= 1).all())
    assert bool((top + crop_h <= 24).all() and (left + crop_w <= 40).all())


def test_crop_boxes_fall_back_to_torchvisions_centre_crop_when_nothing_fits():
    # ratio 2..3 on a square image never fits in full scale: every draw falls back
    ours = crop_boxes(8, 32, 32, (1.0, 1.0), (2.0, 3.0), _generator())
    theirs = _torchvision_boxes(32, 32, (1.0, 1.0), (2.0, 3.0))[0]
    assert torch.equal(ours, theirs.expand(8, 4))


def test_jitter_factors_and_order_follow_torchvision_color_jitter():
    view = ViewConfig(jitter_p=1.0, brightness=0.4, contrast=0.8, saturation=0.3, hue=0.1)
    params = sample_colour(view, DRAWS, _generator())
    torch.manual_seed(1)
    jitter = v2.ColorJitter(view.brightness, view.contrast, view.saturation, view.hue)
    drawn = [jitter.make_params([torch.zeros(3, 4, 4)]) for _ in range(DRAWS)]
    names = ("brightness_factor", "contrast_factor", "saturation_factor", "hue_factor")
    for column, name in enumerate(names):
        theirs = [d[name] for d in drawn]
        assert stats.ks_2samp(params.factors[:, column].numpy(), theirs).pvalue > P_MIN, name
    # the order: a 2 x 24 table of permutation counts, ours against torchvision's
    perms = {perm: i for i, perm in enumerate(itertools.permutations(range(4)))}
    table = torch.zeros(2, 24)
    for row in params.order.tolist():
        table[0, perms[tuple(row)]] += 1
    for d in drawn:
        table[1, perms[tuple(d["fn_idx"].tolist())]] += 1
    assert stats.chi2_contingency(table.numpy()).pvalue > P_MIN


def test_a_zero_jitter_strength_draws_the_identity_factor():
    params = sample_colour(ViewConfig(jitter_p=1.0, brightness=0.4), 64, _generator())
    assert bool((params.factors[:, 1:3] == 1.0).all() and (params.factors[:, 3] == 0.0).all())


@pytest.mark.parametrize("field,key", [("flip", "flip_p"), ("jitter", "jitter_p"), ("gray", "grayscale_p"),
                                       ("blur", "blur_p"), ("solarize", "solarize_p")])
def test_each_op_is_applied_with_its_probability(field, key):
    params = (sample_geometry(SIMCLR_VIEW, DRAWS, 32, 32, _generator()) if field == "flip"
              else sample_colour(SIMCLR_VIEW, DRAWS, _generator()))
    hits = int(getattr(params, field).sum())
    assert stats.binomtest(hits, DRAWS, getattr(SIMCLR_VIEW, key)).pvalue > P_MIN


def test_blur_sigma_follows_torchvision_gaussian_blur():
    params = sample_colour(SIMCLR_VIEW, DRAWS, _generator())
    torch.manual_seed(1)
    blur = v2.GaussianBlur(3, sigma=SIMCLR_VIEW.blur_sigma)
    theirs = [blur.make_params([torch.zeros(3, 4, 4)])["sigma"][0] for _ in range(DRAWS)]
    assert stats.ks_2samp(params.sigma.numpy(), theirs).pvalue > P_MIN


def test_the_ops_of_a_sample_are_drawn_independently():
    params = sample_colour(SIMCLR_VIEW, DRAWS, _generator())
    table = torch.zeros(2, 2)
    for jitter, gray in zip(params.jitter.tolist(), params.gray.tolist()):
        table[int(jitter), int(gray)] += 1
    assert stats.chi2_contingency(table.numpy()).pvalue > P_MIN


# -- ops against torchvision.transforms.v2.functional


BOXES = torch.tensor([[0, 0, 20, 20], [3, 5, 9, 14], [0, 7, 20, 13], [11, 2, 4, 3], [5, 5, 1, 1], [2, 1, 17, 18]],
                     dtype=torch.float32)


@pytest.mark.parametrize("size", [20, 31, 8])  # identity, upsampling, downsampling (antialiased)
def test_resized_crop_matches_torchvision_on_float_images(size):
    images = _images()
    ours = ops.resized_crop(images, BOXES, size)
    theirs = _per_sample(lambda image, box: TF.resized_crop(image, *box.int().tolist(), [size, size], antialias=True),
                         images, BOXES)
    torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=0)


@pytest.mark.parametrize("size", [20, 31, 8])
def test_resized_crop_matches_torchvision_on_uint8_images_to_within_rounding(size):
    images = _quantised(_images())
    ours = ops.resized_crop(images, BOXES, size)
    theirs = _per_sample(lambda image, box: TF.resized_crop(image, *box.int().tolist(), [size, size], antialias=True),
                         images, BOXES)
    torch.testing.assert_close(ours, theirs.float() / 255, atol=UINT8_TOLERANCE, rtol=0)
    assert (ours - theirs.float() / 255).abs().mean() < UINT8_MEAN_TOLERANCE


def test_hflip_mirrors_exactly_the_chosen_samples():
    images, flip = _images(), torch.tensor([True, False, True, True, False, False])
    expected = _per_sample(lambda image, f: TF.horizontal_flip(image) if f else image, images, flip)
    assert torch.equal(ops.hflip(images, flip), expected)


FACTORS = torch.tensor([0.0, 0.3, 0.9, 1.0, 1.4, 2.0])  # one per sample
HUE_SHIFTS = torch.tensor([-0.5, -0.1, 0.0, 0.05, 0.33, 0.5])
SINGLE_OPS = {  # name: (op id, torchvision's functional op, factors)
    "brightness": (ops.BRIGHTNESS, TF.adjust_brightness, FACTORS),
    "contrast": (ops.CONTRAST, TF.adjust_contrast, FACTORS),
    "saturation": (ops.SATURATION, TF.adjust_saturation, FACTORS),
    "hue": (ops.HUE, TF.adjust_hue, HUE_SHIFTS),
}


def _jitter_one_op(images: torch.Tensor, name: str) -> torch.Tensor:
    """color_jitter with only `name` in every sample's order (the others at identity)."""
    op, _, values = SINGLE_OPS[name]
    factors = torch.tensor([1.0, 1.0, 1.0, 0.0]).repeat(len(images), 1)
    factors[:, op] = values
    order = torch.tensor([op] + [o for o in range(4) if o != op]).repeat(len(images), 1)
    return ops.color_jitter(images, factors, order, torch.ones(len(images), dtype=torch.bool))


@pytest.mark.parametrize("name", SINGLE_OPS)
def test_each_jitter_op_matches_torchvision_on_float_images(name):
    images = _images()
    _, reference, values = SINGLE_OPS[name]
    torch.testing.assert_close(_jitter_one_op(images, name), _per_sample(reference, images, values.tolist()),
                               atol=1e-5, rtol=0)


@pytest.mark.parametrize("name", SINGLE_OPS)
def test_each_jitter_op_matches_torchvision_on_uint8_images_to_within_rounding(name):
    images = _quantised(_images())
    _, reference, values = SINGLE_OPS[name]
    theirs = _per_sample(reference, images, values.tolist()).float() / 255
    ours = _jitter_one_op(_to_unit(images), name)
    torch.testing.assert_close(ours, theirs, atol=UINT8_TOLERANCE, rtol=0)
    assert (ours - theirs).abs().mean() < UINT8_MEAN_TOLERANCE


def test_color_jitter_applies_each_samples_own_order_like_torchvision():
    images = _images(count=24)
    order = torch.tensor(list(itertools.permutations(range(4))))  # every order once
    factors = torch.stack([torch.linspace(0.5, 1.5, 24), torch.linspace(1.6, 0.4, 24),
                           torch.linspace(0.2, 1.9, 24), torch.linspace(-0.3, 0.3, 24)], dim=1)
    apply = torch.arange(24) % 5 != 0
    adjust = (TF.adjust_brightness, TF.adjust_contrast, TF.adjust_saturation, TF.adjust_hue)

    def reference(image, sample_order, sample_factors, applied):
        if applied:
            for op in sample_order.tolist():
                image = adjust[op](image, float(sample_factors[op]))
        return image

    expected = _per_sample(reference, images, order, factors, apply)
    torch.testing.assert_close(ops.color_jitter(images, factors, order, apply), expected, atol=1e-5, rtol=0)


def test_color_jitter_leaves_unapplied_samples_exactly_unchanged():
    images = _images()
    factors = torch.tensor([1.3, 0.7, 1.5, 0.2]).repeat(6, 1)
    order = torch.tensor([3, 2, 1, 0]).repeat(6, 1)
    out = ops.color_jitter(images, factors, order, torch.zeros(6, dtype=torch.bool))
    assert torch.equal(out, images)


@pytest.mark.parametrize("quantise", [False, True])
def test_grayscale_matches_torchvision(quantise):
    images = _quantised(_images()) if quantise else _images()
    apply = torch.tensor([True, False, True, False, True, True])
    theirs = _per_sample(lambda image, a: TF.rgb_to_grayscale(image, 3) if a else image, images, apply)
    torch.testing.assert_close(ops.random_grayscale(_to_unit(images), apply), _to_unit(theirs),
                               atol=UINT8_TOLERANCE if quantise else 1e-6, rtol=0)


@pytest.mark.parametrize("quantise", [False, True])
def test_gaussian_blur_matches_torchvision(quantise):
    images = _quantised(_images()) if quantise else _images()
    sigma = torch.tensor([0.1, 0.5, 1.0, 1.5, 2.0, 0.8])
    apply = torch.tensor([True, True, True, True, True, False])
    size = blur_kernel_size(64)  # 7: wider than the 3 of 32-px images
    theirs = _per_sample(lambda image, s, a: TF.gaussian_blur(image, [size, size], [float(s)] * 2) if a else image,
                         images, sigma, apply)
    torch.testing.assert_close(ops.gaussian_blur(_to_unit(images), sigma, size, apply), _to_unit(theirs),
                               atol=UINT8_TOLERANCE if quantise else 1e-6, rtol=0)


def test_solarize_matches_torchvision_on_uint8_images():
    images = _quantised(_images())
    images[:, :, 3, :3] = torch.tensor([127, 128, 129], dtype=torch.uint8)  # at the threshold
    apply = torch.tensor([True, False, True, True, False, True])
    theirs = _per_sample(lambda image, a: TF.solarize(image, 128) if a else image, images, apply)
    torch.testing.assert_close(ops.solarize(_to_unit(images), apply), _to_unit(theirs), atol=1e-6, rtol=0)


def test_a_rendered_view_matches_torchvisions_ops_in_the_cpu_pipelines_order():
    view = ViewConfig(size=16, crop_scale=(0.08, 1.0), crop_ratio=(3 / 4, 4 / 3), flip_p=0.5, jitter_p=0.8,
                      brightness=0.4, contrast=0.4, saturation=0.4, hue=0.1, grayscale_p=0.2, blur_p=0.5,
                      solarize_p=0.2)
    images = _quantised(_images(count=32, height=24, width=24))
    generator = _generator(3)
    geometry, params = sample_geometry(view, 32, 24, 24, generator), sample_colour(view, 32, generator)
    adjust = (TF.adjust_brightness, TF.adjust_contrast, TF.adjust_saturation, TF.adjust_hue)
    kernel = blur_kernel_size(16)

    def reference(i: int) -> torch.Tensor:
        image = TF.resized_crop(_to_unit(images[i]), *geometry.boxes[i].int().tolist(), [16, 16], antialias=True)
        if geometry.flip[i]:
            image = TF.horizontal_flip(image)
        if params.jitter[i]:
            for op in params.order[i].tolist():
                image = adjust[op](image, float(params.factors[i, op]))
        if params.gray[i]:
            image = TF.rgb_to_grayscale(image, 3)
        if params.blur[i]:
            image = TF.gaussian_blur(image, [kernel, kernel], [float(params.sigma[i])] * 2)
        if params.solarize[i]:
            image = TF.solarize(image, 128 / 255)
        return image

    expected = torch.stack([reference(i) for i in range(32)])
    torch.testing.assert_close(recolour(crop_and_flip(images, geometry, view, 16), params, view, 16), expected,
                               atol=1e-4, rtol=0)


# -- the whole backend


def test_batch_augment_makes_the_configured_views_normalised():
    views = [ViewConfig(count=2, crop_scale=(0.14, 1.0)), ViewConfig(count=3, size=8, crop_scale=(0.05, 0.14))]
    mean, std = (0.4, 0.5, 0.6), (0.2, 0.25, 0.3)
    images = _quantised(_images(count=4, height=16, width=16)).permute(0, 2, 3, 1)  # [B, H, W, 3]
    out = BatchAugment(views, 16, mean, std)(images, _generator())
    assert [tuple(v.shape) for v in out] == [(4, 3, 16, 16)] * 2 + [(4, 3, 8, 8)] * 3
    pixels = torch.stack([v * torch.tensor(std).view(1, 3, 1, 1) + torch.tensor(mean).view(1, 3, 1, 1) for v in out[:2]])
    assert pixels.min() > -1e-5 and pixels.max() < 1 + 1e-5


def test_batch_augment_without_augmentation_is_the_normalised_image():
    images = _quantised(_images(count=4)).permute(0, 2, 3, 1)
    out = BatchAugment([ViewConfig()], 20, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25))(images, _generator())
    expected = (images.permute(0, 3, 1, 2).float() / 255 - 0.5) / 0.25
    assert len(out) == 1 and torch.equal(out[0], expected)


def test_batch_augment_is_a_function_of_the_generator_seed():
    images = _quantised(_images(count=4)).permute(0, 2, 3, 1)
    augment = BatchAugment([SIMCLR_VIEW, SIMCLR_VIEW], 20, (0.5,) * 3, (0.25,) * 3)
    first, again, other = (augment(images, _generator(seed)) for seed in (5, 5, 6))
    assert all(torch.equal(a, b) for a, b in zip(first, again))
    assert not torch.equal(first[0], other[0]) and not torch.equal(first[0], first[1])


def test_views_of_one_image_get_independent_parameters():
    images = _quantised(_images(count=1)).permute(0, 2, 3, 1).repeat(DRAWS // 4, 1, 1, 1)
    augment = BatchAugment([ViewConfig(count=2, crop_scale=(0.08, 1.0), crop_ratio=(3 / 4, 4 / 3))], 20, (0,) * 3, (1,) * 3)
    one, two = augment(images, _generator())
    means_one, means_two = one.mean(dim=(1, 2, 3)), two.mean(dim=(1, 2, 3))
    assert abs(stats.pearsonr(means_one.numpy(), means_two.numpy()).statistic) < 0.1
    assert not math.isclose(float(means_one.std()), 0.0)


def test_a_view_of_another_size_without_a_crop_is_the_resized_image():
    images = _quantised(_images(count=3))
    out = BatchAugment([ViewConfig(size=12)], 20, (0.0,) * 3, (1.0,) * 3)(images.permute(0, 2, 3, 1), _generator())
    expected = TF.resize(_to_unit(images), [12, 12], antialias=True)
    torch.testing.assert_close(out[0], expected, atol=1e-5, rtol=0)
