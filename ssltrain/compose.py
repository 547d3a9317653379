"""Composing and checking a run's config: what `ssltrain` does before Hydra starts a job.

Every override is checked (each value of a sweep too, both ends of an Optuna interval):
a config choice against the group's files, a key against the composed config, the whole
config against the typed schemas, and the method, encoder and views it names are built once
(build.check_settings). A mistake fails in one line naming the valid choices, before a
multirun launches any job. This module imports torch (through the registries); cli.py
imports it only after the checks that need none (groups.py).
"""

from __future__ import annotations

from pathlib import Path

from ssltrain import run_names, schema_cache
from ssltrain.build import check_settings
from ssltrain.config import REGISTRY_GROUPS, Settings, code_defaults, parse_config
from ssltrain.groups import (check_group_choices, check_keys, compose_config, expand_shorthands, parse_overrides,
                             sweep_alternatives)


def store_code_defaults() -> None:
    """Every registered entry's defaults from the code as Hydra config `schema/<group>/<name>`,
    which configs/config.yaml composes beneath the entry's YAML file; also kept in the schema
    cache, from which the next command checks its keys before importing torch."""
    nodes = {group: {name: code_defaults(group, name) for name in registry.names()}
             for group, registry in REGISTRY_GROUPS.items()}
    schema_cache.store(nodes)
    schema_cache.save(nodes)


def hydra_output_dir(overrides: list[str], multirun: bool) -> Path:
    """The folder Hydra will make for a run with these overrides (for a sweep: the sweep's)."""
    hydra_config = compose_config(overrides, with_hydra=True).hydra
    return Path(hydra_config.sweep.dir if multirun else hydra_config.run.dir)


def compose_settings(overrides: list[str]) -> Settings:
    """Typed settings for these overrides, exactly as the command line would build them."""
    overrides = expand_shorthands(overrides)
    preflight(overrides)
    return parse_config(compose_config(overrides))


def _settings(overrides: list[str]) -> Settings:
    """Composed, typed and checked: the method, encoder and views build."""
    settings = parse_config(compose_config(overrides))
    check_settings(settings)
    return settings


def preflight(args: list[str]) -> None:
    """Validate the command line's overrides; raises UserError with a one-line message."""
    args = expand_shorthands(args)
    overrides = parse_overrides(args)
    check_group_choices(overrides)
    check_keys(overrides)
    alternatives = [sweep_alternatives(override) for override in overrides]
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
