"""The pretraining loop. It never asks which method it runs: it calls the SSLMethod hooks.

Per step: schedules -> reseed -> forward under autocast -> backward -> optimizer ->
method.after_optimizer_step. Scalars stay on the device until every `log_every` steps,
the only host syncs. A checkpoint is written every epoch and when a stop is requested
(SIGINT / SIGTERM), after the step in flight, so an interrupted run loses nothing.
"""

from __future__ import annotations

import logging
import math
import signal
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Optional

import torch

from ssltrain.runtime.checkpoint import Checkpointer, Progress
from ssltrain.data.batch import Batch
from ssltrain.data.loader import PretrainLoader
from ssltrain.errors import UserError
from ssltrain.methods.base import SSLMethod
from ssltrain.runtime.run_logger import RunLogger
from ssltrain.optim.schedules import OptimizerSchedule

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
class Precision:
    dtype: Optional[torch.dtype]  # autocast dtype; None: fp32

    @property
    def scaler_enabled(self) -> bool:
        return self.dtype is torch.float16


@dataclass
class PretrainLoop:
    method: SSLMethod  # the module whose state is saved
    model: Callable[[Batch], dict]  # what runs the step: the method, DDP-wrapped or compiled
    optimizer: torch.optim.Optimizer
    schedule: OptimizerSchedule
    loader: PretrainLoader
    precision: Precision
    epochs: int
    seed: int
    rank: int = 0
    log_every: int = 50
    image_every: int = 0
    knn_every: int = 0
    monitor: Optional[Callable[[], dict[str, float]]] = None  # kNN on held-out images
    logger: Optional[RunLogger] = None
    checkpointer: Optional[Checkpointer] = None
    stop: StopRequest = field(default_factory=StopRequest)
    image_stats: tuple = ((0.5,) * 3, (0.5,) * 3)  # mean, std: to draw the views

    def __post_init__(self) -> None:
        device_type = self.loader.device.type
        self.scaler = torch.amp.GradScaler(device_type, enabled=self.precision.scaler_enabled)
        self.total_steps = self.epochs * self.loader.steps_per_epoch

    def _autocast(self):
        dtype = self.precision.dtype
        return torch.autocast(self.loader.device.type, dtype=dtype or torch.float32, enabled=dtype is not None)

    def restore(self, state: dict) -> Progress:
        """Continue from a checkpoint written by `_save`."""
        self.method.load_state_dict(state["method"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scaler.load_state_dict(state["scaler"])
        return Progress(**state["progress"])

    def _save(self, progress: Progress) -> None:
        if self.checkpointer:
            self.checkpointer.save(self.method, self.optimizer, self.scaler, progress)

    def run(self, progress: Progress) -> Progress:
        """Train from `progress` to the last epoch; returns the final progress."""
        progress.finished = False  # a finished checkpoint resumed with more epochs trains again
        with self.stop:
            while progress.epoch < self.epochs:
                last_batch = self._epoch(progress)
                progress.epoch += 1
                progress.step_in_epoch = 0
                self._end_of_epoch(progress, last_batch)
        progress.finished = True
        self._save(progress)
        return progress

    def _epoch(self, progress: Progress) -> Batch:
        self.method.train()
        sums: dict[str, torch.Tensor] = {}
        steps_since_log, images_since_log = 0, 0
        started = time.perf_counter()
        batch = None
        for batch in self.loader.epoch(progress.epoch, progress.step_in_epoch):
            if progress.step == 0 and self.logger:
                self.logger.views(batch.views, *self.image_stats, step=0)
            lr = self.schedule.apply(self.optimizer, progress.step)
            torch.manual_seed(step_seed(self.seed, self.rank, progress.step))
            self.method.on_step_start(progress.step, self.total_steps)
            with self._autocast():
                outputs = self.model(batch)
            self.optimizer.zero_grad(set_to_none=True)
            self.scaler.scale(outputs["loss"]).backward()
            self.scaler.step(self.optimizer)
            self.scaler.update()
            self.method.after_optimizer_step(progress.step, self.total_steps)
            progress.step += 1
            progress.step_in_epoch += 1
            for name, value in outputs.items():
                sums[name] = sums.get(name, 0) + value.detach().float()
            steps_since_log += 1
            images_since_log += batch.size
            if progress.step % self.log_every == 0 or progress.step_in_epoch == self.loader.steps_per_epoch:
                elapsed = time.perf_counter() - started
                self._log(sums, steps_since_log, images_since_log, elapsed, lr, progress.step)
                progress.train_seconds += elapsed
                progress.images_seen += images_since_log * self._world()
                sums, steps_since_log, images_since_log = {}, 0, 0
                started = time.perf_counter()
            if self.stop.requested:
                self._save(progress)
                raise Interrupted(f"stopped at epoch {progress.epoch}, step {progress.step}")
        if self.stop.requested:  # the loader was cut off (its workers got the signal too)
            self._save(progress)
            raise Interrupted(f"stopped at epoch {progress.epoch}, step {progress.step}")
        return batch

    def _log(self, sums: dict, steps: int, images: int, elapsed: float, lr: float, step: int) -> None:
        names = list(sums)
        means = (torch.stack([sums[name] for name in names]) / steps).tolist()  # the one sync
        values = dict(zip(names, means))
        if not math.isfinite(values["loss"]):
            raise UserError(f"the loss became {values['loss']} at step {step}: training diverged; "
                            f"lower optimizer.lr or use trainer.precision=fp32")
        values.update(lr=lr, images_per_second=images * self._world() / max(elapsed, 1e-9))
        if self.logger:
            self.logger.scalars(values, step)
            self.logger.progress(steps, {"loss": values["loss"], "lr": lr, "img/s": values["images_per_second"]})

    def _world(self) -> int:
        return self.loader.sampler.world_size

    def _end_of_epoch(self, progress: Progress, last_batch: Batch) -> None:
        self._save(progress)
        if self.knn_every and progress.epoch % self.knn_every == 0 and self.monitor:
            metrics = self.monitor()
            if self.logger:
                self.logger.scalars(metrics, progress.step, prefix="eval")
            log.info("epoch %d: %s", progress.epoch, ", ".join(f"{k} {v:.4f}" for k, v in metrics.items()))
        if self.logger and self.image_every and progress.epoch % self.image_every == 0:
            self.method.eval()
            with torch.no_grad(), self._autocast():
                grids = self.method.images(last_batch)
            self.method.train()
            for tag, images in grids.items():
                self.logger.images(f"train/{tag}", images, progress.step)
