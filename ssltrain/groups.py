"""The config groups and their entries, read from configs/ without importing torch, so that
`ssltrain --help` and a mistyped group choice answer at once."""

from __future__ import annotations

from pathlib import Path

from hydra.errors import HydraException
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override

from ssltrain.errors import UserError

CONFIG_DIR = Path(__file__).resolve().parent / "configs"
# chosen by name: one file each under configs/ (the first five are registries: config.REGISTRY_GROUPS)
GROUPS = ("method", "encoder", "dataset", "optimizer", "eval", "augmentation", "experiment")


def group_choices(group: str) -> list[str]:
    return sorted(path.stem for path in (CONFIG_DIR / group).glob("*.yaml"))


def parse_overrides(args: list[str], with_hydra: bool = False) -> list[Override]:
    """The command line's overrides (with_hydra: Hydra's own `hydra.*` ones too), parsed;
    one-line UserError if they do not parse."""
    lines = [arg for arg in args if "=" in arg and not arg.startswith("-")]
    try:
        overrides = OverridesParser.create().parse_overrides(lines)
    except HydraException as error:
        raise UserError(f"cannot parse the overrides: {str(error).strip().splitlines()[0]}") from None
    return [override for override in overrides if with_hydra or not override.key_or_group.startswith("hydra")]


def check_group_choices(overrides: list[Override]) -> None:
    """Every group choice (each value of a sweep too) names a file of its group."""
    for override in overrides:
        group = override.key_or_group
        if group in GROUPS and not override.is_delete():
            values = override.sweep_string_iterator() if override.is_sweep_override() else [override.value()]
            for value in values:
                if value not in group_choices(group):
                    raise UserError(f"unknown {group} '{value}'; valid choices: {', '.join(group_choices(group))}")
