"""Typed settings: the only place that turns Hydra's composed config into Python objects.

Fixed sections (trainer, augmentation) are plain dataclasses whose values live in
configs/. A registry group entry (method, encoder, dataset, optimizer, eval) is validated
against a schema generated from the registered builder's signature plus the group's common
fields, so a misspelt key or a wrong type fails at start with one line naming the key and
the valid ones.

Every default is written once. A builder's keyword defaults and the common fields'
defaults are in the code; `code_defaults` turns them into the config node that Hydra
composes under each entry's YAML (cli.py stores them as `schema/<group>/<name>`), so
`--cfg job` shows them and the command line overrides them. A YAML file holds only what
has no default in the code (tests/test_config.py checks that no key is written in both).
"""

from __future__ import annotations

import dataclasses
import inspect
import re
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from omegaconf import MISSING, DictConfig, OmegaConf
from omegaconf.errors import MissingMandatoryValue, ValidationError

from ssltrain.augment.views import AugmentationConfig
from ssltrain.errors import UserError, check_choice, check_positive
from ssltrain.optim.schedules import DECAYS
from ssltrain.registry import DATASETS, ENCODERS, EVALUATORS, METHODS, OPTIMIZERS, Registry
from ssltrain.runtime.checkpoint import CheckpointInterval, checkpoint_file


@dataclass
class TrainerConfig:
    """Types and checks only: the values and their comments live in configs/config.yaml."""

    epochs: int
    batch_size: int
    device: str
    seed: int
    resume: str
    precision: str
    channels_last: bool
    compile: bool
    num_workers: int
    log_every: int
    knn_every: int
    image_every: int
    sync_batchnorm: bool
    clip_grad: Optional[float]
    checkpoint_every: str
    accumulate_steps: int
    objective: Optional[str]
    sampler: str
    images_per_class: int

    def __post_init__(self) -> None:
        check_choice("trainer.device", self.device, ("auto", "cpu", "cuda"))
        check_choice("trainer.precision", self.precision, ("auto", "fp32", "bf16", "fp16"))
        check_choice("trainer.sampler", self.sampler, ("random", "pk"))
        check_positive("trainer.epochs", self.epochs, allow_zero=True)
        check_positive("trainer.batch_size", self.batch_size)
        check_positive("trainer.log_every", self.log_every)
        check_positive("trainer.images_per_class", self.images_per_class)
        for key in ("knn_every", "image_every"):
            check_positive(f"trainer.{key}", getattr(self, key), allow_zero=True)
        if self.clip_grad is not None:
            check_positive("trainer.clip_grad", self.clip_grad)
        CheckpointInterval.parse(self.checkpoint_every)
        check_positive("trainer.accumulate_steps", self.accumulate_steps)
        if self.batch_size % self.accumulate_steps:
            raise UserError(f"trainer.accumulate_steps={self.accumulate_steps} must divide trainer.batch_size="
                            f"{self.batch_size} (each micro-batch is batch_size / accumulate_steps images)")
        if self.resume not in ("auto", "never") and not Path(self.resume).expanduser().exists():
            raise UserError(f"trainer.resume={self.resume}: no such file or folder; valid values are auto, never, or "
                            f"the path of a run's folder or of its checkpoints/last.pt")


# Common fields of each registry group; builder arguments are added per entry.


@dataclass(kw_only=True)
class MethodConfig:
    name: str
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(kw_only=True)
class EncoderConfig:
    name: str
    checkpointing: bool = False  # recompute a ViT's blocks in the backward pass (less memory, ~1/3 more compute)
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(kw_only=True)
class DatasetConfig:
    name: str
    limit: Optional[int] = None  # use only this many training images (seeded, class-balanced)
    holdout_fraction: float = 0.1  # held out of train for evaluation when there is no test split
    options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.limit is not None:
            check_positive("dataset.limit", self.limit)
        if not 0.0 < self.holdout_fraction < 1.0:
            raise UserError(f"dataset.holdout_fraction={self.holdout_fraction} must be in (0, 1)")


@dataclass(kw_only=True)
class OptimizerConfig:
    """The schedule every optimizer follows; each optimizer's own YAML gives lr, weight
    decay and warm-up (they differ per optimizer), a method's recipe its values for it."""

    name: str
    lr: float  # for a batch of 256; the run uses lr * batch_size / 256
    weight_decay: float
    warmup_epochs: float  # linear warm-up; capped at warmup_max_fraction of the run
    warmup_max_fraction: float = 0.1  # a run shorter than its recipe assumes warms up for at most this share
    warmup_start_lr: float = 0.0
    min_lr: float = 0.0  # where the cosine or the linear decay ends (absolute)
    lr_schedule: str = "cosine"  # after the warm-up: cosine, inverse_decay (DANN's) or linear_decay (CycleGAN's)
    lr_decay_start: float = 0.5  # linear_decay: the share of the run at the full lr before the decay
    weight_decay_end: Optional[float] = None  # set to follow a cosine from weight_decay to this value (DINO)
    bias_lr_scale: float = 1.0  # biases and norm parameters run at this multiple of the lr (Barlow Twins' LARS)
    options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_positive("optimizer.lr", self.lr, allow_zero=True)
        check_positive("optimizer.weight_decay", self.weight_decay, allow_zero=True)
        check_positive("optimizer.warmup_epochs", self.warmup_epochs, allow_zero=True)
        if not 0.0 <= self.warmup_max_fraction <= 1.0:
            raise UserError(f"optimizer.warmup_max_fraction={self.warmup_max_fraction} must be in [0, 1]")
        check_choice("optimizer.lr_schedule", self.lr_schedule, tuple(DECAYS))
        if not 0.0 <= self.lr_decay_start < 1.0:
            raise UserError(f"optimizer.lr_decay_start={self.lr_decay_start} must be in [0, 1)")


@dataclass(kw_only=True)
class EvalConfig:
    name: str
    options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _check_label_fraction("eval.label_fraction", self.options.get("label_fraction", 1.0))
        if self.name == "suite" and "protocols" in self.options:  # the typed entry, with its arguments in options
            self._check_suite()

    @property
    def evaluators(self) -> list[str]:
        """The evaluators this entry runs: a suite's protocols, else itself."""
        return list(self.options["protocols"]) if self.name == "suite" else [self.name]

    def protocol_options(self, protocol: str) -> dict[str, Any]:
        """The keyword arguments one of `evaluators` runs with (set on the command line)."""
        return self.options["settings"].get(protocol, {}) if self.name == "suite" else self.options

    def _check_suite(self) -> None:
        runnable = [name for name in EVALUATORS.names() if name not in ("suite", "none")]
        for protocol in self.evaluators:
            if protocol not in runnable:
                raise UserError(f"unknown eval '{protocol}' in eval.protocols; valid choices: {', '.join(runnable)}")
        for protocol, options in self.options["settings"].items():
            if protocol not in self.evaluators:
                raise UserError(f"eval.settings.{protocol} sets a protocol that does not run; eval.protocols: "
                                f"{', '.join(self.evaluators)}")
            where = f"eval.settings.{protocol}"
            _to_object(_entry_schema("eval", protocol), {"name": protocol, **options}, where)
            _check_label_fraction(f"{where}.label_fraction", options.get("label_fraction", 1.0))
        fractions = {protocol: self.protocol_options(protocol).get("label_fraction", parameters["label_fraction"].default)
                     for protocol in self.evaluators
                     if "label_fraction" in (parameters := EVALUATORS.user_parameters(protocol))}
        if len(set(fractions.values())) > 1:  # results.json holds one label_fraction (and one kNN figure)
            listed = ", ".join(f"{protocol} {fraction:g}" for protocol, fraction in fractions.items())
            raise UserError(f"the protocols' label fractions differ ({listed}) and results.json holds one; set the "
                            f"same +eval.settings.<protocol>.label_fraction for each, or run them separately")


def _check_label_fraction(key: str, fraction: float) -> None:
    if not 0.0 < fraction <= 1.0:
        raise UserError(f"{key}={fraction} must be in (0, 1]: the share of labelled training images the probe "
                        f"trains on, e.g. 0.01 or 0.1")


@dataclass
class Settings:
    """Everything a run needs, typed; built once from Hydra's config by `parse_config`."""

    trainer: TrainerConfig
    method: MethodConfig
    encoder: EncoderConfig
    dataset: DatasetConfig
    augmentation: AugmentationConfig
    optimizer: OptimizerConfig
    eval: EvalConfig
    eval_dataset: Optional[DatasetConfig]  # another dataset to evaluate on (transfer); None: the pretraining one
    target_dataset: Optional[DatasetConfig]  # two-domain methods' second dataset (SSLMethod.needs_target)
    checkpoint: Optional[str]
    resolved: dict[str, Any]  # the resolved config as plain data, saved with every run


_GROUPS: dict[str, tuple[type, Registry]] = {  # each registry group's common fields and its registry
    "method": (MethodConfig, METHODS),
    "encoder": (EncoderConfig, ENCODERS),
    "dataset": (DatasetConfig, DATASETS),
    "optimizer": (OptimizerConfig, OPTIMIZERS),
    "eval": (EvalConfig, EVALUATORS),
}
REGISTRY_GROUPS: dict[str, Registry] = {group: registry for group, (_, registry) in _GROUPS.items()}
TOP_LEVEL_KEYS = ("trainer", *_GROUPS, "augmentation", "eval_dataset", "target_dataset", "checkpoint")


def _builder_fields(registry: Registry, name: str) -> list[tuple[str, Any, Any]]:
    builder = registry.get(name)
    hints = typing.get_type_hints(builder.__init__ if inspect.isclass(builder) else builder)
    fields = []
    for param in registry.user_parameters(name).values():
        if param.name not in hints:
            raise TypeError(f"{registry.group} '{name}': parameter '{param.name}' needs a type annotation")
        if param.default is inspect.Parameter.empty:
            default = field()
        elif isinstance(param.default, (list, tuple, dict)):
            default = field(default_factory=lambda value=param.default: list(value) if isinstance(value, tuple) else value)
        else:
            default = field(default=param.default)
        fields.append((param.name, hints[param.name], default))
    return fields


def _to_object(schema: type, node: Any, where: str) -> Any:
    """Merge `node` onto `schema` and instantiate it, turning OmegaConf errors into one line."""
    valid = [f.name for f in dataclasses.fields(schema) if f.name != "options"]
    unknown = sorted(set(node) - set(valid)) if isinstance(node, (dict, DictConfig)) else []
    if unknown:
        raise UserError(f"unknown key '{where}.{unknown[0]}'; valid keys: {', '.join(valid)}")
    try:
        merged = OmegaConf.merge(OmegaConf.structured(schema), node)
        return OmegaConf.to_object(merged)
    except MissingMandatoryValue as error:
        raise UserError(f"'{where}.{error.full_key}' is required; set it in the YAML or on the command line") from None
    except ValidationError as error:
        reason = str(error).splitlines()[0]
        raise UserError(f"'{where}.{error.full_key}': {reason}") from None


def _entry_schema(group: str, name: str) -> type:
    """The dataclass an entry's node must fit: the group's common fields + the builder's arguments."""
    common, registry = _GROUPS[group]
    return dataclasses.make_dataclass(f"{group}_{name}", _builder_fields(registry, name), bases=(common,), kw_only=True)


def code_defaults(group: str, name: str) -> dict[str, Any]:
    """Every key of an entry with its default from the code ('???' where the code has none):
    the node Hydra composes beneath the entry's YAML file."""
    node = {}
    for entry in dataclasses.fields(_entry_schema(group, name)):
        if entry.name == "options":
            continue
        if entry.default is not dataclasses.MISSING:
            node[entry.name] = entry.default
        elif entry.default_factory is not dataclasses.MISSING:
            node[entry.name] = entry.default_factory()
        else:
            node[entry.name] = MISSING
    node["name"] = name
    return node


def parse_group(group: str, node: Any, where: Optional[str] = None) -> Any:
    """One group's node (at `where`, default: the group's own key) -> its common config with
    the builder's arguments in `options`."""
    common, registry = _GROUPS[group]
    where = where or group
    if not isinstance(node, (dict, DictConfig)) or "name" not in node:
        raise UserError(f"config group '{where}' needs a 'name'; choose one of: {', '.join(registry.names())}")
    schema = _entry_schema(group, node["name"])
    try:
        parsed = _to_object(schema, node, where)
    except UserError as error:  # the common fields' own checks name the group's key
        raise UserError(re.sub(rf"(?<![\w.]){group}\.", f"{where}.", str(error), count=1)) from None
    common_names = {f.name for f in dataclasses.fields(common)} - {"options"}
    options = {f.name: getattr(parsed, f.name) for f in dataclasses.fields(schema) if f.name not in common_names | {"options"}}
    return common(**{key: getattr(parsed, key) for key in common_names}, options=options)


def parse_config(cfg: DictConfig | dict) -> Settings:
    """Validate a composed config and return typed settings (raises UserError)."""
    try:
        resolved = OmegaConf.to_container(OmegaConf.create(cfg) if isinstance(cfg, dict) else cfg, resolve=True)
    except Exception as error:  # an interpolation that cannot resolve
        raise UserError(f"config does not resolve: {str(error).splitlines()[0]}") from None
    unknown = sorted(set(resolved) - set(TOP_LEVEL_KEYS))
    if unknown:
        raise UserError(f"unknown top-level key '{unknown[0]}'; valid keys: {', '.join(TOP_LEVEL_KEYS)}")
    groups = {group: parse_group(group, resolved.get(group)) for group in _GROUPS}
    eval_dataset, target_dataset = resolved.get("eval_dataset"), resolved.get("target_dataset")
    if resolved.get("checkpoint"):
        checkpoint_file(resolved["checkpoint"], "checkpoint")
    return Settings(
        trainer=_to_object(TrainerConfig, resolved.get("trainer", {}), "trainer"),
        augmentation=_to_object(AugmentationConfig, resolved.get("augmentation", {}), "augmentation"),
        eval_dataset=parse_group("dataset", eval_dataset, "eval_dataset") if eval_dataset else None,
        target_dataset=parse_group("dataset", target_dataset, "target_dataset") if target_dataset else None,
        checkpoint=resolved.get("checkpoint"),
        resolved=resolved,
        **groups,
    )
