"""Rank-0 side effects of logging: TensorBoard events and the progress bar.

Other ranks hold None instead of a RunLogger, so call sites read `if logger:`.
Tags are `train/...` and `eval/...` against the global step.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Sequence

import torch
from torch.utils.tensorboard import SummaryWriter
from torchvision.utils import make_grid
from tqdm import tqdm

from ssltrain.augment.per_sample import denormalize


class RunLogger:
    def __init__(self, run_dir: Path, total_steps: int, start_step: int):
        self.writer = SummaryWriter(str(run_dir / "tensorboard"), purge_step=start_step or None)
        interactive = sys.stderr.isatty()
        self.bar = tqdm(total=total_steps, initial=start_step, unit="step", dynamic_ncols=True,
                        mininterval=0.5 if interactive else 30.0, disable=total_steps == 0)

    def scalars(self, values: dict[str, float], step: int, prefix: str = "train") -> None:
        for name, value in values.items():
            self.writer.add_scalar(f"{prefix}/{name}", value, step)

    def progress(self, steps: int, shown: dict[str, float]) -> None:
        self.bar.update(steps)
        self.bar.set_postfix({key: f"{value:.4g}" for key, value in shown.items()}, refresh=False)

    def images(self, tag: str, images: torch.Tensor, step: int, nrow: int = 8) -> None:
        """images: [N, 3, H, W] in [0, 1]."""
        self.writer.add_image(tag, make_grid(images.detach().float().cpu(), nrow=nrow, padding=1), step)

    def views(self, views: Sequence[torch.Tensor], mean, std, step: int, count: int = 8) -> None:
        """The first `count` images of every view, one row per view (views of other
        sizes are resized to the first's so they share the grid)."""
        size = views[0].shape[-2:]
        rows = [torch.nn.functional.interpolate(denormalize(view[:count].float(), mean, std), size=size)
                for view in views]
        self.images("train/views", torch.cat(rows), step, nrow=min(count, len(views[0])))

    def hparams(self, hparams: dict[str, Any], metrics: dict[str, float]) -> None:
        self.writer.add_hparams(hparams, {f"hparam/{key}": value for key, value in metrics.items()}, run_name="hparams")

    def close(self) -> None:
        self.bar.close()
        self.writer.close()
