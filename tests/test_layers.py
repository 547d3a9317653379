"""eval=layers: which stage's features a linear probe reads best, one figure per stage."""

from __future__ import annotations

import pytest
import torch

from ssltrain.compose import compose_settings
from ssltrain.encoders.resnet import resnet18
from ssltrain.encoders.small import small_cnn
from ssltrain.encoders.vit import vit_tiny
from ssltrain.errors import UserError
from ssltrain.eval.layers import StageFeatures, default_stages, layers
from test_eval import _toy_data


def test_a_short_encoder_is_probed_at_every_stage_and_a_deep_one_at_four_depths():
    assert default_stages(5) == [0, 1, 2, 3, 4]
    assert default_stages(13) == [3, 6, 9, 12]  # ViT-12: patch embedding + 12 blocks


@pytest.mark.parametrize("encoder", [small_cnn(channels=(8, 16)), vit_tiny(image_size=16, depth=2)],
                         ids=["small_cnn", "vit_tiny"])
def test_the_last_stages_pooled_output_is_the_encoders_own_feature(encoder):
    images = torch.randn(3, 3, 16, 16)
    encoder.eval()
    probe = StageFeatures(encoder, [len(encoder.stages()) - 1])
    assert torch.allclose(probe(images), encoder(images), atol=1e-5)


def test_a_resnet_stage_is_its_layers_output_averaged_over_positions():
    encoder = resnet18(image_size=32).eval()
    images = torch.randn(2, 3, 32, 32)
    probe = StageFeatures(encoder, [0, 2])
    stem = encoder.bn1(encoder.conv1(images))
    stem_mean = stem.mean(dim=(2, 3))  # before the in-place ReLU
    layer2 = encoder.layer2(encoder.layer1(encoder.maxpool(encoder.relu(stem))))
    expected = torch.cat([stem_mean, layer2.mean(dim=(2, 3))], dim=1)
    assert torch.allclose(probe(images), expected, atol=1e-5) and probe.widths == [64, 128]


def test_removing_the_probe_leaves_the_encoder_without_hooks():
    encoder = small_cnn(channels=(8, 16))
    StageFeatures(encoder, [0, 1]).remove()
    assert all(not module._forward_hooks for module in encoder.modules())


def test_the_layer_probe_reports_top1_and_top5_for_each_stage():
    results = layers(small_cnn(channels=(8, 16)), _toy_data(), torch.device("cpu"), epochs=5)
    assert {"stage0_top1", "stage0_top5", "stage1_top1", "stage1_top5"} <= set(results)
    assert results["stage1_top1"] == 1.0  # the two toy classes differ in brightness


def test_a_stage_the_encoder_lacks_is_refused_before_any_work():
    with pytest.raises(UserError, match=r"eval.stages=\[0, 9\]: SmallCNN has stages 0 to 1"):
        compose_settings(["dataset=synthetic", "encoder=small_cnn", "encoder.channels=[8,16]", "eval=layers",
                          "eval.stages=[0,9]"])
