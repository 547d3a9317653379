"""SimSiam: symmetric negative cosine with a stop-gradient on the projections, and a
predictor whose learning rate stays fixed."""

from __future__ import annotations

import math

import torch

from siamese_kit import SMALL_HEADS, each_view, tiny_cnn, two_views

from ssltrain.methods.simsiam import SimSiam
from ssltrain.optim.schedules import OptimizerSchedule, warmup_cosine


def build(**options) -> SimSiam:
    return SimSiam(tiny_cnn(), pred_hidden_dim=8, **SMALL_HEADS, **options)


def cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(a @ b) / (a.norm().item() * b.norm().item())


def test_loss_is_half_the_sum_of_minus_the_cosines_of_prediction_and_other_projection():
    method, batch = build(), two_views(size=4)
    method.train()
    z1, z2 = each_view(lambda x: method.projector(method.encoder(x)), batch)
    with torch.no_grad():
        p1, p2 = method.predictor(z1), method.predictor(z2)
    expected = -sum(cosine(p1[i], z2[i]) + cosine(p2[i], z1[i]) for i in range(4)) / 4 / 2
    with torch.no_grad():
        loss = method(batch)["loss"]
    assert math.isclose(loss.item(), expected, rel_tol=1e-4)


def encoder_gradient(method: SimSiam, loss_of_views) -> list[torch.Tensor]:
    method.zero_grad()
    loss_of_views().backward()
    return [p.grad.clone() for p in method.encoder.parameters()]


def reference_loss(method: SimSiam, batch, stop_gradient: bool):
    z1, z2 = (method.projector(method.encoder(view)) for view in batch.views)
    p1, p2 = method.predictor(z1), method.predictor(z2)
    target = (lambda z: z.detach()) if stop_gradient else (lambda z: z)
    return -(torch.cosine_similarity(p1, target(z2)).mean() + torch.cosine_similarity(p2, target(z1)).mean()) / 2


def test_the_encoder_gradient_is_that_of_the_loss_with_stop_gradients_on_the_projections():
    method, batch = build(), two_views(size=4)
    method.train()
    from_method = encoder_gradient(method, lambda: method(batch)["loss"])
    with_stop = encoder_gradient(method, lambda: reference_loss(method, batch, stop_gradient=True))
    without_stop = encoder_gradient(method, lambda: reference_loss(method, batch, stop_gradient=False))
    for got, expected in zip(from_method, with_stop):
        torch.testing.assert_close(got, expected)
    assert any(not torch.allclose(a, b) for a, b in zip(from_method, without_stop))


def test_the_predictor_keeps_the_base_lr_while_the_rest_follows_the_schedule():
    method = build()
    groups = [g for g in method.param_groups() if g["params"]]
    predictor = {id(p) for p in method.predictor.parameters()}
    optimizer = torch.optim.SGD(groups, lr=0.0)
    schedule = OptimizerSchedule(warmup_cosine(0.5, 0.0, 100), warmup_cosine(1e-5, 1e-5, 100), base_lr=0.5)
    schedule.apply(optimizer, 90)
    for group in optimizer.param_groups:
        in_predictor = {id(p) in predictor for p in group["params"]}
        assert len(in_predictor) == 1, "a group mixes predictor and other parameters"
        if in_predictor.pop():
            assert group["lr"] == 0.5
        else:
            assert group["lr"] < 0.05


def test_the_fixed_predictor_lr_can_be_turned_off():
    method = build(fixed_predictor_lr=False)
    assert not any(group.get("fixed_lr") for group in method.param_groups())
