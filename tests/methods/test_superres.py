"""Super-resolution: the encoder sees the down-up-sampled view, the loss is the MSE to the view."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from kit import views_batch
from ssltrain.encoders.small import small_cnn
from ssltrain.errors import UserError
from ssltrain.methods.superres import SuperResolution

from pretext_testing import assert_picture_grids


def build(**options) -> SuperResolution:
    torch.manual_seed(0)
    return SuperResolution(small_cnn(channels=(8, 16)), image_size=16, **options)


@pytest.mark.parametrize("factor,mode", [(2, "bicubic"), (4, "bilinear")])
def test_the_input_is_the_block_average_upsampled_back_to_full_size(factor, mode):
    images = torch.randn(2, 3, 16, 16)
    side = 16 // factor
    low = torch.empty(2, 3, side, side)
    for i in range(side):
        for j in range(side):
            low[:, :, i, j] = images[:, :, factor * i:factor * (i + 1), factor * j:factor * (j + 1)].mean(dim=(2, 3))
    inputs, region = build(factor=factor, upsample=mode).corrupt(images)
    assert region is None and inputs.shape == images.shape
    assert torch.allclose(inputs, F.interpolate(low, size=(16, 16), mode=mode, align_corners=False), atol=1e-5)


def test_the_loss_is_the_mean_squared_error_of_the_reconstruction_to_the_full_resolution_view():
    method = build()
    batch = views_batch([16], batch=2)
    images = batch.views[0]
    loss = method.training_step(batch)["loss"]
    inputs, _ = method.corrupt(images)
    outputs = method.decoder(method.encoder.forward_features(inputs))
    assert loss.item() == pytest.approx(((outputs - images) ** 2).mean().item(), rel=1e-5)


def test_a_factor_that_does_not_divide_the_image_or_an_unknown_upsampling_is_refused():
    with pytest.raises(UserError, match="method.factor=3"):
        build(factor=3)
    with pytest.raises(UserError, match="method.upsample='nearest' is not valid"):
        build(upsample="nearest")


def test_images_show_the_blurred_inputs_the_outputs_and_the_targets():
    method = build().eval()
    with torch.no_grad():
        grids = method.images(views_batch([16], batch=4))
    assert set(grids) == {"inputs", "outputs", "targets"}
    assert_picture_grids(grids, (4, 3, 16, 16))
