"""Every registered encoder keeps the contract of ssltrain/encoders/base.py."""

import pytest
import torch
import torch.nn.functional as F
import torchvision
from torch import nn

from ssltrain.encoders.base import stage_parameters
from ssltrain.encoders.resnet import use_cifar_stem
from ssltrain.errors import UserError
from ssltrain.parts.pos_embed import sincos_2d_with_class
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


def torchvision_vit_at(encoder, side: int) -> torchvision.models.VisionTransformer:
    """torchvision's own ViT built for `side` px inputs, with the encoder's weights and its
    position grid resized bicubically to side / patch a side (the class token's kept)."""
    patch, dim = encoder.patch_size, encoder.hidden_dim
    reference = torchvision.models.VisionTransformer(image_size=side, patch_size=patch, num_layers=len(encoder.encoder.layers),
                                                     num_heads=encoder.encoder.layers[0].num_heads, hidden_dim=dim,
                                                     mlp_dim=4 * dim)
    reference.heads = nn.Identity()
    state = encoder.state_dict()
    table = state["encoder.pos_embedding"]  # [1, 1 + n * n, D]
    n, m = encoder.image_size // patch, side // patch
    if m != n:
        grid = F.interpolate(table[:, 1:].reshape(1, n, n, dim).permute(0, 3, 1, 2), size=(m, m), mode="bicubic")
        state["encoder.pos_embedding"] = torch.cat([table[:, :1], grid.flatten(2).transpose(1, 2)], dim=1)
    reference.load_state_dict(state, strict=True)
    return reference.eval()


def vit(**options):
    torch.manual_seed(0)
    return ENCODERS.build("vit_tiny", context={"image_size": 32}, depth=1, **options).eval()


@pytest.mark.parametrize("fixed_positions", [False, True])
def test_vit_state_dict_loads_strictly_into_torchvision_vision_transformer(fixed_positions):
    encoder = vit()
    if fixed_positions:
        encoder.use_fixed_sincos_positions()
    reference = torchvision.models.VisionTransformer(image_size=32, patch_size=4, num_layers=1, num_heads=3,
                                                     hidden_dim=192, mlp_dim=768)
    reference.heads = nn.Identity()
    reference.load_state_dict(encoder.state_dict(), strict=True)
    assert torch.equal(reference.encoder.pos_embedding, encoder.encoder.pos_embedding)


@pytest.mark.parametrize("side", [32, 16, 48])
def test_vit_returns_the_class_token_of_torchvision_vit_built_for_the_input_size(side):
    encoder = vit()
    images = torch.randn(2, 3, side, side)
    with torch.no_grad():
        torch.testing.assert_close(encoder(images), torchvision_vit_at(encoder, side)(images), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("side", [32, 16])
def test_vit_mean_pool_returns_the_mean_of_the_final_patch_tokens_at_every_size(side):
    encoder = vit(pool="mean")
    reference = torchvision_vit_at(encoder, side)
    images = torch.randn(2, 3, side, side)
    with torch.no_grad():
        patches = reference._process_input(images)  # [2, N, 192]
        tokens = reference.encoder(torch.cat([reference.class_token.expand(2, -1, -1), patches], dim=1))
        torch.testing.assert_close(encoder(images), tokens[:, 1:].mean(dim=1), atol=1e-5, rtol=1e-5)


def test_vit_encodes_kept_patches_each_at_its_own_position():
    encoder = vit()
    images = torch.randn(2, 3, 32, 32)
    keep = torch.tensor([[5, 0, 63, 17], [40, 41, 2, 9]])  # [B, K], any order
    with torch.no_grad():
        patches = encoder.conv_proj(images).flatten(2).transpose(1, 2)  # [2, 64, 192]
        positions = encoder.encoder.pos_embedding[0]  # [65, 192]
        for b in range(2):
            kept = [patches[b, i] + positions[1 + i] for i in keep[b].tolist()]
            x = torch.stack([encoder.class_token[0, 0] + positions[0], *kept])[None]  # [1, 1 + K, 192]
            expected = encoder.encoder.ln(encoder.encoder.layers(x))[0]
            torch.testing.assert_close(encoder.tokens(images, keep)[b], expected, atol=1e-5, rtol=1e-5)


def test_vit_fixed_sincos_positions_are_mae_s_table_and_take_no_gradient():
    encoder = vit()
    encoder.use_fixed_sincos_positions()
    assert torch.equal(encoder.encoder.pos_embedding[0], sincos_2d_with_class(192, 8))
    assert torch.equal(encoder.encoder.pos_embedding[0, 0], torch.zeros(192)), "the class token's position is zero"
    assert not encoder.encoder.pos_embedding.requires_grad


@pytest.mark.parametrize("side", [18, 2])
def test_vit_input_not_a_multiple_of_the_patch_is_a_one_line_error_naming_valid_sizes(side):
    encoder = vit()
    with pytest.raises(UserError) as error:
        encoder(torch.randn(1, 3, side, side))
    assert "\n" not in str(error.value)
    assert f"use a side that is a multiple of 4 (e.g. {'16 or 20' if side == 18 else '4'})" in str(error.value)


@pytest.mark.parametrize("name", [n for n in ENCODERS.names() if build(n).kind == "cnn"])
def test_cnn_encoders_accept_any_input_size(name):
    encoder = build(name).eval()
    encoder.check_input_size(18)
    with torch.no_grad():
        assert encoder(torch.randn(2, 3, 18, 18)).shape == (2, encoder.out_dim)


def test_vit_unknown_pool_lists_the_valid_ones():
    with pytest.raises(UserError, match="choose one of: cls, mean"):
        ENCODERS.build("vit_tiny", context={"image_size": 32}, depth=1, pool="max")


def _vit_gradients(checkpointing: bool) -> list[torch.Tensor]:
    torch.manual_seed(0)
    encoder = ENCODERS.build("vit_tiny", context={"image_size": 16}, depth=2)
    encoder.checkpointing = checkpointing
    encoder(torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(1))).square().mean().backward()
    return [parameter.grad for parameter in encoder.parameters()]


def test_vit_activation_checkpointing_gives_the_same_gradients():
    for plain, recomputed in zip(_vit_gradients(False), _vit_gradients(True), strict=True):
        assert torch.allclose(plain, recomputed, atol=1e-6)
