"""Two processes on the gloo backend: the CLI under torchrun, and cross-rank gathers."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from conftest import REPO, smoke
from ssltrain.losses.nt_xent import nt_xent


def test_torchrun_with_two_cpu_processes_trains_and_writes_one_set_of_outputs(tmp_path):
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "ssltrain",
               *smoke("trainer.epochs=2", "trainer.device=cpu")]
    result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=600,
                            env={**os.environ, "PYTHONPATH": str(REPO)})
    assert result.returncode == 0, result.stderr[-3000:]
    runs = list(tmp_path.glob("outputs/**/results.json"))
    assert len(runs) == 1, "rank 1 must not write outputs"
    results = json.loads(runs[0].read_text())
    assert results["epochs"] == 2 and "knn_top1" in results
    assert sorted(p.name for p in tmp_path.iterdir()) == ["outputs"]


def _rank_gradients(rank: int, world: int, store: str, z1: torch.Tensor, z2: torch.Tensor, out: str) -> None:
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=world)
    share = len(z1) // world
    mine1 = z1[rank * share : (rank + 1) * share].clone().requires_grad_()
    mine2 = z2[rank * share : (rank + 1) * share].clone().requires_grad_()
    loss = nt_xent(mine1, mine2, 0.3)
    loss.backward()
    torch.save({"loss": loss.detach(), "g1": mine1.grad, "g2": mine2.grad}, f"{out}.{rank}")
    dist.destroy_process_group()


def test_nt_xent_across_two_ranks_has_the_gradients_of_the_whole_batch_in_one_process(tmp_path):
    generator = torch.Generator().manual_seed(0)
    z1, z2 = torch.randn(6, 5, generator=generator), torch.randn(6, 5, generator=generator)
    out = str(tmp_path / "grads")
    mp.spawn(_rank_gradients, args=(2, str(tmp_path / "store"), z1, z2, out), nprocs=2, join=True)
    ranks = [torch.load(f"{out}.{rank}", weights_only=True) for rank in range(2)]

    whole1, whole2 = z1.clone().requires_grad_(), z2.clone().requires_grad_()
    loss = nt_xent(whole1, whole2, 0.3)
    loss.backward()
    # each rank's loss averages its own anchors; DDP averages gradients over ranks
    assert torch.allclose(sum(r["loss"] for r in ranks) / 2, loss.detach(), atol=1e-6)
    assert torch.allclose(torch.cat([r["g1"] for r in ranks]) / 2, whole1.grad, atol=1e-6)
    assert torch.allclose(torch.cat([r["g2"] for r in ranks]) / 2, whole2.grad, atol=1e-6)
