"""Hydra's launcher and sweeper plugins: a missing one, an Optuna search without its
objective and a search space without a sweeper each fail in one line before any work."""

from __future__ import annotations

import pytest

from ssltrain import plugins
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
