"""The command line's names checked without importing torch: the config groups and their
entries (read from configs/), and the keys overrides set (against the composed config), so
that `ssltrain --help`, a mistyped group choice or a mistyped key answer at once."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import IntervalSweep, Override
from hydra.errors import HydraException
from omegaconf import DictConfig, ListConfig

from ssltrain.augment.views import ViewConfig
from ssltrain.errors import UserError

CONFIG_DIR = Path(__file__).resolve().parent / "configs"
# chosen by name: one file each under configs/ (the first five are registries: config.REGISTRY_GROUPS)
GROUPS = ("method", "encoder", "dataset", "optimizer", "eval", "augmentation", "experiment")
# the dataset group's entry placed at another key: {key: what it is, for messages}
PLACED_DATASETS = {"eval_dataset": "the evaluation dataset", "target_dataset": "the target dataset"}


def group_choices(group: str) -> list[str]:
    return sorted(path.stem for path in (CONFIG_DIR / group).glob("*.yaml"))


def expand_shorthands(args: list[str]) -> list[str]:
    """The command line's short forms in Hydra's own:
    `eval=[linear,knn]` -> `eval=suite eval.protocols=[linear,knn]` (the suite entry runs each);
    `eval_dataset=NAME` -> `dataset@eval_dataset=NAME` (the dataset group's entry, placed at
    eval_dataset; target_dataset likewise)."""
    expanded = []
    for arg in args:
        key, _, value = arg.partition("=")
        if key == "eval" and value.startswith("["):
            expanded += ["eval=suite", f"eval.protocols={value}"]
        elif key.lstrip("+") in PLACED_DATASETS:
            expanded.append(f"dataset@{key.lstrip('+')}={value}")
        else:
            expanded.append(arg)
    return expanded


def parse_overrides(args: list[str], with_hydra: bool = False) -> list[Override]:
    """The command line's overrides (with_hydra: Hydra's own `hydra.*` ones too), parsed;
    one-line UserError if they do not parse."""
    lines = [arg for arg in args if "=" in arg and not arg.startswith("-")]
    try:
        overrides = OverridesParser.create().parse_overrides(lines)
    except HydraException as error:
        raise UserError(f"cannot parse the overrides: {str(error).strip().splitlines()[0]}") from None
    return [override for override in overrides if with_hydra or not override.key_or_group.startswith("hydra")]


def sweep_values(override: Override) -> list[str]:
    """The values to check of one override: its value, each value of a sweep, or both ends
    of a search space (`interval(0.1, 2.0)`, an Optuna sweeper's)."""
    value = override.value()
    if isinstance(value, IntervalSweep):
        return [str(int(end)) if float(end).is_integer() else repr(float(end)) for end in (value.start, value.end)]
    return list(override.sweep_string_iterator()) if override.is_sweep_override() else [value]


def check_group_choices(overrides: list[Override]) -> None:
    """Every group choice (each value of a sweep too) names a file of its group."""
    for override in overrides:
        group = override.key_or_group
        if group in GROUPS and not override.is_delete():
            for value in sweep_values(override):
                if value not in group_choices(group):
                    raise UserError(f"unknown {group} '{value}'; valid choices: {', '.join(group_choices(group))}")


def compose_config(overrides: list[str], with_hydra: bool = False) -> DictConfig:
    """configs/config.yaml with these overrides (the registry entries' code defaults must be in
    Hydra's ConfigStore: compose.store_code_defaults or schema_cache.store)."""
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        try:
            return compose("config", overrides=overrides, return_hydra_config=with_hydra)
        except HydraException as error:
            raise UserError(str(error).strip().splitlines()[0]) from None


def _index(node, part: str):
    """`part` as a key of the section or an index of the list `node`, or None when absent."""
    if isinstance(node, DictConfig) and part in node.keys():  # keys(): '???' counts as present
        return part
    if isinstance(node, ListConfig) and part.isdigit() and int(part) < len(node):
        return int(part)
    return None


def _valid_parts(node) -> str:
    if isinstance(node, DictConfig):
        return ", ".join(str(k) for k in node.keys())
    if isinstance(node, ListConfig):
        return f"indices 0 to {len(node) - 1}"
    return "none (not a section)"


VIEW_FIELDS = tuple(entry.name for entry in dataclasses.fields(ViewConfig))


def _is_view(path: list[str]) -> bool:
    return len(path) == 3 and path[:2] == ["augmentation", "views"]


def check_key(cfg: DictConfig, key: str) -> None:
    """`key` names a setting of `cfg` (a section's key or a list's index at every level)."""
    parts = key.split(".")
    node = cfg
    for depth, part in enumerate(parts):
        index = _index(node, part)
        if index is None:
            where = ".".join(parts[:depth]) or "the top level"
            if parts[0] in PLACED_DATASETS and depth == 0:
                raise UserError(f"{key} sets a key of {PLACED_DATASETS[parts[0]]}, and none is chosen; add "
                                f"{parts[0]}=<one of {', '.join(group_choices('dataset'))}>")
            if _is_view(parts[:depth]) and part in VIEW_FIELDS:  # a view recipe's setting this preset leaves at its default
                raise UserError(f"{where} does not set '{part}' (its default applies); add it with +{key}=VALUE")
            raise UserError(f"unknown key '{key}'; valid keys in {where}: {_valid_parts(node)}")
        if depth < len(parts) - 1:
            node = node[index]


def sweep_alternatives(override: Override) -> list[str]:
    """The override lines to try for one override: one per value of a sweep, or each end of a search space."""
    if not override.is_sweep_override():
        return [override.input_line]
    prefix = "++" if override.is_force_add() else "+" if override.is_add() else ""
    return [f"{prefix}{override.key_or_group}={value}" for value in sweep_values(override)]


def check_keys(overrides: list[Override]) -> None:
    """Every key an override sets (not one it adds with +) exists in the composed config."""
    groups = [sweep_alternatives(override)[0] for override in overrides if override.key_or_group in GROUPS]
    base = compose_config(groups)
    for override in overrides:
        if override.key_or_group not in GROUPS and not (override.is_add() or override.is_force_add() or override.is_delete()):
            check_key(base, override.key_or_group)
