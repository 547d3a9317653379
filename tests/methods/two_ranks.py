"""Run a function on two CPU processes joined by a gloo process group (for DDP checks)."""

from __future__ import annotations

import os
import socket
import tempfile
from typing import Callable

import torch
import torch.distributed as dist
import torch.multiprocessing as mp


def _free_port() -> int:
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
        mp.spawn(_worker, args=(function, inputs, _free_port(), out_dir), nprocs=2)
        return [torch.load(os.path.join(out_dir, f"{rank}.pt")) for rank in range(2)]
