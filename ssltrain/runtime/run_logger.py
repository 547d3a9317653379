"""Rank 0's TensorBoard events (scalars, image grids, figures, the embedding projector and the
hparams entry of a run) and the pictures and tables written beside them in `pictures/`.

Other ranks hold None instead of a RunLogger, so call sites read `if logger:`.
Tags are `train/...` and `eval/...` against the global step. The run opens it (a context
manager) around pretraining and evaluation, and closes it.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any, Sequence

import torch
from torch.utils.tensorboard import SummaryWriter
from torchvision.utils import make_grid, save_image

from ssltrain.augment.pixels import denormalize
from ssltrain.runtime.atomic import atomic_write_bytes, atomic_write_text

PICTURES_DIR = "pictures"  # pictures of the evaluation and the run's last image grids, as PNG


class RunLogger:
    def __init__(self, run_dir: Path, start_step: int = 0):
        """start_step: a resumed run's step; events after it from the interrupted session are dropped."""
        self.writer = SummaryWriter(str(run_dir / "tensorboard"), purge_step=start_step or None)
        self.pictures = run_dir / PICTURES_DIR

    def __enter__(self) -> "RunLogger":
        return self

    def __exit__(self, *exc) -> None:
        self.writer.close()

    def scalars(self, values: dict[str, float], step: int, prefix: str = "train") -> None:
        for name, value in values.items():
            self.writer.add_scalar(f"{prefix}/{name}", value, step)

    def images(self, tag: str, images: torch.Tensor, step: int, nrow: int = 8) -> None:
        """images: [N, 3, H, W] in [0, 1]."""
        self.writer.add_image(tag, make_grid(images.detach().float().cpu(), nrow=nrow, padding=1), step)

    def save_images(self, name: str, images: torch.Tensor, nrow: int = 8) -> None:
        """images [N, 3, H, W] in [0, 1] as one PNG grid, pictures/<name>.png."""
        png = io.BytesIO()
        save_image(images.detach().float().cpu(), png, format="png", nrow=nrow, padding=1)
        atomic_write_bytes(self.pictures / f"{name}.png", png.getvalue())

    def views(self, views: Sequence[torch.Tensor], mean, std, step: int, count: int = 8) -> None:
        """The first `count` images of every view, one row per view (views of other
        sizes are resized to the first's so they share the grid)."""
        size = views[0].shape[-2:]
        rows = [torch.nn.functional.interpolate(denormalize(view[:count].float(), mean, std), size=size)
                for view in views]
        self.images("train/views", torch.cat(rows), step, nrow=min(count, len(views[0])))

    def hparams(self, hparams: dict[str, Any], metrics: dict[str, float]) -> None:
        self.writer.add_hparams(hparams, {f"hparam/{key}": value for key, value in metrics.items()}, run_name="hparams")

    def figure(self, tag: str, figure, name: str) -> Path:
        """A matplotlib figure as pictures/<name>.png and under `tag` in TensorBoard; closes it."""
        self.pictures.mkdir(exist_ok=True)
        path = self.pictures / f"{name}.png"
        figure.savefig(path, dpi=120, bbox_inches="tight")
        self.writer.add_figure(tag, figure)  # closes the figure
        return path

    def table(self, name: str, content: dict[str, Any]) -> Path:
        """pictures/<name>.json: the numbers behind a picture."""
        self.pictures.mkdir(exist_ok=True)
        path = self.pictures / f"{name}.json"
        atomic_write_text(path, json.dumps(content))
        return path

    def embedding(self, features: torch.Tensor, labels: list[str], thumbnails: torch.Tensor, tag: str) -> None:
        """TensorBoard's embedding projector: features [N, D] with their labels and [N, 3, h, w] thumbnails in [0, 1]."""
        self.writer.add_embedding(features.cpu(), metadata=labels, label_img=thumbnails.cpu(), tag=tag)
