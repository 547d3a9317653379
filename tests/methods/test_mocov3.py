"""MoCo v3: symmetric InfoNCE of predictions against the other view's momentum keys, with
the batch as negatives; heads by encoder kind; one step on a ViT."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from kit import train_step
from siamese_kit import IMAGE_SIZE, SMALL_HEADS, each_view, naive_info_nce, tiny_cnn, two_views

from ssltrain.encoders.vit import vit_tiny
from ssltrain.errors import UserError
from ssltrain.methods.mocov3 import MoCoV3


def tiny_vit() -> nn.Module:
    torch.manual_seed(0)
    return vit_tiny(image_size=IMAGE_SIZE, depth=2)


def linear_layers(head: nn.Sequential) -> int:
    return sum(isinstance(layer, nn.Linear) for layer in head)


def test_loss_is_2t_times_the_sum_of_both_directions_with_the_batch_as_negatives():
    method, batch = MoCoV3(tiny_cnn(), temperature=0.5, pred_hidden_dim=32, **SMALL_HEADS), two_views(size=4)
    method.train()
    q1, q2 = each_view(lambda x: method.predictor(method.projector(method.encoder(x))), batch)
    k1, k2 = each_view(lambda x: method.momentum_projector(method.momentum_encoder(x)), batch)
    expected = 2 * 0.5 * (naive_info_nce(q1, k2, 0.5) + naive_info_nce(q2, k1, 0.5))
    with torch.no_grad():
        loss = method(batch)["loss"]
    assert math.isclose(loss.item(), expected, rel_tol=1e-4)


def test_heads_follow_the_reference_code_for_each_encoder_kind():
    cnn = MoCoV3(tiny_cnn(), pred_hidden_dim=32, **SMALL_HEADS)
    vit = MoCoV3(tiny_vit(), pred_hidden_dim=32, **SMALL_HEADS)
    assert (linear_layers(cnn.projector), linear_layers(vit.projector)) == (2, 3)
    assert not isinstance(cnn.predictor[-1], nn.BatchNorm1d)
    assert isinstance(vit.predictor[-1], nn.BatchNorm1d) and not vit.predictor[-1].affine
    assert isinstance(cnn.projector[-1], nn.BatchNorm1d) and not cnn.projector[-1].affine


def test_one_step_trains_a_vit_encoder_and_moves_its_momentum_copy():
    method = MoCoV3(tiny_vit(), pred_hidden_dim=32, base_momentum=0.9, **SMALL_HEADS)
    encoder_before = [p.detach().clone() for p in method.encoder.parameters()]
    target_before = [p.detach().clone() for p in method.momentum_encoder.parameters()]
    outputs = train_step(method, two_views())
    assert torch.isfinite(outputs["loss"])
    assert any(not torch.equal(b, p) for b, p in zip(encoder_before, method.encoder.parameters()))
    assert any(not torch.equal(b, p) for b, p in zip(target_before, method.momentum_encoder.parameters()))


def test_freezing_the_patch_embedding_keeps_it_at_its_random_init():
    method = MoCoV3(tiny_vit(), pred_hidden_dim=32, freeze_patch_embedding=True, **SMALL_HEADS)
    before = method.encoder.conv_proj.weight.detach().clone()
    train_step(method, two_views())
    assert torch.equal(method.encoder.conv_proj.weight, before)
    assert method.encoder.conv_proj.weight.grad is None


def test_freezing_the_patch_embedding_of_a_cnn_is_refused_in_one_line_naming_the_vit_encoders():
    with pytest.raises(UserError) as error:
        MoCoV3(tiny_cnn(), freeze_patch_embedding=True, **SMALL_HEADS)
    assert str(error.value) == ("method.freeze_patch_embedding=true needs a ViT encoder; "
                                "use encoder=vit_tiny or vit_small")
