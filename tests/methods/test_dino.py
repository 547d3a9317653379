"""DINO: the loss, centring, the teacher temperature and momentum schedules, the teacher."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from kit import MULTI_CROP, run_on_two_ranks, train_step, views_batch
from ssltrain.encoders.small import small_cnn
from ssltrain.encoders.vit import vit_tiny
from ssltrain.errors import UserError
from ssltrain.losses.dino import dino_loss, updated_center
from ssltrain.methods.dino import DINO, DINOHead, teacher_temperature
from ssltrain.parts.momentum import cosine_momentum


def softmax(values: list[float]) -> list[float]:
    exps = [math.exp(v) for v in values]
    return [e / sum(exps) for e in exps]


def test_dino_loss_matches_a_hand_computation():
    generator = torch.Generator().manual_seed(0)
    student = [torch.randn(2, 3, generator=generator) for _ in range(3)]  # 3 crops, B 2, K 3
    teacher = [torch.randn(2, 3, generator=generator) for _ in range(2)]  # the 2 global crops
    center = torch.tensor([0.1, -0.2, 0.3])
    terms = []
    for i in range(2):
        for v in range(3):
            if v == i:
                continue
            for b in range(2):
                target = softmax([(teacher[i][b, k].item() - center[k].item()) / 0.04 for k in range(3)])
                prediction = softmax([student[v][b, k].item() / 0.1 for k in range(3)])
                terms.append(-sum(t * math.log(p) for t, p in zip(target, prediction)))
    expected = sum(terms) / len(terms)
    loss = dino_loss(student, teacher, center, student_temperature=0.1, teacher_temperature=0.04)
    assert loss.item() == pytest.approx(expected, rel=1e-5)


def test_center_update_follows_its_ema_formula():
    center = torch.tensor([1.0, 0.0, -1.0])
    teacher = torch.tensor([[0.0, 2.0, 4.0], [2.0, 4.0, 0.0]])  # batch mean [1, 3, 2]
    new = updated_center(center, teacher, momentum=0.9)
    assert torch.allclose(new, torch.tensor([0.9 * 1 + 0.1 * 1, 0.9 * 0 + 0.1 * 3, 0.9 * -1 + 0.1 * 2]))


def _center_on_my_half(teacher: torch.Tensor) -> torch.Tensor:
    return updated_center(torch.zeros(teacher.shape[1]), teacher, momentum=0.5)


def test_center_uses_the_teacher_mean_over_every_rank():
    teacher = torch.arange(12.0).reshape(4, 3)
    halves = run_on_two_ranks(_center_on_my_half, [teacher[:2], teacher[2:]])
    expected = 0.5 * teacher.mean(dim=0)
    assert torch.allclose(halves[0], expected) and torch.allclose(halves[1], expected)


def test_teacher_temperature_warms_up_linearly_then_stays():
    def at(step: int) -> float:
        return teacher_temperature(step, total_steps=100, start=0.04, end=0.07, warmup_fraction=0.3)

    assert at(0) == pytest.approx(0.04)
    assert at(15) == pytest.approx(0.055)
    assert at(30) == pytest.approx(0.07)
    assert at(80) == pytest.approx(0.07)


def build(**options) -> DINO:
    torch.manual_seed(0)
    settings = dict(out_dim=16, hidden_dim=32, bottleneck_dim=8, freeze_last_layer_fraction=0.0)
    return DINO(small_cnn(channels=(8, 16)), **{**settings, **options})


def test_the_step_uses_the_scheduled_teacher_temperature():
    method = build(warmup_teacher_temperature=0.04, teacher_temperature=0.07, teacher_temperature_warmup_fraction=0.5)
    method.on_step_start(25, 100)
    assert method(views_batch(MULTI_CROP))["teacher_temperature"].item() == pytest.approx(0.055)


def test_training_step_matches_the_teacher_on_global_crops_from_every_other_crop():
    method = build(center_momentum=0.5).eval()  # eval: BatchNorm per sample, so crops can be encoded one by one
    with torch.no_grad():
        method.center.normal_()
    center = method.center.clone()
    method.on_step_start(0, 10)
    batch = views_batch(MULTI_CROP)
    with torch.no_grad():
        student = [method.head(method.encoder(view)) for view in batch.views]
        teacher = [method.teacher_head(method.teacher_encoder(view)) for view in batch.views[:2]]
        expected = dino_loss(student, teacher, center, 0.1, 0.04)
        assert method(batch)["loss"].item() == pytest.approx(expected.item(), rel=1e-5)
    assert torch.allclose(method.center, 0.5 * center + 0.5 * torch.cat(teacher).mean(dim=0), atol=1e-6)


def test_no_gradient_reaches_the_teacher():
    method = build()
    method.on_step_start(0, 10)
    method(views_batch(MULTI_CROP))["loss"].backward()
    teacher = [*method.teacher_encoder.parameters(), *method.teacher_head.parameters()]
    assert all(not p.requires_grad and p.grad is None for p in teacher)
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in method.encoder.parameters())


def test_teacher_follows_the_student_with_the_cosine_momentum():
    method = build(base_momentum=0.9, final_momentum=1.0)
    teacher_before = [p.detach().clone() for p in method.teacher_encoder.parameters()]
    train_step(method, views_batch(MULTI_CROP), step=3, total_steps=10, lr=0.5)
    momentum = cosine_momentum(0.9, 3, 10, final=1.0)
    for old, teacher, student in zip(teacher_before, method.teacher_encoder.parameters(), method.encoder.parameters()):
        assert torch.allclose(teacher, momentum * old + (1 - momentum) * student.detach(), atol=1e-6)
    assert any(not torch.equal(old, new) for old, new in zip(teacher_before, method.teacher_encoder.parameters()))


def test_last_layer_does_not_move_while_frozen_and_moves_once_released():
    method = build(freeze_last_layer_fraction=0.5)
    before = method.head.last_layer.weight.detach().clone()
    train_step(method, views_batch(MULTI_CROP), step=4, total_steps=10, lr=0.5)
    assert torch.equal(method.head.last_layer.weight, before)
    train_step(method, views_batch(MULTI_CROP), step=5, total_steps=10, lr=0.5)
    assert not torch.equal(method.head.last_layer.weight, before)


def test_one_step_with_a_vit_on_global_and_local_crops():
    torch.manual_seed(0)
    method = DINO(vit_tiny(image_size=32, depth=2), out_dim=16, hidden_dim=32, bottleneck_dim=8)
    before = [p.detach().clone() for p in method.encoder.parameters()]
    outputs = train_step(method, views_batch(MULTI_CROP, batch=4), step=0, total_steps=10, lr=0.5)
    assert torch.isfinite(outputs["loss"])
    assert all(not torch.equal(b, p) for b, p in zip(before, method.encoder.parameters()))


def wide_head() -> DINOHead:
    """Wide enough that the init's statistics show in one draw."""
    torch.manual_seed(0)
    return DINOHead(in_dim=256, hidden_dim=512, bottleneck_dim=256, out_dim=64, norm=None)


def test_the_heads_hidden_activations_are_gelu():
    activations = [layer for layer in wide_head().mlp if not isinstance(layer, nn.Linear)]
    assert len(activations) == 2 and all(isinstance(layer, nn.GELU) for layer in activations)


def test_the_heads_mlp_starts_with_weights_of_std_002_and_zero_biases():
    # facebookresearch/dino DINOHead._init_weights: trunc_normal_(std=.02), biases 0; its cut at
    # +-2 absolute leaves the std at 0.02 (nn.Linear's default would give 1 / sqrt(3 * in))
    linears = [layer for layer in wide_head().mlp if isinstance(layer, nn.Linear)]
    assert len(linears) == 3
    for layer in linears:
        assert layer.weight.std().item() == pytest.approx(0.02, rel=0.05)
        assert layer.weight.mean().abs().item() < 0.001
        assert layer.bias is None or torch.equal(layer.bias, torch.zeros_like(layer.bias))


def test_the_last_layer_starts_as_nn_linears_default_with_rows_of_norm_about_one_over_root_3():
    weight = wide_head().last_layer.weight  # [64, 256]
    assert weight.abs().max().item() <= 1 / math.sqrt(256)
    assert weight.norm(dim=1).mean().item() == pytest.approx(1 / math.sqrt(3), rel=0.05)


def test_the_last_layer_scores_with_unit_rows_whatever_their_stored_norm():
    head, features = wide_head(), torch.randn(4, 256)
    before = head(features)
    with torch.no_grad():
        head.last_layer.weight.mul_(torch.rand(64, 1) + 0.5)  # a different norm for every row
    torch.testing.assert_close(head(features), before)


def test_an_unknown_head_norm_is_refused_in_one_line_naming_the_valid_norms():
    with pytest.raises(UserError) as error:
        build(head_norm="foo")
    assert str(error.value) == "method.head_norm='foo' is not valid; choose one of: batch, batch_noaffine, layer"
