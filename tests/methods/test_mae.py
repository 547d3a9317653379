"""MAE: the encoder sees only the visible patches, the loss only the hidden ones, and the
pretrained weights are those of the encoder's plain forward."""

from __future__ import annotations

import math

import pytest
import torch

from kit import views_batch
from ssltrain.data.batch import Batch
from ssltrain.losses.mae import mae_loss
from ssltrain.pretext.masking import random_token_mask
from ssltrain.methods.mae import MAE
from ssltrain.parts.pos_embed import sincos_2d, sincos_2d_with_class
from ssltrain.registry import ENCODERS

SIZE = 16  # 4 x 4 patches of 4 px


def tiny_mae(mask_ratio: float = 0.75) -> MAE:
    torch.manual_seed(0)
    encoder = ENCODERS.build("vit_tiny", context={"image_size": SIZE}, patch_size=4, depth=2)
    return MAE(encoder, mask_ratio=mask_ratio, decoder_dim=32, decoder_depth=1, decoder_heads=2)


def three_images() -> Batch:
    return views_batch([SIZE], batch=3)


def test_the_encoder_blocks_see_the_class_token_and_the_visible_patches_only():
    method = tiny_mae()
    seen = []
    method.encoder.encoder.layers[0].register_forward_pre_hook(lambda module, args: seen.append(args[0].shape))
    method.training_step(three_images())
    visible = 16 - round(0.75 * 16)
    assert seen == [torch.Size([3, 1 + visible, 192])]


def test_with_nothing_masked_the_masked_forward_is_the_plain_forward_up_to_token_order():
    method = tiny_mae(mask_ratio=0.0).eval()
    x = three_images().views[0]
    final_tokens = []
    method.encoder.encoder.ln.register_forward_hook(lambda module, args, output: final_tokens.append(output))
    with torch.no_grad():
        cls_plain = method.encoder(x)  # [B, D]: the forward evaluation calls
        patches_plain = final_tokens[0][:, 1:]  # [B, N, D]
        mask = random_token_mask(3, 16, 0.0, x.device)
        assert not torch.equal(mask.keep, torch.arange(16).expand(3, -1)), "the test needs a shuffled order"
        masked = method.encoder.tokens(x, mask.keep)  # [B, 1 + N, D] in shuffled order
    unshuffled = masked[:, 1:].gather(1, mask.restore[..., None].expand(-1, -1, masked.shape[2]))
    torch.testing.assert_close(masked[:, 0], cls_plain, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(unshuffled, patches_plain, rtol=1e-5, atol=1e-5)


def test_every_encoder_parameter_but_the_fixed_positions_is_trained_by_the_reconstruction_loss():
    method = tiny_mae()
    method.training_step(three_images())["loss"].backward()
    untrained = [name for name, p in method.encoder.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert untrained == ["encoder.pos_embedding"]


def test_encoder_positions_are_fixed_sine_cosine_left_out_of_the_optimizer():
    method = tiny_mae()
    positions = method.encoder.encoder.pos_embedding
    assert torch.equal(positions[0], sincos_2d_with_class(192, 4))
    assert not positions.requires_grad
    grouped = {id(p) for group in method.param_groups() for p in group["params"]}
    assert id(positions) not in grouped
    assert {id(p) for p in method.parameters() if p.requires_grad} <= grouped


def loss_inputs():
    generator = torch.Generator().manual_seed(2)
    prediction = torch.randn(2, 5, 12, generator=generator)
    target = torch.randn(2, 5, 12, generator=generator)
    masked = torch.tensor([[1.0, 0, 1, 0, 0], [0, 1, 1, 1, 0]])
    return prediction, target, masked


@pytest.mark.parametrize("norm_pix", [True, False])
@pytest.mark.parametrize("changed", ["prediction", "target"])
def test_the_loss_ignores_visible_patches_and_reads_hidden_ones(norm_pix, changed):
    prediction, target, masked = loss_inputs()
    before = mae_loss(prediction, target, masked, norm_pix)
    tensors = {"prediction": prediction, "target": target}
    visible = {k: v.clone() for k, v in tensors.items()}
    visible[changed][0, 1] += torch.linspace(-3, 3, 12)  # sample 0, patch 1 is visible
    hidden = {k: v.clone() for k, v in tensors.items()}
    hidden[changed][0, 2] += torch.linspace(-3, 3, 12)  # sample 0, patch 2 is hidden
    assert torch.equal(mae_loss(visible["prediction"], visible["target"], masked, norm_pix), before)
    assert not torch.isclose(mae_loss(hidden["prediction"], hidden["target"], masked, norm_pix), before)


@pytest.mark.parametrize("norm_pix", [True, False])
def test_the_loss_matches_a_hand_computation(norm_pix):
    prediction, target, masked = loss_inputs()
    total, count = 0.0, 0
    for b in range(2):
        for n in range(5):
            if masked[b, n] == 0:
                continue
            values = target[b, n].tolist()
            if norm_pix:
                mean = sum(values) / len(values)
                variance = sum((v - mean) ** 2 for v in values) / (len(values) - 1)
                values = [(v - mean) / math.sqrt(variance + 1e-6) for v in values]
            total += sum((p - t) ** 2 for p, t in zip(prediction[b, n].tolist(), values)) / len(values)
            count += 1
    assert mae_loss(prediction, target, masked, norm_pix).item() == pytest.approx(total / count, rel=1e-5)


def test_decoder_positions_are_sine_cosine_of_row_and_column():
    table = sincos_2d(8, 3)  # [9, 8]: channels 0-3 the row, 4-7 the column
    for index in range(9):
        row, col = divmod(index, 3)
        for half, coord in ((0, row), (4, col)):
            expected = [math.sin(coord), math.sin(coord / 100), math.cos(coord), math.cos(coord / 100)]
            assert table[index, half:half + 4].tolist() == pytest.approx(expected, abs=1e-6)


def test_reconstructions_paste_the_visible_patches_back_unchanged():
    method = tiny_mae().eval()
    torch.manual_seed(3)
    with torch.no_grad():
        grids = method.images(three_images())
    shown = grids["masked_inputs"] != 0.5  # visible pixels (hidden ones are drawn grey)
    assert shown.float().mean().item() == pytest.approx(0.25, abs=0.02)
    assert torch.allclose(grids["reconstructions"][shown], grids["inputs"][shown], atol=1e-6)
