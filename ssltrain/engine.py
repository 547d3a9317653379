"""The pretraining loop. It never asks which method it runs: it calls the SSLMethod hooks.

`TrainStep` is one optimizer step: schedules -> reseed -> method.on_step_start -> forward
under autocast -> backward -> optional gradient clipping -> optimizer ->
method.after_optimizer_step. `PretrainLoop` runs steps over the loader's epochs. Scalars
stay on the device until every `log_every` steps, the only host syncs. A checkpoint is
written every epoch and when a stop is requested (SIGINT / SIGTERM), after the step in
flight, so an interrupted run loses nothing.
"""

from __future__ import annotations

import logging
import math
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Optional, Union

import torch
from tqdm import tqdm

from ssltrain.data.batch import Batch
from ssltrain.data.device_loader import DeviceLoader
from ssltrain.data.loader import PretrainLoader
from ssltrain.errors import UserError
from ssltrain.methods.base import SSLMethod
from ssltrain.optim.schedules import OptimizerSchedule
from ssltrain.runtime.checkpoint import Checkpointer, Progress
from ssltrain.runtime.precision import Precision
from ssltrain.runtime.run_logger import RunLogger

log = logging.getLogger(__name__)


class Interrupted(Exception):
    """Pretraining stopped on request after saving a checkpoint it can resume from."""


class StopRequest:
    """Turns SIGINT / SIGTERM into a request the loop honours between steps.

    A second Ctrl-C while a stop is pending raises KeyboardInterrupt at once.
    """

    def __init__(self) -> None:
        self.requested = False
        self._previous: dict[int, object] = {}

    def _handle(self, signum, frame) -> None:
        if self.requested and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.requested = True
        log.warning("stop requested (%s): finishing this step and saving a checkpoint", signal.Signals(signum).name)

    def __enter__(self) -> "StopRequest":
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, signal.SIGTERM):
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)


def step_seed(seed: int, rank: int, step: int) -> int:
    return (seed * 7_919 + rank) * 1_000_000_007 + step


@dataclass
class TrainStep:
    """One optimizer step, as every run takes it (tests take it through this class too)."""

    method: SSLMethod  # the module whose hooks run and whose state is saved
    model: Callable[[Batch], dict]  # what runs the forward: the method, DDP-wrapped or compiled
    optimizer: torch.optim.Optimizer
    schedule: OptimizerSchedule
    total_steps: int  # of the whole run: the method's per-step schedules read step / total_steps
    device_type: str = "cpu"
    precision: Precision = field(default_factory=lambda: Precision(None))
    seed: int = 0
    rank: int = 0
    clip_grad: Optional[float] = None  # max global L2 norm of the gradients; None: no clipping

    def __post_init__(self) -> None:
        self.scaler = torch.amp.GradScaler(self.device_type, enabled=self.precision.scaler_enabled)

    def __call__(self, batch: Batch, step: int) -> tuple[dict[str, torch.Tensor], float]:
        """Train on `batch` as global step `step`; returns the method's outputs (detached
        device scalars, plus `grad_norm` when clipping) and the step's learning rate."""
        lr = self.schedule.apply(self.optimizer, step)
        torch.manual_seed(step_seed(self.seed, self.rank, step))
        self.method.on_step_start(step, self.total_steps)
        with self.precision.autocast(self.device_type):
            outputs = self.model(batch)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(outputs["loss"]).backward()
        outputs = {name: value.detach() for name, value in outputs.items()}
        if self.clip_grad is not None:
            self.scaler.unscale_(self.optimizer)  # clip the true gradients, not the fp16-scaled ones
            outputs["grad_norm"] = torch.nn.utils.clip_grad_norm_(self.method.parameters(), self.clip_grad)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.method.after_optimizer_step(step, self.total_steps)
        return outputs, lr


@dataclass
class PretrainLoop:
    step: TrainStep
    loader: Union[PretrainLoader, DeviceLoader]
    epochs: int
    world_size: int = 1
    log_every: int = 50
    image_every: int = 0
    knn_every: int = 0
    monitor: Optional[Callable[[], dict[str, float]]] = None  # kNN on held-out images
    logger: Optional[RunLogger] = None  # rank 0's; None on the other ranks
    checkpointer: Optional[Checkpointer] = None  # rank 0's
    image_stats: tuple = ((0.5,) * 3, (0.5,) * 3)  # mean, std: to draw the views
    stop: StopRequest = field(default_factory=StopRequest)

    @property
    def method(self) -> SSLMethod:
        return self.step.method

    def _save(self, progress: Progress) -> None:
        if self.checkpointer:
            self.checkpointer.save(self.method, self.step.optimizer, self.step.scaler, progress)

    def run(self, progress: Progress) -> Progress:
        """Train from `progress` to the last epoch; returns the final progress."""
        progress.finished = False  # a finished checkpoint resumed with more epochs trains again
        bar = tqdm(total=self.step.total_steps, initial=progress.step, unit="step", dynamic_ncols=True,
                   mininterval=0.5 if sys.stderr.isatty() else 30.0, disable=self.logger is None or not self.step.total_steps)
        with self.stop, bar:
            while progress.epoch < self.epochs:
                last_batch = self._epoch(progress, bar)
                progress.epoch += 1
                progress.step_in_epoch = 0
                self._end_of_epoch(progress, last_batch)
        progress.finished = True
        self._save(progress)
        return progress

    def _epoch(self, progress: Progress, bar: tqdm) -> Batch:
        self.method.train()
        sums: dict[str, torch.Tensor] = {}
        steps_since_log, images_since_log = 0, 0
        started = time.perf_counter()
        batch = None
        for batch in self.loader.epoch(progress.epoch, progress.step_in_epoch):
            if progress.step == 0 and self.logger:
                self.logger.views(batch.views, *self.image_stats, step=0)
            outputs, lr = self.step(batch, progress.step)
            progress.step += 1
            progress.step_in_epoch += 1
            for name, value in outputs.items():
                sums[name] = sums.get(name, 0) + value.float()
            steps_since_log += 1
            images_since_log += batch.size
            if progress.step % self.log_every == 0 or progress.step_in_epoch == self.loader.steps_per_epoch:
                elapsed = time.perf_counter() - started
                self._log(sums, steps_since_log, images_since_log, elapsed, lr, progress.step, bar)
                progress.train_seconds += elapsed
                progress.images_seen += images_since_log * self.world_size
                sums, steps_since_log, images_since_log = {}, 0, 0
                started = time.perf_counter()
            if self.stop.requested:
                self._save(progress)
                raise Interrupted(f"stopped at epoch {progress.epoch}, step {progress.step}")
        if self.stop.requested:  # the loader was cut off (its workers got the signal too)
            self._save(progress)
            raise Interrupted(f"stopped at epoch {progress.epoch}, step {progress.step}")
        return batch

    def _log(self, sums: dict, steps: int, images: int, elapsed: float, lr: float, step: int, bar: tqdm) -> None:
        names = list(sums)
        means = (torch.stack([sums[name] for name in names]) / steps).tolist()  # the one sync
        values = dict(zip(names, means))
        if not math.isfinite(values["loss"]):
            raise UserError(f"the loss became {values['loss']} at step {step}: training diverged; "
                            f"lower optimizer.lr or use trainer.precision=fp32")
        values.update(lr=lr, images_per_second=images * self.world_size / max(elapsed, 1e-9))
        if self.logger:
            self.logger.scalars(values, step)
        bar.update(steps)
        bar.set_postfix({"loss": f"{values['loss']:.4g}", "lr": f"{lr:.4g}",
                         "img/s": f"{values['images_per_second']:.4g}"}, refresh=False)

    def _end_of_epoch(self, progress: Progress, last_batch: Batch) -> None:
        self._save(progress)
        if self.knn_every and progress.epoch % self.knn_every == 0 and self.monitor:
            metrics = self.monitor()
            if self.logger:
                self.logger.scalars(metrics, progress.step, prefix="eval")
            log.info("epoch %d: %s", progress.epoch, ", ".join(f"{k} {v:.4f}" for k, v in metrics.items()))
        if self.logger and self.image_every and progress.epoch % self.image_every == 0:
            self.method.eval()
            with torch.no_grad(), self.step.precision.autocast(self.step.device_type):
                grids = self.method.images(last_batch)
            self.method.train()
            for tag, images in grids.items():
                self.logger.images(f"train/{tag}", images, progress.step)
