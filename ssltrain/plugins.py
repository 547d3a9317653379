"""Hydra's launcher and sweeper plugins that ssltrain ships configured, and the extra that
installs each, checked before any work (Hydra's own error would be a long trace).

- `hydra/launcher=submitit_slurm` / `submitit_local`, or ssltrain's presets in
  configs/hydra/launcher/ (which extend them): hydra-submitit-launcher, extra `slurm`
- `hydra/sweeper=optuna`: hydra-optuna-sweeper, extra `search`; the search needs the
  metric it optimises (trainer.objective), and an `interval(...)` search space needs it
"""

from __future__ import annotations

import importlib.util

from hydra.core.override_parser.types import IntervalSweep, Override

from ssltrain.errors import UserError
from ssltrain.groups import group_choices

SUBMITIT, OPTUNA = "hydra_plugins.hydra_submitit_launcher", "hydra_plugins.hydra_optuna_sweeper"


def _needs(group: str, choice: str) -> tuple[str, str] | None:
    """(plugin module, extra) that a Hydra group choice needs, or None for Hydra's own."""
    if group == "hydra/launcher" and (choice.startswith("submitit_") or choice in group_choices("hydra/launcher")):
        return SUBMITIT, "slurm"
    if group == "hydra/sweeper" and choice == "optuna":
        return OPTUNA, "search"
    return None


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:  # its parent namespace package (hydra_plugins) is missing
        return False


def check_plugins(overrides: list[Override]) -> None:
    """Every launcher and sweeper the overrides choose is installed (one line naming the
    extra if not); an Optuna search names its objective; interval sweeps have a sweeper."""
    choices = {override.key_or_group: str(override.value()) for override in overrides
               if override.key_or_group in ("hydra/launcher", "hydra/sweeper")}
    for group, choice in choices.items():
        needed = _needs(group, choice)
        if needed and not _installed(needed[0]):
            package = needed[0].split(".")[-1].replace("_", "-")
            raise UserError(f"{group}={choice} needs {package}; install it with pip install 'ssltrain[{needed[1]}]'")
    optuna = choices.get("hydra/sweeper") == "optuna"
    keys = {override.key_or_group for override in overrides}
    if optuna and "trainer.objective" not in keys:
        raise UserError("hydra/sweeper=optuna needs the metric to optimise from results.json: add "
                        "trainer.objective=METRIC, e.g. trainer.objective=knn_top1")
    for override in overrides:
        if isinstance(override.value(), IntervalSweep) and not optuna:
            raise UserError(f"{override.input_line} is a search space: add hydra/sweeper=optuna (and -m)")

