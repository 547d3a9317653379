"""The pretraining loop. It never asks which method it runs: it calls the SSLMethod hooks.

`TrainStep` is one optimizer step: schedules -> reseed -> method.on_step_start -> forward
under autocast -> backward (once per micro-batch with trainer.accumulate_steps, the loss
divided by their number, DDP's all-reduce only after the last) -> optional gradient
clipping -> optimizer -> method.after_optimizer_step. `PretrainLoop` runs steps over the loader's epochs. Scalars
stay on the device until every `log_every` steps, the only host syncs. A checkpoint is
written every `trainer.checkpoint_every` (steps or wall time, mid-epoch too), at every
epoch's end, and when a stop is requested (SIGINT / SIGTERM), after the step in flight;
it holds the unlogged sums too, so a resumed run logs and counts as if never stopped.
"""

from __future__ import annotations

import logging
import math
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

import torch
from tqdm import tqdm

from ssltrain.data.batch import Batch
from ssltrain.data.pipeline import Loader
from ssltrain.errors import UserError
from ssltrain.methods.base import SSLMethod
from ssltrain.optim.schedules import OptimizerSchedule
from ssltrain.runtime import dist
from ssltrain.runtime.checkpoint import CheckpointInterval, Checkpointer, Progress
from ssltrain.runtime.precision import Precision
from ssltrain.runtime.progress import bar as progress_bar
from ssltrain.runtime.progress import duration
from ssltrain.runtime.run_logger import RunLogger
from ssltrain.runtime.signals import Interrupted, StopRequest

log = logging.getLogger(__name__)


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
    accumulate_steps: int = 1  # micro-batches per optimizer step; must divide the batch

    def __post_init__(self) -> None:
        self.scaler = torch.amp.GradScaler(self.device_type, enabled=self.precision.scaler_enabled)

    def __call__(self, batch: Batch, step: int) -> tuple[dict[str, torch.Tensor], float]:
        """Train on `batch` as global step `step`; returns the method's outputs (detached
        device scalars, plus `grad_norm` when clipping) and the step's learning rate."""
        lr = self.schedule.apply(self.optimizer, step)
        torch.manual_seed(step_seed(self.seed, self.rank, step))
        self.method.on_step_start(step, self.total_steps)
        self.optimizer.zero_grad(set_to_none=True)
        outputs: dict[str, torch.Tensor] = {}
        parts = batch.split(self.accumulate_steps)
        for index, part in enumerate(parts):
            last = index == len(parts) - 1
            with nullcontext() if last else getattr(self.model, "no_sync", nullcontext)():  # DDP: all-reduce once
                with self.precision.autocast(self.device_type):
                    part_outputs = self.model(part)
                self.scaler.scale(part_outputs["loss"] / len(parts)).backward()
            for name, value in part_outputs.items():  # the step's outputs: the mean over its micro-batches
                outputs[name] = outputs.get(name, 0) + value.detach() / len(parts)
        if self.clip_grad is not None:
            self.scaler.unscale_(self.optimizer)  # clip the true gradients, not the fp16-scaled ones
            outputs["grad_norm"] = torch.nn.utils.clip_grad_norm_(self.method.parameters(), self.clip_grad)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.method.after_optimizer_step(step, self.total_steps)
        return outputs, lr


@dataclass
class Scalars:
    """The method's scalars summed on the device over some steps, and the images and time they cover."""

    sums: dict[str, Any] = field(default_factory=dict)
    steps: int = 0
    images: int = 0
    seconds: float = 0.0

    def add(self, outputs: dict[str, torch.Tensor], images: int) -> None:
        for name, value in outputs.items():
            self.sums[name] = self.sums.get(name, 0) + value.float()
        self.steps += 1
        self.images += images

    def means(self) -> dict[str, float]:
        names = list(self.sums)
        means = (torch.stack([self.sums[name] for name in names]) / self.steps).tolist()  # the one sync
        return dict(zip(names, means))

    def state(self) -> dict[str, Any]:
        """Plain numbers, to be saved in a checkpoint."""
        return {"sums": {name: float(value) for name, value in self.sums.items()}, "steps": self.steps,
                "images": self.images, "seconds": self.seconds}

    @classmethod
    def from_state(cls, state: Optional[dict[str, Any]], device: torch.device) -> "Scalars":
        if not state:
            return cls()
        sums = {name: torch.tensor(value, device=device) for name, value in state["sums"].items()}
        return cls(sums, state["steps"], state["images"], state["seconds"])


# Steps this session times before it estimates how long the run takes (the first is not timed).
ESTIMATE_AFTER_STEPS = 5
# Under torchrun, steps between the ranks' agreement on a stop request (one tiny all-reduce):
# each rank gets the signal at its own moment, and all must stop after the same step.
STOP_CHECK_STEPS = 10


@dataclass
class PretrainLoop:
    step: TrainStep
    loader: Loader
    epochs: int
    world_size: int = 1
    log_every: int = 50
    image_every: int = 0
    knn_every: int = 0
    checkpoint_every: CheckpointInterval = field(default_factory=CheckpointInterval)  # besides every epoch's end
    monitor: Optional[Callable[[], dict[str, float]]] = None  # kNN on held-out images
    logger: Optional[RunLogger] = None  # rank 0's; None on the other ranks
    checkpointer: Optional[Checkpointer] = None  # rank 0's
    image_stats: tuple = ((0.5,) * 3, (0.5,) * 3)  # mean, std: to draw the views
    slow_hint: str = ""  # said beside the estimate when the run would take days
    stop: StopRequest = field(default_factory=StopRequest)

    @property
    def method(self) -> SSLMethod:
        return self.step.method

    @property
    def device(self) -> torch.device:
        return next(self.method.parameters()).device

    def run(self, progress: Progress) -> Progress:
        """Train from `progress` to the last epoch; returns the final progress."""
        progress.finished = False  # a finished checkpoint resumed with more epochs trains again
        self._interval = Scalars.from_state(progress.unlogged.get("interval"), self.device)
        self._epoch_scalars = Scalars.from_state(progress.unlogged.get("epoch"), self.device)
        self._session_start_step = progress.step
        self._saved_at = (progress.step, time.monotonic())
        self.stop.announce = self.step.rank == 0
        self._lr = 0.0
        total = self.step.total_steps
        with self.stop, progress_bar(desc="pretraining", total=total, initial=progress.step, unit="step",
                                     enabled=self.logger is not None) as bar:
            while progress.epoch < self.epochs:
                last_batch = self._epoch(progress, bar)
                progress.epoch += 1
                progress.step_in_epoch = 0
                self._end_of_epoch(progress, last_batch)
        progress.finished = True
        self._save(progress)
        return progress

    def _tick(self, progress: Progress) -> None:
        """Count the time since the last tick as training time."""
        now = time.perf_counter()
        elapsed = now - self._clock
        progress.train_seconds += elapsed
        self._interval.seconds += elapsed
        self._epoch_scalars.seconds += elapsed
        self._clock = now

    def _save(self, progress: Progress) -> None:
        if self.checkpointer:
            progress.unlogged = {"interval": self._interval.state(), "epoch": self._epoch_scalars.state()}
            self.checkpointer.save(self.method, self.step.optimizer, self.step.scaler, progress)
            progress.unlogged = {}
        self._saved_at = (progress.step, time.monotonic())

    def _epoch(self, progress: Progress, bar: tqdm) -> Batch:
        self.method.train()
        self._clock = time.perf_counter()
        batch = None
        for batch in self.loader.epoch(progress.epoch, progress.step_in_epoch):
            if progress.step == 0 and self.logger:
                self.logger.views(batch.views, *self.image_stats, step=0)
            outputs, lr = self.step(batch, progress.step)
            progress.step += 1
            progress.step_in_epoch += 1
            progress.images_seen += batch.size * self.world_size
            self._interval.add(outputs, batch.size * self.world_size)
            self._epoch_scalars.add(outputs, batch.size * self.world_size)
            bar.update(1)
            self._estimate(progress)
            if progress.step % self.log_every == 0 or progress.step_in_epoch == self.loader.steps_per_epoch:
                self._tick(progress)
                self._log(lr, progress.step, bar)
            end_of_epoch = progress.step_in_epoch == self.loader.steps_per_epoch  # saved just below
            if self._stop_agreed(progress, end_of_epoch):
                self._stop(progress)
            if not end_of_epoch and self.checkpoint_every.due(progress.step - self._saved_at[0],
                                                              time.monotonic() - self._saved_at[1]):
                self._tick(progress)
                self._save(progress)
                self._clock = time.perf_counter()  # writing the checkpoint is not training time
        if self._stop_agreed(progress, end_of_epoch=True):  # a late request, or the loader cut off (its workers got the signal too)
            self._stop(progress)
        return batch

    def _stop_agreed(self, progress: Progress, end_of_epoch: bool) -> bool:
        if self.world_size == 1:
            return self.stop.requested
        if progress.step % STOP_CHECK_STEPS and not end_of_epoch:
            return False
        return dist.any_rank(self.stop.requested, self.device)

    def _stop(self, progress: Progress) -> None:
        self._tick(progress)
        self._save(progress)
        raise Interrupted(f"stopped at epoch {progress.epoch}, step {progress.step}")

    def _estimate(self, progress: Progress) -> None:
        """Once per session, after a few timed steps: how long the rest of the run takes."""
        done = progress.step - self._session_start_step
        if done == 1:
            self._timed_from = time.perf_counter()
        if done != 1 + ESTIMATE_AFTER_STEPS or self.logger is None:
            return
        if self.step.device_type == "cuda":
            torch.cuda.synchronize()  # the steps were queued, not yet run
        per_step = (time.perf_counter() - self._timed_from) / ESTIMATE_AFTER_STEPS
        left = per_step * (self.step.total_steps - progress.step)
        hint = f"; {self.slow_hint}" if left > 86_400 and self.slow_hint else ""
        log.info("pretraining: about %s to go (%.2f s per step over the first steps)%s", duration(left), per_step, hint)

    def _log(self, lr: float, step: int, bar: tqdm) -> None:
        values = self._interval.means()
        if not math.isfinite(values["loss"]):
            hint = "lower optimizer.lr" + ("" if self.step.precision.dtype is None else " or use trainer.precision=fp32")
            raise UserError(f"the loss became {values['loss']} at step {step}: training diverged; {hint}")
        values.update(lr=lr, images_per_second=self._interval.images / max(self._interval.seconds, 1e-9))
        if self.logger:
            self.logger.scalars(values, step)
        bar.set_postfix({"loss": f"{values['loss']:.4g}", "lr": f"{lr:.4g}",
                         "img/s": f"{values['images_per_second']:.4g}"}, refresh=False)
        self._interval = Scalars()
        self._lr = lr

    def _end_of_epoch(self, progress: Progress, last_batch: Batch) -> None:
        self._save(progress)
        if self.logger and self._epoch_scalars.steps:
            self._log_epoch(progress)
        self._epoch_scalars = Scalars()
        if self.knn_every and progress.epoch % self.knn_every == 0 and self.monitor:
            metrics = self.monitor()
            if self.logger:
                self.logger.scalars(metrics, progress.step, prefix="eval")
            log.info("epoch %d: %s", progress.epoch, ", ".join(f"{k} {v:.4f}" for k, v in metrics.items()))
        final = progress.epoch == self.epochs  # the last grids are also saved as PNG in the run folder
        if self.logger and self.image_every and (progress.epoch % self.image_every == 0 or final):
            self.method.eval()
            with torch.no_grad(), self.step.precision.autocast(self.step.device_type):
                grids = self.method.images(last_batch)
            self.method.train()
            for tag, images in grids.items():
                self.logger.images(f"train/{tag}", images, progress.step)
                if final:
                    self.logger.save_images(tag, images)

    def _log_epoch(self, progress: Progress) -> None:
        scalars = self._epoch_scalars
        values = scalars.means()
        rate = scalars.images / max(scalars.seconds, 1e-9)
        steps_left = self.step.total_steps - progress.step
        left = steps_left * scalars.seconds / scalars.steps
        log.info("epoch %d/%d: loss %.4g, lr %.4g, %.0f images/s, %s%s", progress.epoch, self.epochs, values["loss"],
                 self._lr, rate, duration(scalars.seconds), f"; about {duration(left)} to go" if steps_left else "")
