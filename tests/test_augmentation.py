"""The CPU view pipeline built from ViewConfig: shapes, ranges and what each op does."""

import pytest
import torch

from conftest import PRESET_METHOD
from ssltrain.compose import compose_settings
from ssltrain.groups import group_choices
from ssltrain.augment.views import ViewConfig
from ssltrain.augment.per_sample import MultiViewTransform, blur_kernel_size
from ssltrain.augment.pixels import denormalize

MEAN, STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)


def image(seed=0):
    return torch.randint(0, 256, (3, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("preset", group_choices("augmentation"))
def test_every_preset_makes_its_views_at_their_sizes_within_the_normalised_range(preset):
    at_size = ["dataset.image_size=224"] if "imagenet" in preset else []  # its local crops are 96 px
    views_config = compose_settings([f"augmentation={preset}", f"method={PRESET_METHOD[preset]}", *at_size]).augmentation.views
    torch.manual_seed(0)
    views = MultiViewTransform(views_config, 32, MEAN, STD)(image())
    sizes = [view.size or 32 for view in views_config for _ in range(view.count)]
    assert [tuple(v.shape) for v in views] == [(3, s, s) for s in sizes]
    low = (0 - torch.tensor(MEAN)) / torch.tensor(STD)
    high = (1 - torch.tensor(MEAN)) / torch.tensor(STD)
    for view in views:
        assert view.dtype == torch.float32
        assert (view >= low.view(3, 1, 1) - 1e-5).all() and (view <= high.view(3, 1, 1) + 1e-5).all()


def test_the_identity_view_is_the_normalised_image():
    picture = image()
    [view] = MultiViewTransform([ViewConfig()], 32, MEAN, STD)(picture)
    assert torch.allclose(denormalize(view.unsqueeze(0), MEAN, STD)[0], picture.float() / 255, atol=1e-6)


def test_grayscale_with_probability_one_makes_equal_channels():
    [view] = MultiViewTransform([ViewConfig(grayscale_p=1.0)], 32, MEAN, STD)(image())
    pixels = denormalize(view.unsqueeze(0), MEAN, STD)[0]
    assert torch.allclose(pixels[0], pixels[1], atol=1e-6) and torch.allclose(pixels[1], pixels[2], atol=1e-6)


def test_solarize_with_probability_one_inverts_bright_pixels():
    picture = torch.tensor([10, 200], dtype=torch.uint8).view(1, 1, 2).expand(3, 1, 2).clone()
    [view] = MultiViewTransform([ViewConfig(solarize_p=1.0)], 2, (0.0,) * 3, (1.0,) * 3)(picture)
    assert torch.allclose(view[0, 0] * 255, torch.tensor([10.0, 55.0]))


def test_a_smaller_view_size_resizes_even_without_a_crop():
    [view] = MultiViewTransform([ViewConfig(size=16)], 32, MEAN, STD)(image())
    assert view.shape == (3, 16, 16)


def test_two_views_of_one_image_differ_and_are_reproducible_under_a_seed():
    config = ViewConfig(count=2, crop_scale=(0.08, 1.0), crop_ratio=(0.75, 1.33), flip_p=0.5)
    transform = MultiViewTransform([config], 32, MEAN, STD)
    torch.manual_seed(0)
    first = transform(image())
    torch.manual_seed(0)
    again = transform(image())
    assert not torch.equal(first[0], first[1])
    assert all(torch.equal(a, b) for a, b in zip(first, again))


def test_blur_kernel_is_about_a_tenth_of_the_side_and_odd():
    assert [blur_kernel_size(s) for s in (32, 96, 224)] == [3, 9, 23]
