"""The `ssltrain` command: checks the command line, then Hydra composes configs/ and run.py
does the work.

What needs no torch is answered before torch is imported (under a second): --help,
--version, a Hydra launcher or sweeper plugin asked for but not installed (plugins.py), a
mistyped group choice, and (from the schema cache that every command with torch loaded
leaves) a mistyped key. Then compose.preflight checks every override (each value of a
sweep too), the output folder is checked, and Hydra starts the job. Under SLURM's srun
each task first takes its rank from SLURM (runtime/slurm.py). Every ordinary failure ends in one line on the terminal; an unexpected one too, with
its traceback in the run's log file. Under torchrun only rank 0 speaks.
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile
from pathlib import Path
from typing import Optional

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from ssltrain import __version__, run_names, schema_cache
from ssltrain.errors import Stopped, UserError
from ssltrain.groups import (CONFIG_DIR, GROUPS, check_group_choices, check_keys, expand_shorthands, group_choices,
                             parse_overrides)
from ssltrain.plugins import check_plugins
from ssltrain.runtime import slurm

log = logging.getLogger("ssltrain")

EXIT_USER_ERROR, EXIT_BUG, EXIT_INTERRUPTED = 2, 1, 130

HELP = """\
ssltrain {version}: self-supervised pretraining and evaluation of image encoders

usage: ssltrain [GROUP=ENTRY ...] [KEY=VALUE ...] [-m] [--cfg job] [--version] [--hydra-help]

Config groups (choose one entry each; the first is the default):
{groups}

Examples:
  ssltrain method=moco encoder=resnet18 dataset.root=/data/cifar10
  ssltrain dataset.root=/data/cifar10 encoder=small_cnn dataset.limit=5000 trainer.epochs=10 eval=knn
  ssltrain -m method=simclr,byol optimizer.lr=0.3,1.0        (a sweep: one job per combination)
  ssltrain eval=knn checkpoint=outputs/DATE/TIME-simclr-resnet18 (evaluate a finished run)
  ssltrain method=byol --cfg job                             (print the config a run would use)

Every key and its default: configs/config.yaml and `--cfg job`; the README explains each.
"""


def _default_choices() -> dict[str, str]:
    """{group: its default entry} from configs/config.yaml's defaults list."""
    entries = OmegaConf.to_container(OmegaConf.load(CONFIG_DIR / "config.yaml").defaults)  # unresolved
    return {key: str(value) for entry in entries if isinstance(entry, dict) for key, value in entry.items()
            if key in GROUPS}


def _help() -> str:
    defaults = _default_choices()
    lines = []
    for group in GROUPS:
        choices = group_choices(group)
        first = [defaults[group]] if defaults.get(group) in choices else []
        lines.append(f"  {group:<13} {', '.join(first + [c for c in choices if c not in first])}")
    return HELP.format(version=__version__, groups="\n".join(lines))


def _rank() -> int:
    return int(os.environ.get("RANK", "0"))


def _check_writable(args: list[str]) -> None:
    """The folder Hydra will create for the run (or the sweep) can be written; one line if not."""
    from ssltrain.compose import hydra_output_dir

    multirun = "-m" in args or "--multirun" in args
    fixed = [override.input_line for override in parse_overrides(args, with_hydra=True) if not override.is_sweep_override()]
    folder = hydra_output_dir(fixed, multirun)  # a sweep's folder does not depend on its swept values
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    key = "hydra.sweep.dir" if multirun else "hydra.run.dir"
    try:
        if not existing.is_dir():
            raise NotADirectoryError(f"{existing} is a file")
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as error:
        raise UserError(f"cannot write the output folder {folder} ({error.strerror or error}); run from a writable "
                        f"folder or choose one with {key}=PATH") from None


def _forget_run_dir(run_dir: Path) -> None:
    """A start that failed before any work leaves no folder behind (unless another process owns it)."""
    from ssltrain.runtime.log_file import stop_file_logging
    from ssltrain.runtime.run_dir import holds_no_run, remove_if_empty

    if _rank() == 0 and holds_no_run(run_dir):
        stop_file_logging()
        remove_if_empty(run_dir)


def _fail(message: str, status: int) -> None:
    print(f"ssltrain: {message}", file=sys.stderr)
    sys.exit(status)


@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="config")
def _hydra_main(cfg: DictConfig) -> Optional[float]:
    """One job; returns trainer.objective's value (to an Optuna sweep), or None."""
    from ssltrain.config import parse_config
    from ssltrain.runtime.log_file import log_file, stop_file_logging, to_file_only

    slurm.export_ranks()  # a launcher's job (submitit_slurm) runs here without main()
    if _rank() > 0:  # Hydra gave every task of the job its logging; rank 0 keeps the log file
        stop_file_logging()
    run_dir = Path(HydraConfig.get().runtime.output_dir)
    cwd = Path(HydraConfig.get().runtime.cwd)
    try:
        settings = parse_config(cfg)
        from ssltrain.objective import objective
        from ssltrain.run import run  # heavy imports (torch) after the config is known good

        results = run(settings, run_dir, search_roots=[cwd / "outputs", cwd / "multirun"])
        return objective(results, settings.trainer.objective) if results is not None else None
    except UserError as error:
        if _rank() > 0:  # rank 0 says it
            sys.exit(EXIT_USER_ERROR)
        if not isinstance(error, Stopped):
            _forget_run_dir(run_dir)
        _fail(f"error: {error}", EXIT_USER_ERROR)
    except KeyboardInterrupt:
        if _rank() > 0:
            sys.exit(EXIT_INTERRUPTED)
        _forget_run_dir(run_dir)
        _fail("stopped by Ctrl-C; rerun the same command to continue from the last checkpoint (if pretraining wrote "
              "one)", EXIT_INTERRUPTED)
    except Exception as error:
        to_file_only(log, logging.ERROR, "ssltrain stopped on an unexpected error", exc_info=True)
        where = log_file()
        summary = f"{type(error).__name__}: {str(error).strip().splitlines()[0] if str(error).strip() else ''}"
        rank = f"rank {_rank()}: " if _rank() > 0 else ""
        detail = f"the traceback is in {where}" if where else "rerun with HYDRA_FULL_ERROR=1 for the traceback"
        _fail(f"{rank}unexpected error: {summary} ({detail}; please report it if it is not about your machine)",
              EXIT_BUG)


def _sweep_naming(args: list[str]) -> list[str]:
    """Hydra overrides that make a sweep job's folder name only the overrides its jobs vary
    (method and encoder are in the name already)."""
    fixed = [o.key_or_group for o in parse_overrides(args) if not o.is_sweep_override()] + ["method", "encoder"]
    return [f"hydra.job.config.override_dirname.exclude_keys=[{','.join(repr(key) for key in fixed)}]"]


def main() -> None:
    slurm.export_ranks()  # `srun ssltrain ...`: each task knows its rank before Hydra makes folders
    args = sys.argv[1:] = expand_shorthands(sys.argv[1:])
    if "--help" in args or "-h" in args:
        print(_help())
        return
    if "--version" in args:
        print(f"ssltrain {__version__}")
        return
    run_names.register()
    try:
        check_plugins(parse_overrides(args, with_hydra=True))
        overrides = parse_overrides(args)
        check_group_choices(overrides)
        cached_schema = schema_cache.load()
        if cached_schema is not None:  # keys too, before torch loads
            schema_cache.store(cached_schema)
            check_keys(overrides)
        from ssltrain.compose import preflight  # imports torch

        preflight(args)
        if _rank() == 0 and not any(arg.startswith("--cfg") or arg in ("-c", "--hydra-help") for arg in args):
            _check_writable(args)
    except UserError as error:
        _fail(f"error: {error}", EXIT_USER_ERROR)
    if "-m" in args or "--multirun" in args:
        sys.argv += _sweep_naming(args)
    if _rank() > 0:  # under torchrun only rank 0 keeps a run directory and log file
        sys.argv += ["hydra.output_subdir=null", "hydra/job_logging=disabled", "hydra.run.dir=."]
    _hydra_main()

