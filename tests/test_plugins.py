"""Hydra's launcher and sweeper plugins: a missing one, an Optuna search without its
objective and a search space without a sweeper each fail in one line before any work; the
SLURM preset becomes the sbatch options it promises; the objective a search gets, and a
misspelt one caught before any work."""

from __future__ import annotations

import os

import pytest

from conftest import smoke
from ssltrain import compose, plugins
from ssltrain.compose import compose_settings
from ssltrain.errors import UserError
from ssltrain.groups import parse_overrides


def check(*args: str) -> None:
    plugins.check_plugins(parse_overrides(list(args), with_hydra=True))


@pytest.mark.parametrize("choice,extra", [("hydra/launcher=submitit_slurm", "slurm"),
                                          ("hydra/launcher=ssltrain_slurm", "slurm"),
                                          ("hydra/sweeper=optuna", "search")])
def test_a_plugin_that_is_not_installed_names_its_extra(monkeypatch, choice, extra):
    monkeypatch.setattr(plugins, "_installed", lambda module: False)
    with pytest.raises(UserError, match=rf"^{choice} needs hydra-\w+-\w+; install it with pip install "
                                        rf"'ssltrain\[{extra}\]'$"):
        check(choice, "trainer.objective=knn_top1")


def test_hydras_own_launcher_needs_no_extra(monkeypatch):
    monkeypatch.setattr(plugins, "_installed", lambda module: False)
    check("hydra/launcher=basic")


def test_an_optuna_search_without_trainer_objective_says_to_name_it(monkeypatch):
    monkeypatch.setattr(plugins, "_installed", lambda module: True)
    with pytest.raises(UserError, match="^hydra/sweeper=optuna needs the metric to optimise .* trainer.objective=knn_top1$"):
        check("hydra/sweeper=optuna", "optimizer.lr=interval(0.1,2.0)")


def test_a_search_space_without_the_optuna_sweeper_says_to_add_it():
    with pytest.raises(UserError, match=r"^optimizer.lr=interval\(0.1,2.0\) is a search space: add hydra/sweeper=optuna"):
        check("optimizer.lr=interval(0.1,2.0)")


class Submitted(Exception):
    """Raised instead of calling sbatch."""


def test_the_slurm_preset_submits_one_task_per_gpu_warned_by_usr2_before_its_time_limit(tmp_path, monkeypatch):
    from hydra.utils import instantiate
    from submitit.slurm.slurm import SlurmExecutor

    (tmp_path / "srun").write_text("#!/bin/sh\nexit 1\n")  # submitit looks for srun before it builds a job
    (tmp_path / "srun").chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.chdir(tmp_path)
    scripts = []

    def sbatch(executor, command):
        scripts.append(executor._make_submission_file_text(command, "uid"))
        raise Submitted

    monkeypatch.setattr(SlurmExecutor, "_submit_command", sbatch)
    config = compose.compose_config(["hydra/launcher=ssltrain_slurm", "hydra.launcher.partition=gpu",
                                     "hydra.launcher.nodes=2", "hydra.launcher.gpus_per_node=4"], with_hydra=True)
    launcher = instantiate(config.hydra.launcher)
    launcher.config = config
    with pytest.raises(Submitted):
        launcher.launch([["trainer.seed=0"], ["trainer.seed=1"]], initial_job_idx=0)
    options = {line.split()[1] for line in scripts[0].splitlines() if line.startswith("#SBATCH")}
    assert {"--array=0-1%2", "--partition=gpu", "--nodes=2", "--gpus-per-node=4", "--ntasks-per-node=4",
            "--signal=USR2@120", "--time=1440"} <= options


def test_the_objective_is_the_named_number_of_the_results_and_none_without_a_name():
    from ssltrain.objective import objective

    results = {"method": "byol", "epochs": 1, "knn_top1": 0.25}
    assert objective(results, "knn_top1") == 0.25 and objective(results, None) is None
    with pytest.raises(UserError, match="^trainer.objective=linear_top1 is not a number of this run's results.json; "
                                        "choose one of: epochs, knn_top1$"):
        objective(results, "linear_top1")


def test_a_misspelt_objective_fails_before_any_work_listing_the_numbers_the_evaluators_write():
    with pytest.raises(UserError, match=r"^trainer.objective=knn_top2 is not a number that this run \(eval=knn\) writes to "
                                        r"results.json; choose one of: epochs, .*, knn_top1, knn_top5$"):
        compose_settings(smoke("trainer.objective=knn_top2"))
