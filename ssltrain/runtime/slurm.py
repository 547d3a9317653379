"""The torch.distributed variables of a task that SLURM's srun started (as the
hydra/launcher=submitit_slurm jobs are), read without torch.

torchrun exports RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and MASTER_PORT itself. A job
step of several tasks started by srun has SLURM's names for them instead; `export_ranks`
copies them to torch's before anything reads a rank, so that dist.init_from_torchrun,
the rank-0-only outputs and the run's logging treat both launchers alike.
"""

from __future__ import annotations

import os
import re
from typing import Mapping

# MASTER_PORT from the job id, in a range few services use; a requeued job keeps its id.
PORT_BASE, PORT_SPAN = 20_000, 20_000


def first_host(nodelist: str) -> str:
    """The first host of a SLURM node list: `gpu[003-004,010],cpu1` -> `gpu003`."""
    head = re.match(r"([^,\[]+)(?:\[([^\],-]+))?", nodelist)
    if head is None:
        raise ValueError(f"not a SLURM node list: {nodelist!r}")
    return head.group(1) + (head.group(2) or "")


def torch_variables(environ: Mapping[str, str]) -> dict[str, str]:
    """torch's rank variables for an srun step of more than one task not under torchrun
    (SLURM_PROCID -> RANK, SLURM_STEP_NUM_TASKS -> WORLD_SIZE, SLURM_LOCALID ->
    LOCAL_RANK, the step's first node -> MASTER_ADDR, the job id -> MASTER_PORT; MASTER_ADDR
    and MASTER_PORT already set win); {} otherwise. The step's own task count, not
    SLURM_NTASKS, so a single process in a batch script of several tasks stays single."""
    tasks = int(environ.get("SLURM_STEP_NUM_TASKS", "1"))
    if "WORLD_SIZE" in environ or tasks <= 1:
        return {}
    nodes = environ.get("SLURM_STEP_NODELIST") or environ["SLURM_JOB_NODELIST"]
    return {"RANK": environ["SLURM_PROCID"], "WORLD_SIZE": str(tasks), "LOCAL_RANK": environ["SLURM_LOCALID"],
            "MASTER_ADDR": environ.get("MASTER_ADDR") or first_host(nodes),
            "MASTER_PORT": environ.get("MASTER_PORT") or str(PORT_BASE + int(environ["SLURM_JOB_ID"]) % PORT_SPAN)}


def export_ranks() -> None:
    """Set torch's rank variables in this process's environment from SLURM's, if it is an srun task."""
    os.environ.update(torch_variables(os.environ))
