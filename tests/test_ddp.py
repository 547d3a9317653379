"""Two processes on the gloo backend: the CLI under torchrun, and cross-rank gathers."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import torch

from conftest import REPO, smoke
from kit import run_on_two_ranks
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


def _loss_and_gradients(share: tuple[torch.Tensor, torch.Tensor]) -> dict[str, torch.Tensor]:
    """NT-Xent of this rank's share of the batch: its loss and the gradients of its embeddings."""
    mine1, mine2 = (z.clone().requires_grad_() for z in share)
    loss = nt_xent(mine1, mine2, 0.3)
    loss.backward()
    return {"loss": loss.detach(), "g1": mine1.grad, "g2": mine2.grad}


def test_nt_xent_across_two_ranks_has_the_gradients_of_the_whole_batch_in_one_process():
    generator = torch.Generator().manual_seed(0)
    z1, z2 = torch.randn(6, 5, generator=generator), torch.randn(6, 5, generator=generator)
    ranks = run_on_two_ranks(_loss_and_gradients, [(z1[:3], z2[:3]), (z1[3:], z2[3:])])
    whole = _loss_and_gradients((z1, z2))
    # each rank's loss averages its own anchors; DDP averages gradients over ranks
    assert torch.allclose(sum(r["loss"] for r in ranks) / 2, whole["loss"], atol=1e-6)
    assert torch.allclose(torch.cat([r["g1"] for r in ranks]) / 2, whole["g1"], atol=1e-6)
    assert torch.allclose(torch.cat([r["g2"] for r in ranks]) / 2, whole["g2"], atol=1e-6)
