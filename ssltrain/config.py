"""Typed settings: the only place that turns Hydra's composed config into Python objects.

Fixed sections (trainer, augmentation) are plain dataclasses. A registry group entry
(method, encoder, dataset, optimizer, eval) is validated against a schema generated from
the registered builder's signature plus the group's common fields, so a misspelt key or a
wrong type fails at start with one line naming the key and the valid ones.
"""

from __future__ import annotations

import dataclasses
import inspect
import typing
from dataclasses import dataclass, field
from typing import Any, Optional, Tuple

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import MissingMandatoryValue, ValidationError

from ssltrain.errors import UserError
from ssltrain.registry import DATASETS, ENCODERS, EVALUATORS, METHODS, OPTIMIZERS, Registry


def _check_choice(key: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise UserError(f"{key}={value!r} is not valid; choose one of: {', '.join(choices)}")


def _check_positive(key: str, value: float, allow_zero: bool = False) -> None:
    if value < 0 or (value == 0 and not allow_zero):
        raise UserError(f"{key}={value} must be {'>= 0' if allow_zero else '> 0'}")


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

    def __post_init__(self) -> None:
        _check_choice("trainer.device", self.device, ("auto", "cpu", "cuda"))
        _check_choice("trainer.precision", self.precision, ("auto", "fp32", "bf16", "fp16"))
        _check_positive("trainer.epochs", self.epochs, allow_zero=True)
        _check_positive("trainer.batch_size", self.batch_size)
        _check_positive("trainer.log_every", self.log_every)
        for key in ("knn_every", "image_every"):
            _check_positive(f"trainer.{key}", getattr(self, key), allow_zero=True)


@dataclass
class ViewConfig:
    """One augmentation recipe, applied to `count` views. Defaults are the identity."""

    count: int = 1
    size: Optional[int] = None  # output side in pixels; None: the dataset's image size
    crop_scale: Tuple[float, float] = (1.0, 1.0)  # RandomResizedCrop area fraction
    crop_ratio: Tuple[float, float] = (1.0, 1.0)  # RandomResizedCrop aspect ratio
    flip_p: float = 0.0
    jitter_p: float = 0.0  # probability of applying the colour jitter below
    brightness: float = 0.0
    contrast: float = 0.0
    saturation: float = 0.0
    hue: float = 0.0
    grayscale_p: float = 0.0
    blur_p: float = 0.0
    blur_sigma: Tuple[float, float] = (0.1, 2.0)
    solarize_p: float = 0.0

    def __post_init__(self) -> None:
        _check_positive("augmentation.views[].count", self.count)
        for key in ("flip_p", "jitter_p", "grayscale_p", "blur_p", "solarize_p"):
            if not 0.0 <= getattr(self, key) <= 1.0:
                raise UserError(f"augmentation view {key}={getattr(self, key)} must be in [0, 1]")
        if not 0.0 < self.crop_scale[0] <= self.crop_scale[1] <= 1.0:
            raise UserError(f"augmentation view crop_scale={list(self.crop_scale)} must satisfy 0 < lo <= hi <= 1")


@dataclass
class AugmentationConfig:
    name: str = "none"
    views: list[ViewConfig] = field(default_factory=lambda: [ViewConfig()])
    # where the views are made: cpu (torchvision per sample in DataLoader workers), gpu
    # (whole batches on the training device; datasets decoded in memory), or auto: gpu on
    # CUDA when the dataset is decoded in memory, else cpu
    backend: str = "auto"

    def __post_init__(self) -> None:
        _check_choice("augmentation.backend", self.backend, ("auto", "cpu", "gpu"))

    @property
    def num_views(self) -> int:
        return sum(view.count for view in self.views)


# Common fields of each registry group; builder arguments are added per entry.


@dataclass(kw_only=True)
class MethodConfig:
    name: str
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(kw_only=True)
class EncoderConfig:
    name: str
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(kw_only=True)
class DatasetConfig:
    name: str
    limit: Optional[int] = None  # use only this many training images (seeded, class-balanced)
    holdout_fraction: float = 0.1  # held out of train for evaluation when there is no test split
    options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.limit is not None:
            _check_positive("dataset.limit", self.limit)
        if not 0.0 < self.holdout_fraction < 1.0:
            raise UserError(f"dataset.holdout_fraction={self.holdout_fraction} must be in (0, 1)")


@dataclass(kw_only=True)
class OptimizerConfig:
    name: str
    lr: float  # for a batch of 256; the run uses lr * batch_size / 256
    weight_decay: float = 0.0
    weight_decay_end: Optional[float] = None  # cosine weight-decay schedule target (DINO)
    warmup_epochs: float = 10.0
    warmup_start_lr: float = 0.0
    min_lr: float = 0.0  # where the cosine ends (absolute)
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(kw_only=True)
class EvalConfig:
    name: str
    options: dict[str, Any] = field(default_factory=dict)


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
    checkpoint: Optional[str]
    resolved: dict[str, Any]  # the resolved config as plain data, saved with every run


_GROUPS: dict[str, tuple[type, Registry]] = {
    "method": (MethodConfig, METHODS),
    "encoder": (EncoderConfig, ENCODERS),
    "dataset": (DatasetConfig, DATASETS),
    "optimizer": (OptimizerConfig, OPTIMIZERS),
    "eval": (EvalConfig, EVALUATORS),
}
TOP_LEVEL_KEYS = ("trainer", *_GROUPS, "augmentation", "checkpoint")


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


def _parse_group(group: str, node: Any) -> Any:
    common, registry = _GROUPS[group]
    if not isinstance(node, (dict, DictConfig)) or "name" not in node:
        raise UserError(f"config group '{group}' needs a 'name'; choose one of: {', '.join(registry.names())}")
    name = node["name"]
    extra = _builder_fields(registry, name)
    schema = dataclasses.make_dataclass(f"{group}_{name}", extra, bases=(common,), kw_only=True)
    parsed = _to_object(schema, node, group)
    common_names = {f.name for f in dataclasses.fields(common)}
    options = {key: getattr(parsed, key) for key, _, _ in extra}
    return common(**{key: getattr(parsed, key) for key in common_names if key != "options"}, options=options)


def parse_config(cfg: DictConfig | dict) -> Settings:
    """Validate a composed config and return typed settings (raises UserError)."""
    try:
        resolved = OmegaConf.to_container(OmegaConf.create(cfg) if isinstance(cfg, dict) else cfg, resolve=True)
    except Exception as error:  # an interpolation that cannot resolve
        raise UserError(f"config does not resolve: {str(error).splitlines()[0]}") from None
    unknown = sorted(set(resolved) - set(TOP_LEVEL_KEYS))
    if unknown:
        raise UserError(f"unknown top-level key '{unknown[0]}'; valid keys: {', '.join(TOP_LEVEL_KEYS)}")
    groups = {group: _parse_group(group, resolved.get(group)) for group in _GROUPS}
    return Settings(
        trainer=_to_object(TrainerConfig, resolved.get("trainer", {}), "trainer"),
        augmentation=_to_object(AugmentationConfig, resolved.get("augmentation", {}), "augmentation"),
        checkpoint=resolved.get("checkpoint"),
        resolved=resolved,
        **groups,
    )
