"""Optimizers, parameter groups and per-iteration schedules."""

import math

import pytest
import torch
from torch import nn

from ssltrain.optim.lars import LARS
from ssltrain.optim.param_groups import default_param_groups
from ssltrain.registry import OPTIMIZERS
from ssltrain.optim.schedules import DECAYS, OptimizerSchedule, capped_warmup, warmup_cosine, warmup_decay


def test_warmup_is_linear_then_cosine_ends_at_the_final_value():
    values = warmup_cosine(1.0, 0.1, total_steps=110, warmup_steps=10, warmup_start=0.0)
    assert len(values) == 110
    assert values[0] == 0.0 and values[5] == pytest.approx(0.5) and values[10] == pytest.approx(1.0)
    assert values[60] == pytest.approx(0.1 + 0.45 * (1 + math.cos(math.pi * 50 / 100)))
    assert values[-1] == pytest.approx(0.1, abs=1e-3)
    assert all(a >= b for a, b in zip(values[10:], values[11:])), "cosine part never rises"


def test_dann_lr_anneals_as_mu0_over_1_plus_10p_to_the_075():
    values = warmup_decay("inverse_decay", 0.01, 0.0, total_steps=100)
    assert values[0] == 0.01
    assert values[10] == pytest.approx(0.01 / 2 ** 0.75)  # p = 0.1
    assert values[50] == pytest.approx(0.01 / 6 ** 0.75)  # p = 0.5


def test_cyclegan_lr_is_constant_for_the_first_half_then_falls_linearly_to_the_final_value():
    values = warmup_decay("linear_decay", 1.0, 0.0, total_steps=10, decay_start=0.5)
    assert values.tolist() == pytest.approx([1.0] * 6 + [0.8, 0.6, 0.4, 0.2])


def test_the_config_accepts_exactly_the_lr_schedules_there_are():
    from ssltrain.compose import compose_settings
    from ssltrain.errors import UserError

    for name in DECAYS:
        assert compose_settings([f"optimizer.lr_schedule={name}"]).optimizer.lr_schedule == name
    with pytest.raises(UserError, match=f"optimizer.lr_schedule='step' is not valid; choose one of: {', '.join(DECAYS)}$"):
        compose_settings(["optimizer.lr_schedule=step"])


def test_biases_and_norm_parameters_get_no_weight_decay_and_no_lars_adaptation():
    model = nn.Sequential(nn.Linear(4, 4), nn.BatchNorm1d(4))
    decay, no_decay = default_param_groups(model)
    assert [p.shape for p in decay["params"]] == [torch.Size([4, 4])]
    assert len(no_decay["params"]) == 3 and no_decay["no_weight_decay"] and no_decay["lars_exclude"]


def test_frozen_parameters_stay_out_of_the_optimizer():
    model = nn.Linear(2, 2)
    model.bias.requires_grad_(False)
    groups = default_param_groups(model)
    assert sum(len(g["params"]) for g in groups) == 1


def test_schedule_sets_lr_and_weight_decay_per_group_flags():
    params = [nn.Parameter(torch.ones(2, 2)) for _ in range(3)]
    optimizer = torch.optim.SGD([{"params": [params[0]]}, {"params": [params[1]], "no_weight_decay": True},
                                 {"params": [params[2]], "fixed_lr": True}], lr=0.0)
    schedule = OptimizerSchedule(torch.tensor([0.1, 0.2]), torch.tensor([1e-4, 2e-4]), base_lr=0.3)
    assert schedule.apply(optimizer, 1) == pytest.approx(0.2)
    first, second, third = optimizer.param_groups
    assert (first["lr"], first["weight_decay"]) == (pytest.approx(0.2), pytest.approx(2e-4))
    assert (second["lr"], second["weight_decay"]) == (pytest.approx(0.2), 0.0)
    assert third["lr"] == pytest.approx(0.3)


def test_biases_and_norms_run_at_bias_lr_scale_and_weights_at_the_scheduled_rate():
    model = nn.Sequential(nn.Linear(3, 3), nn.BatchNorm1d(3))
    optimizer = torch.optim.SGD(default_param_groups(model), lr=0.0)
    OptimizerSchedule(torch.tensor([0.2]), torch.tensor([1e-4]), base_lr=0.2, bias_lr_scale=0.1).apply(optimizer, 0)
    weights, biases_and_norms = optimizer.param_groups
    assert weights["lr"] == pytest.approx(0.2) and biases_and_norms["lr"] == pytest.approx(0.02)


@pytest.mark.parametrize("recipe,epochs,expected", [(10, 1000, 10), (10, 15, 1.5), (0, 15, 0), (1, 100, 1)])
def test_a_short_run_warms_up_for_at_most_a_tenth_of_its_epochs(recipe, epochs, expected):
    assert capped_warmup(recipe, 0.1, epochs) == pytest.approx(expected)


def test_lars_step_scales_the_update_by_the_trust_ratio():
    weight = nn.Parameter(torch.tensor([[3.0, 4.0]]))  # norm 5
    weight.grad = torch.tensor([[0.6, 0.8]])  # norm 1
    optimizer = LARS([weight], lr=0.1, momentum=0.9, weight_decay=0.5, trust_coefficient=0.02, clip=False)
    optimizer.step()
    ratio = 0.02 * 5 / (1 + 0.5 * 5)
    update = (torch.tensor([[0.6, 0.8]]) + 0.5 * torch.tensor([[3.0, 4.0]])) * ratio
    assert torch.allclose(weight.detach(), torch.tensor([[3.0, 4.0]]) - 0.1 * update)


def test_lars_clip_never_raises_the_scheduled_rate_and_excluded_groups_take_sgd_steps():
    weight = nn.Parameter(torch.tensor([[3.0, 4.0]]))
    weight.grad = torch.tensor([[1e-6, 0.0]])  # tiny gradient: huge trust ratio
    bias = nn.Parameter(torch.tensor([1.0]))
    bias.grad = torch.tensor([1.0])
    optimizer = LARS([{"params": [weight]}, {"params": [bias], "lars_exclude": True}], lr=0.1, clip=True)
    optimizer.step()
    assert torch.allclose(weight.detach(), torch.tensor([[3.0 - 0.1 * 1e-6, 4.0]]))
    assert torch.allclose(bias.detach(), torch.tensor([0.9]))


@pytest.mark.parametrize("name", OPTIMIZERS.names())
def test_every_optimizer_takes_a_step_on_default_groups(name):
    model = nn.Sequential(nn.Linear(3, 3), nn.BatchNorm1d(3))
    optimizer = OPTIMIZERS.build(name, context={"params": default_param_groups(model)})
    for group in optimizer.param_groups:
        group["lr"], group["weight_decay"] = 0.1, 0.0
    before = model[0].weight.detach().clone()
    model(torch.randn(4, 3)).pow(2).sum().backward()
    optimizer.step()
    assert not torch.equal(before, model[0].weight)
