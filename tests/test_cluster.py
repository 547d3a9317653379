"""Cluster-scale runs at toy size (marker `cluster`, the CI's second pytest command): two
torchrun "nodes" on this machine, a sweep through Hydra's submitit launcher, an Optuna search."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from omegaconf import OmegaConf, open_dict

from conftest import REPO, run_cli, smoke
from kit import free_port

pytestmark = pytest.mark.cluster



def tiny(*overrides: str) -> list[str]:
    """smoke() at 64 images, one epoch on the CPU."""
    return smoke("dataset.num_images=64", "trainer.device=cpu", *overrides)


def test_two_nodes_write_one_run_whose_checkpoint_another_node_resumes(tmp_path):
    rendezvous = ["--nnodes=2", "--nproc_per_node=1", "--rdzv_backend=c10d", f"--rdzv_endpoint=127.0.0.1:{free_port()}",
                  "--rdzv_id=two-nodes"]
    nodes = [subprocess.Popen([sys.executable, "-m", "torch.distributed.run", *rendezvous, "-m", "ssltrain",
                               *tiny("trainer.epochs=1")],
                              cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              env={**os.environ, "PYTHONPATH": str(REPO)}) for _ in range(2)]
    logs = [node.communicate(timeout=300)[0] for node in nodes]
    assert [node.returncode for node in nodes] == [0, 0], logs[0][-3000:] + logs[1][-3000:]
    (run,) = [path.parent for path in tmp_path.glob("outputs/*/*/results.json")]  # rank 0 only
    assert (run / "checkpoints" / "last.pt").is_file()

    other_node = tmp_path / "other-node"
    other_node.mkdir()
    resumed = run_cli(tiny("trainer.epochs=2", f"trainer.resume={run}"), cwd=other_node)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resumed at epoch 1" in resumed.stdout
    (results,) = other_node.glob("outputs/*/*/results.json")
    assert json.loads(results.read_text())["epochs"] == 2


def _requeued_job_folder(submission: Path) -> Path:
    """The folder the job pickled in `submission` (submitit's <id>_submitted.pkl) runs in when
    submitit requeues it: its launcher's config loaded again, as the launcher does, later."""
    from hydra.core.singleton import Singleton
    from hydra.core.utils import setup_globals

    with open(submission, "rb") as file:
        delayed = pickle.load(file)
    overrides, job_dir_key, job_num, _, singleton_state = delayed.args
    Singleton.set_state(singleton_state)
    setup_globals()
    config = delayed.function.hydra_context.config_loader.load_sweep_config(delayed.function.config, overrides)
    with open_dict(config.hydra.job):
        config.hydra.job.num = job_num
    return Path(OmegaConf.select(config, job_dir_key)) / OmegaConf.select(config, "hydra.sweep.subdir")


def test_a_submitit_sweep_runs_each_job_in_its_own_folder_where_a_requeue_finds_it(tmp_path):
    result = run_cli(["-m", "hydra/launcher=submitit_local", *tiny("trainer.epochs=1", "trainer.seed=0,1")], cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    folders = sorted(path.parent.name for path in tmp_path.glob("multirun/*/*/*/results.json"))
    assert folders == ["0-simclr-small_cnn-trainer.seed=0", "1-simclr-small_cnn-trainer.seed=1"]
    submission = next(tmp_path.glob("multirun/*/*/.submitit/*/*_submitted.pkl"))
    time.sleep(1)  # a requeue is later: the folder's timestamp must come from the sweep, not the clock
    folder = tmp_path / _requeued_job_folder(submission)
    assert (folder / "results.json").is_file()


def test_an_optuna_search_gets_each_trials_objective_from_results(tmp_path):
    search = ["-m", "hydra/sweeper=optuna", "hydra.sweeper.n_trials=3", "hydra.sweeper.direction=maximize",
              "hydra.sweeper.sampler.seed=0", "optimizer.lr=interval(0.1,2.0)", "method.temperature=interval(0.05,0.5)",
              "trainer.objective=knn_top1"]
    result = run_cli([*search, *tiny("trainer.epochs=1")], cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    trials = [json.loads(path.read_text())["knn_top1"] for path in tmp_path.glob("multirun/*/*/*/results.json")]
    (best,) = [yaml.safe_load(path.read_text()) for path in tmp_path.glob("multirun/*/*/optimization_results.yaml")]
    assert len(trials) == 3 and best["best_value"] == pytest.approx(max(trials))
