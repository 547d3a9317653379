"""The training step every run takes (gradient clipping, accumulation and what it reports), and how the loop stops."""

from __future__ import annotations

import os
import signal
from types import SimpleNamespace

import pytest
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from kit import run_on_two_ranks, views_batch
from ssltrain.data.batch import Batch
from ssltrain.engine import PretrainLoop, TrainStep
from ssltrain.methods.base import SSLMethod
from ssltrain.optim.schedules import OptimizerSchedule
from ssltrain.runtime.checkpoint import Progress
from ssltrain.runtime.signals import Interrupted, StopRequest


class SteepMethod(SSLMethod):
    """A loss whose gradient is `slope` for every weight, whatever the batch."""

    def __init__(self, slope: float):
        super().__init__(nn.Linear(4, 4))
        self.slope = slope

    def training_step(self, batch):
        return {"loss": self.slope * self.encoder.weight.sum()}


def step_with(clip_grad):
    method = SteepMethod(slope=100.0)
    before = method.encoder.weight.detach().clone()
    optimizer = torch.optim.SGD([method.encoder.weight], lr=1.0)
    schedule = OptimizerSchedule(torch.ones(1), torch.zeros(1), base_lr=1.0)
    outputs, _ = TrainStep(method, method, optimizer, schedule, total_steps=1, clip_grad=clip_grad)(views_batch([4]), 0)
    return outputs, (method.encoder.weight.detach() - before).norm().item()


def test_clip_grad_rescales_the_gradients_to_the_given_global_norm():
    outputs, moved = step_with(clip_grad=2.0)
    assert moved == pytest.approx(2.0)  # lr 1 times the clipped norm
    assert outputs["grad_norm"].item() == pytest.approx(100.0 * 4)  # the norm before clipping: 100 * sqrt(16)


def test_without_clip_grad_the_full_gradient_is_applied():
    outputs, moved = step_with(clip_grad=None)
    assert moved == pytest.approx(400.0) and "grad_norm" not in outputs


class MeanSquareMethod(SSLMethod):
    """A loss that is a mean over the images of the batch (no BatchNorm): micro-batches add up to it."""

    def __init__(self):
        super().__init__(nn.Linear(3 * 4 * 4, 5))

    def training_step(self, batch):
        return {"loss": (self.encoder(batch.views[0].flatten(1)) ** 2).mean()}


def gradient_and_outputs(accumulate_steps: int):
    torch.manual_seed(0)
    method = MeanSquareMethod()
    optimizer = torch.optim.SGD(method.parameters(), lr=0.1)
    schedule = OptimizerSchedule(torch.full((1,), 0.1), torch.zeros(1), base_lr=0.1)
    step = TrainStep(method, method, optimizer, schedule, total_steps=1, accumulate_steps=accumulate_steps)
    outputs, _ = step(views_batch([4], batch=8), 0)
    return method.encoder.weight.grad, outputs


def test_accumulated_micro_batches_give_the_gradient_and_loss_of_the_whole_batch():
    whole_gradient, whole = gradient_and_outputs(accumulate_steps=1)
    accumulated_gradient, accumulated = gradient_and_outputs(accumulate_steps=4)
    assert torch.allclose(accumulated_gradient, whole_gradient, atol=1e-6)
    assert torch.allclose(accumulated["loss"], whole["loss"], atol=1e-6)


def _stop_decisions(requested: bool) -> list[bool]:
    """On one of two ranks: whether the loop stops after steps 5, 10 and 20 when only rank 0 got a signal."""
    method = SteepMethod(slope=1.0)
    step = TrainStep(method, method, torch.optim.SGD(method.parameters(), lr=0.1),
                     OptimizerSchedule(torch.ones(1), torch.zeros(1), base_lr=0.1), total_steps=100)
    loop = PretrainLoop(step=step, loader=SimpleNamespace(steps_per_epoch=100), epochs=1, world_size=2)
    loop.stop.requested = requested
    return [loop._stop_agreed(Progress(step=n, step_in_epoch=n), end_of_epoch=False) for n in (5, 10, 20)]


def test_under_torchrun_every_rank_stops_after_the_same_step_when_any_rank_is_signalled():
    assert run_on_two_ranks(_stop_decisions, [True, False]) == [[False, True, True], [False, True, True]]


def test_sigusr2_stops_the_loop_then_reaches_the_launchers_handler_after_the_checkpoint():
    launcher_calls = []
    previous = signal.signal(signal.SIGUSR2, lambda signum, frame: launcher_calls.append(signum))
    try:
        with pytest.raises(Interrupted), StopRequest(announce=False) as stop:
            os.kill(os.getpid(), signal.SIGUSR2)
            assert stop.requested and launcher_calls == []  # the loop saves its checkpoint first
            raise Interrupted("stopped at step 3")
        assert launcher_calls == [signal.SIGUSR2]
    finally:
        signal.signal(signal.SIGUSR2, previous)


def _ddp_accumulated_gradient(half: Batch) -> torch.Tensor:
    """On one of two ranks: the gradient after a step over its half of the batch in two micro-batches under DDP."""
    torch.manual_seed(0)
    method = MeanSquareMethod()
    model = DistributedDataParallel(method)
    schedule = OptimizerSchedule(torch.full((1,), 0.1), torch.zeros(1), base_lr=0.1)
    TrainStep(method, model, torch.optim.SGD(method.parameters(), lr=0.1), schedule, total_steps=1,
              accumulate_steps=2)(half, 0)
    return method.encoder.weight.grad


@pytest.mark.cluster
def test_under_ddp_accumulated_micro_batches_give_the_gradient_of_the_whole_batch_in_one_process():
    whole = views_batch([4], batch=8)
    halves = whole.split(2)
    ranks = run_on_two_ranks(_ddp_accumulated_gradient, halves)
    whole_gradient, _ = gradient_and_outputs(accumulate_steps=1)
    assert all(torch.allclose(gradient, whole_gradient, atol=1e-6) for gradient in ranks)


def test_micro_batches_carry_their_share_of_the_target_batch():
    target = Batch(views=[torch.arange(4.0).view(4, 1, 1, 1)], labels=torch.full((4,), -1))
    batch = Batch(views=[torch.arange(8.0).view(8, 1, 1, 1)], labels=torch.arange(8), target=target)
    first, second = batch.split(2)
    assert first.labels.tolist() == [0, 1, 2, 3] and second.target.views[0].flatten().tolist() == [2.0, 3.0]
    assert batch.split(1) == [batch]
