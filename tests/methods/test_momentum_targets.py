"""The momentum (EMA) target networks of MoCo v2, MoCo v3 and BYOL: they follow the online
networks with the scheduled momentum and never receive a gradient."""

from __future__ import annotations

import pytest
import torch

from kit import train_step
from siamese_kit import SMALL_HEADS, tiny_cnn, two_views

from ssltrain.methods.byol import BYOL
from ssltrain.methods.moco import MoCo
from ssltrain.methods.mocov3 import MoCoV3

BUILDERS = {
    "moco": lambda: MoCo(tiny_cnn(), queue_size=64, base_momentum=0.9, final_momentum=0.999, **SMALL_HEADS),
    "mocov3": lambda: MoCoV3(tiny_cnn(), pred_hidden_dim=32, base_momentum=0.9, **SMALL_HEADS),
    "byol": lambda: BYOL(tiny_cnn(), pred_hidden_dim=32, base_momentum=0.9, **SMALL_HEADS),
}
FINAL = {"moco": 0.999, "mocov3": 1.0, "byol": 1.0}


def online_and_target(method):
    online = [*method.encoder.parameters(), *method.projector.parameters()]
    target = [*method.momentum_encoder.parameters(), *method.momentum_projector.parameters()]
    return online, target


@pytest.mark.parametrize("name", BUILDERS)
def test_the_target_starts_as_a_copy_of_the_online_network(name):
    online, target = online_and_target(BUILDERS[name]())
    assert all(torch.equal(o, t) for o, t in zip(online, target))


@pytest.mark.parametrize("name", BUILDERS)
def test_after_the_first_step_target_is_base_momentum_times_target_plus_the_rest_online(name):
    method = BUILDERS[name]()
    _, target_before = online_and_target(method)
    target_before = [t.detach().clone() for t in target_before]
    train_step(method, two_views(), step=0, total_steps=10)
    online, target = online_and_target(method)
    assert not all(torch.equal(o, t) for o, t in zip(online, target)), "the online network did not move"
    for before, o, t in zip(target_before, online, target):
        torch.testing.assert_close(t, 0.9 * before + 0.1 * o)


@pytest.mark.parametrize("name", BUILDERS)
def test_momentum_rises_along_a_cosine_from_base_to_final(name):
    method = BUILDERS[name]()
    values = [method.momentum(step, 100) for step in range(101)]
    assert values[0] == pytest.approx(0.9)
    assert values[50] == pytest.approx((0.9 + FINAL[name]) / 2)
    assert values[100] == pytest.approx(FINAL[name])
    assert all(a <= b for a, b in zip(values, values[1:]))


@pytest.mark.parametrize("name", ["mocov3", "byol"])
def test_at_the_end_of_training_the_target_stops_moving(name):
    method = BUILDERS[name]()
    train_step(method, two_views(), step=0, total_steps=10)
    _, target_before = online_and_target(method)
    target_before = [t.detach().clone() for t in target_before]
    train_step(method, two_views(seed=2), step=10, total_steps=10)
    _, target = online_and_target(method)
    assert all(torch.equal(b, t) for b, t in zip(target_before, target))


@pytest.mark.parametrize("name", BUILDERS)
def test_no_gradient_flows_into_the_target_branch(name):
    method = BUILDERS[name]()
    _, target = online_and_target(method)
    for param in target:
        param.requires_grad_(True)  # even if it asked for one, the target branch builds no graph
    method.train()
    method(two_views())["loss"].backward()
    assert all(param.grad is None for param in target)
    assert any(param.grad is not None and param.grad.abs().sum() > 0 for param in method.encoder.parameters())


@pytest.mark.parametrize("name", BUILDERS)
def test_the_target_network_is_left_out_of_the_optimizer(name):
    method = BUILDERS[name]()
    optimized = {id(p) for group in method.param_groups() for p in group["params"]}
    _, target = online_and_target(method)
    assert not any(id(p) in optimized for p in target)
