"""Composing and checking a run's config: what `ssltrain` does before Hydra starts a job.

Every override is checked (each value of a sweep too): a config choice against the
group's files, a key against the composed config, the whole config against the typed
schemas, and the method, encoder and views it names are built once
(build.check_settings). A mistake fails in one line naming the valid choices, before a
multirun launches any job. This module imports torch (through the registries); cli.py
imports it only after the answers that need no torch (--help, --version).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from hydra.core.config_store import ConfigStore
from hydra.errors import HydraException
from omegaconf import DictConfig, ListConfig

from ssltrain.augment.views import ViewConfig
from ssltrain.build import check_settings
from ssltrain.config import REGISTRY_GROUPS, Settings, code_defaults, parse_config
from ssltrain.errors import UserError
from ssltrain import run_names
from ssltrain.groups import CONFIG_DIR, GROUPS, check_group_choices, parse_overrides


def store_code_defaults() -> None:
    """Every registered entry's defaults from the code as Hydra config `schema/<group>/<name>`,
    which configs/config.yaml composes beneath the entry's YAML file."""
    store = ConfigStore.instance()
    for group, registry in REGISTRY_GROUPS.items():
        for name in registry.names():
            store.store(group=f"schema/{group}", name=name, node=code_defaults(group, name))


def _compose(overrides: list[str], with_hydra: bool = False) -> DictConfig:
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        try:
            return compose("config", overrides=overrides, return_hydra_config=with_hydra)
        except HydraException as error:
            raise UserError(str(error).strip().splitlines()[0]) from None


def hydra_output_dir(overrides: list[str], multirun: bool) -> Path:
    """The folder Hydra will make for a run with these overrides (for a sweep: the sweep's)."""
    hydra_config = _compose(overrides, with_hydra=True).hydra
    return Path(hydra_config.sweep.dir if multirun else hydra_config.run.dir)


def compose_settings(overrides: list[str]) -> Settings:
    """Typed settings for these overrides, exactly as the command line would build them."""
    preflight(overrides)
    return parse_config(_compose(overrides))


def _settings(overrides: list[str]) -> Settings:
    """Composed, typed and checked: the method, encoder and views build."""
    settings = parse_config(_compose(overrides))
    check_settings(settings)
    return settings


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


def _check_key(cfg: DictConfig, key: str) -> None:
    parts = key.split(".")
    node = cfg
    for depth, part in enumerate(parts):
        index = _index(node, part)
        if index is None:
            where = ".".join(parts[:depth]) or "the top level"
            if _is_view(parts[:depth]) and part in VIEW_FIELDS:  # a view recipe's setting this preset leaves at its default
                raise UserError(f"{where} does not set '{part}' (its default applies); add it with +{key}=VALUE")
            raise UserError(f"unknown key '{key}'; valid keys in {where}: {_valid_parts(node)}")
        if depth < len(parts) - 1:
            node = node[index]


def _alternatives(override) -> list[str]:
    """The override lines to try for one override: one per value of a sweep."""
    if not override.is_sweep_override():
        return [override.input_line]
    prefix = "++" if override.is_force_add() else "+" if override.is_add() else ""
    return [f"{prefix}{override.key_or_group}={value}" for value in override.sweep_string_iterator()]


def preflight(args: list[str]) -> None:
    """Validate the command line's overrides; raises UserError with a one-line message."""
    overrides = parse_overrides(args)
    check_group_choices(overrides)
    alternatives = [_alternatives(override) for override in overrides]
    base = _compose([options[0] for override, options in zip(overrides, alternatives) if override.key_or_group in GROUPS])
    for override in overrides:
        if override.key_or_group not in GROUPS and not (override.is_add() or override.is_force_add() or override.is_delete()):
            _check_key(base, override.key_or_group)
    # every value of every sweep once, the other sweeps at their first value
    first = [options[0] for options in alternatives]
    combinations = {tuple(first)}
    for index, options in enumerate(alternatives):
        for value in options[1:]:
            combinations.add(tuple(first[:index] + [value] + first[index + 1 :]))
    for combination in sorted(combinations):
        _settings(list(combination))


store_code_defaults()
run_names.register()
