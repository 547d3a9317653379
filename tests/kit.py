"""What the tests share: a batch of views of given sizes, one training step as the engine
takes it, a function run on two processes joined by a gloo process group, and a small
folder of images.

A plain module, not a conftest.py: a second conftest module would shadow tests/conftest.py
for the test files that `from conftest import ...`.
"""

from __future__ import annotations

import os
import socket
import tempfile
from pathlib import Path
from typing import Callable, Optional, Sequence

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from PIL import Image

from ssltrain.data.batch import Batch
from ssltrain.engine import TrainStep
from ssltrain.methods.base import SSLMethod
from ssltrain.optim.schedules import OptimizerSchedule
from ssltrain.registry import METHODS

MULTI_CROP = (32, 32, 16, 16)  # view sides: two global crops, then two local crops


# The smallest encoder of each kind, for tests that build methods: (registered name, options).
TINY_ENCODERS = {"cnn": ("small_cnn", {"channels": [8, 16]}), "vit": ("vit_tiny", {"depth": 2})}


def tiny_encoder_overrides(kind: str) -> list[str]:
    """TINY_ENCODERS[kind] as command-line overrides."""
    name, options = TINY_ENCODERS[kind]
    return [f"encoder={name}", *(f"encoder.{key}={value}".replace(" ", "") for key, value in options.items())]


def views_batch(sizes: Sequence[int], batch: int = 8, seed: int = 1, classes: int = 4, target: bool = False) -> Batch:
    """Seeded random views, one [batch, 3, side, side] tensor per side in `sizes` (multi-crop:
    e.g. [32, 32, 16, 16]), labelled 0, 1, .., classes - 1, 0, .., of training images 0 .. batch - 1;
    target: with a second such batch (other images, unlabelled) in `target`, for two-domain methods."""
    generator = torch.Generator().manual_seed(seed)
    views = [torch.randn(batch, 3, side, side, generator=generator) for side in sizes]
    second = views_batch(sizes, batch, seed + 1_000, classes) if target else None
    return Batch(views=views, labels=torch.arange(batch) % classes, indices=torch.arange(batch),
                 target=None if second is None else Batch(second.views, torch.full((batch,), -1), indices=second.indices))


def required_overrides(method: str) -> list[str]:
    """What a method needs on the command line besides its name: two-domain methods, a target dataset."""
    return ["target_dataset=synthetic"] if METHODS.get(method).needs_target else []


def train_step(method: SSLMethod, batch: Batch, optimizer: Optional[torch.optim.Optimizer] = None,
               schedule: Optional[OptimizerSchedule] = None, step: int = 0, total_steps: int = 10,
               lr: float = 0.05) -> dict[str, torch.Tensor]:
    """One step through the engine's TrainStep (hooks, forward, backward, update, after-step
    hook); by default plain SGD over the method's parameter groups at a constant `lr`."""
    if optimizer is None:
        optimizer = torch.optim.SGD([group for group in method.param_groups() if group["params"]], lr=lr)
    if schedule is None:
        schedule = OptimizerSchedule(torch.full((total_steps,), lr), torch.zeros(total_steps), base_lr=lr)
    method.train()
    outputs, _ = TrainStep(method, method, optimizer, schedule, total_steps)(batch, step)
    return outputs


def free_port() -> int:
    """A TCP port on the loopback interface that is free now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _worker(rank: int, function: Callable, inputs: list, port: int, out_dir: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=2)
    try:
        torch.save(function(inputs[rank]), os.path.join(out_dir, f"{rank}.pt"))
    finally:
        dist.destroy_process_group()


def run_on_two_ranks(function: Callable, inputs: list) -> list:
    """[function(inputs[0]) on rank 0, function(inputs[1]) on rank 1]; `function` must be
    importable (defined at a module's top level)."""
    with tempfile.TemporaryDirectory() as out_dir:
        mp.spawn(_worker, args=(function, inputs, free_port(), out_dir), nprocs=2)
        return [torch.load(os.path.join(out_dir, f"{rank}.pt")) for rank in range(2)]


def write_image_folder(root: Path, classes: Sequence[str] = ("a", "b"), per_class: int = 5, size: int = 12,
                       corrupt: bool = True) -> None:
    """root/train/<class>/<i>.png, one flat colour per class, and (corrupt) one unreadable file."""
    for index, name in enumerate(classes):
        (root / "train" / name).mkdir(parents=True)
        for i in range(per_class):
            Image.new("RGB", (size, size), (40 + 150 * index, 80, 120)).save(root / "train" / name / f"{i}.png")
    if corrupt:
        (root / "train" / classes[0] / "broken.jpg").write_bytes(b"not an image at all")
