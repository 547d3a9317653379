"""Every registered encoder keeps the contract of ssltrain/encoders/base.py."""

import pytest
import torch
import torchvision
from torch import nn

from ssltrain.encoders.base import stage_parameters
from ssltrain.encoders.resnet import use_cifar_stem
from ssltrain.errors import UserError
from ssltrain.registry import ENCODERS

SMALL = {"vit_tiny": {"depth": 2}, "vit_small": {"depth": 1}}
SIZE = 16  # small inputs keep the ResNet-50 tests cheap on CPU


def build(name: str, image_size: int = SIZE):
    return ENCODERS.build(name, context={"image_size": image_size}, **SMALL.get(name, {}))


@pytest.mark.parametrize("name", ENCODERS.names())
def test_forward_gives_out_dim_features_per_image(name):
    encoder = build(name).eval()
    with torch.no_grad():
        features = encoder(torch.randn(2, 3, SIZE, SIZE))
    assert features.shape == (2, encoder.out_dim)
    assert encoder.kind in ("cnn", "vit")


@pytest.mark.parametrize("name", ENCODERS.names())
def test_stages_hold_every_parameter_exactly_once(name):
    encoder = build(name)
    staged = [id(p) for stage in encoder.stages() for p in stage_parameters(stage)]
    assert len(staged) == len(set(staged))
    assert set(staged) == {id(p) for p in encoder.parameters()}


@pytest.mark.parametrize("name", [n for n in ENCODERS.names() if build(n).kind == "cnn"])
def test_cnn_feature_map_pools_to_the_features(name):
    encoder = build(name).eval()
    images = torch.randn(2, 3, SIZE, SIZE)
    with torch.no_grad():
        feature_map = encoder.forward_features(images)
        assert feature_map.shape[1] == encoder.feature_channels
        assert torch.allclose(feature_map.mean(dim=(2, 3)), encoder(images), atol=1e-5)


@pytest.mark.parametrize("name", ["resnet18", "resnet50"])
def test_resnet_backbone_loads_strictly_into_torchvision_with_the_same_stem(name):
    encoder = build(name)
    reference = getattr(torchvision.models, name)()
    reference.fc = nn.Identity()
    use_cifar_stem(reference)
    reference.load_state_dict(encoder.state_dict(), strict=True)
    images = torch.randn(2, 3, SIZE, SIZE)
    encoder.eval(), reference.eval()
    with torch.no_grad():
        assert torch.allclose(encoder(images), reference(images), atol=1e-5)


def test_resnet_stem_is_chosen_by_image_size():
    assert build("resnet18", 32).conv1.kernel_size == (3, 3)
    assert build("resnet18", 96).conv1.kernel_size == (7, 7)
    assert ENCODERS.build("resnet18", context={"image_size": 224}, cifar_stem=True).conv1.stride == (1, 1)


def test_vit_patch_size_defaults_to_4_for_small_images_and_16_for_large():
    assert build("vit_tiny", 32).patch_size == 4
    assert ENCODERS.build("vit_tiny", context={"image_size": 224}, depth=1).patch_size == 16
    with pytest.raises(UserError, match="must divide"):
        ENCODERS.build("vit_tiny", context={"image_size": 32}, patch_size=5)


def test_vit_returns_the_class_token_by_default_as_torchvision_does():
    encoder = ENCODERS.build("vit_tiny", context={"image_size": 32}, depth=1).eval()
    images = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(encoder(images), torchvision.models.VisionTransformer.forward(encoder, images), atol=1e-6)


def test_vit_mean_pool_returns_the_mean_of_the_final_patch_tokens():
    encoder = ENCODERS.build("vit_tiny", context={"image_size": 32}, depth=1, pool="mean").eval()
    images = torch.randn(2, 3, 32, 32)
    tokens = encoder._process_input(images)  # [2, 64, 192]
    cls = encoder.class_token.expand(2, -1, -1)
    with torch.no_grad():
        expected = encoder.encoder(torch.cat([cls, tokens], dim=1))[:, 1:].mean(dim=1)
        assert torch.allclose(encoder(images), expected, atol=1e-6)


def test_vit_unknown_pool_lists_the_valid_ones():
    with pytest.raises(UserError, match="choose one of: cls, mean"):
        ENCODERS.build("vit_tiny", context={"image_size": 32}, depth=1, pool="max")
