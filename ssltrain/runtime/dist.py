"""torch.distributed under torchrun (or an srun step: runtime/slurm.py exports its ranks
under torchrun's names): set-up, rank queries and gathers. Across nodes too: RANK and
WORLD_SIZE name the process group (env://), LOCAL_RANK this node's GPU.

Every helper is the identity in a single process, so methods call them unconditionally.
"""

from __future__ import annotations

import os
from typing import Any

import torch
import torch.distributed as dist


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    return dist.get_rank() if is_distributed() else 0


def world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def is_main_process() -> bool:
    return rank() == 0


def init_from_torchrun(device_type: str) -> torch.device | None:
    """Join the process group torchrun describes (env WORLD_SIZE > 1); return this rank's
    device, or None in a plain single-process run."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return None
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device_type == "cuda":
        torch.cuda.set_device(local_rank)
        dist.init_process_group("nccl")
        return torch.device("cuda", local_rank)
    dist.init_process_group("gloo")
    return torch.device("cpu")


def shutdown() -> None:
    if is_distributed():
        dist.destroy_process_group()


class _GatherWithGrad(torch.autograd.Function):
    """all_gather whose backward sends every rank's gradient for a slice back to its owner.

    The loss of each rank depends on every rank's slice, so a slice's gradient is the sum
    over ranks of the gradient it received (an all-reduce), of which each keeps its own.
    """

    @staticmethod
    def forward(ctx, tensor: torch.Tensor) -> torch.Tensor:
        parts = [torch.empty_like(tensor) for _ in range(dist.get_world_size())]
        dist.all_gather(parts, tensor.contiguous())
        return torch.cat(parts)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.contiguous()
        dist.all_reduce(grad)
        return grad.chunk(dist.get_world_size())[dist.get_rank()]


def gather_with_grad(tensor: torch.Tensor) -> torch.Tensor:
    """[B, ...] on each rank -> [world_size * B, ...], rank order, differentiable."""
    return _GatherWithGrad.apply(tensor) if is_distributed() else tensor


@torch.no_grad()
def gather(tensor: torch.Tensor) -> torch.Tensor:
    """[B, ...] on each rank -> [world_size * B, ...], rank order, no gradient (queues)."""
    if not is_distributed():
        return tensor
    parts = [torch.empty_like(tensor) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, tensor.contiguous())
    return torch.cat(parts)


def all_reduce_mean(tensor: torch.Tensor) -> torch.Tensor:
    if is_distributed():
        tensor = tensor.clone()
        dist.all_reduce(tensor)
        tensor /= dist.get_world_size()
    return tensor


def broadcast_object(obj: Any) -> Any:
    """Rank 0's `obj` on every rank."""
    if not is_distributed():
        return obj
    holder = [obj]
    dist.broadcast_object_list(holder, src=0)
    return holder[0]


def any_rank(flag: bool, device: torch.device) -> bool:
    """True on every rank when `flag` is true on any (a collective: every rank must call it)."""
    if not is_distributed():
        return flag
    value = torch.tensor([float(flag)], device=device)
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return bool(value.item())
