"""Typed settings -> the parts of a run: device and precision, data, encoder, method,
optimizer and schedule.

run.py assembles a run from them; cli.py builds the encoder and method once before any
work starts (`check_settings`), so a bad method, encoder or augmentation value fails in
one line then, not after the data has loaded.
"""

from __future__ import annotations

import json
import logging
from typing import Any, Optional

import torch
from torch import nn

from ssltrain.augment.pixels import RGB
from ssltrain.config import DatasetConfig, EncoderConfig, Settings, parse_group
from ssltrain.data.images import DatasetSplits, make_splits
from ssltrain.data.sources import NORMALISATION
from ssltrain.runtime.precision import Precision
from ssltrain.errors import UserError
from ssltrain.methods.base import SSLMethod
from ssltrain.objective import check_objective
from ssltrain.optim.schedules import OptimizerSchedule, capped_warmup, warmup_cosine, warmup_decay
from ssltrain.registry import DATASETS, ENCODERS, EVALUATORS, METHODS, OPTIMIZERS

log = logging.getLogger("ssltrain")


def select_device(requested: str, key: str = "trainer.device") -> torch.device:
    """`key`: the setting `requested` came from, for the error message."""
    if requested == "cuda" and not torch.cuda.is_available():
        raise UserError(f"{key}=cuda but CUDA is not available here; use {key}=cpu (or auto)")
    if requested == "auto":
        requested = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(requested)


def select_precision(requested: str, device: torch.device) -> Precision:
    if requested == "auto":
        requested = "bf16" if device.type == "cuda" else "fp32"
    if requested == "fp16" and device.type != "cuda":
        raise UserError("trainer.precision=fp16 needs CUDA; use bf16 or fp32 on the CPU")
    return Precision({"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[requested])


def load_data(dataset: DatasetConfig, seed: int, image_size: Optional[int] = None, role: str = "data") -> DatasetSplits:
    """The dataset's seeded splits; image_size: load the images at this side instead of the
    configured one (an evaluation dataset at the encoder's input size)."""
    options = dataset.options
    if image_size is not None and image_size != options["image_size"]:
        log.info("%s: %s images at %d px, the encoder's input size, not the configured %d", role, dataset.name,
                 image_size, options["image_size"])
        options = {**options, "image_size": image_size}
    source = DATASETS.build(dataset.name, **options)
    splits = make_splits(source, dataset.limit, dataset.holdout_fraction, seed)
    log.info("%s: %s, %d training images, evaluation on %s", role, dataset.name, len(splits.train), splits.val_split)
    return splits


def build_encoder(encoder: EncoderConfig, image_size: int) -> nn.Module:
    module = ENCODERS.build(encoder.name, context={"image_size": image_size}, **encoder.options)
    if encoder.checkpointing:
        if module.kind != "vit":
            vits = [name for name in ENCODERS.names() if name.startswith("vit")]
            raise UserError(f"encoder.checkpointing=true recomputes a ViT's blocks and encoder {encoder.name} is a "
                            f"{module.kind}; choose one of {', '.join(vits)}, or drop it")
        module.checkpointing = True
    return module


def load_weights(module: nn.Module, weights: dict[str, torch.Tensor], source: str, what: str) -> nn.Module:
    """`module` with `weights` (read from `source`) loaded strictly; one line naming `what`
    the module is when they do not fit."""
    try:
        module.load_state_dict(weights, strict=True)
    except RuntimeError as error:
        raise UserError(f"the weights in {source} do not fit {what}: {str(error).splitlines()[0]}") from None
    return module


def load_encoder(encoder: EncoderConfig, image_size: int, weights: dict[str, torch.Tensor], source: str) -> nn.Module:
    """The encoder `encoder` names, with `weights` (read from `source`) loaded strictly."""
    return load_weights(build_encoder(encoder, image_size), weights, source, f"encoder {encoder.name}")


def load_run_encoder(config: dict[str, Any], weights: dict[str, torch.Tensor], source: str
                     ) -> tuple[nn.Module, EncoderConfig, DatasetConfig]:
    """The representation a run's resolved `config` trained (its method's, around the encoder
    it names, built at its dataset's image size), with `weights` (read from `source`)
    loaded; with the encoder and dataset settings it read."""
    encoder, dataset = parse_group("encoder", config["encoder"]), parse_group("dataset", config["dataset"])
    method = config["method"]["name"]
    mean, std = NORMALISATION[dataset.name]
    module = METHODS.get(method).encoder_module(build_encoder(encoder, dataset.options["image_size"]), mean, std)
    return load_weights(module, weights, source, f"method {method}'s encoder {encoder.name}"), encoder, dataset


# The training set's size a method is built for when the data is not loaded yet (the checks
# before any work, tests): methods that keep a slot per image (npid's memory bank) size it.
UNLOADED_IMAGES = 256


def build_method(settings: Settings, image_size: int, mean: RGB = (0.5,) * 3, std: RGB = (0.5,) * 3,
                 num_classes: Optional[int] = None, num_images: int = UNLOADED_IMAGES) -> SSLMethod:
    """The configured method around the configured encoder, checked against the views the
    augmentation makes (raises UserError); num_classes: the dataset's, for methods that
    classify (arcface), None where unknown; num_images: the number of training images."""
    encoder = build_encoder(settings.encoder, image_size)
    name = settings.method.name
    method_class = METHODS.get(name)
    if encoder.kind not in method_class.encoder_kinds:
        fitting = [entry for entry in ENCODERS.names()
                   if ENCODERS.build(entry, context={"image_size": image_size}).kind in method_class.encoder_kinds]
        raise UserError(f"method {name} needs a {' or '.join(method_class.encoder_kinds)} encoder; "
                        f"choose encoder= one of: {', '.join(fitting)}")
    steps = settings.trainer.accumulate_steps
    if steps > 1 and method_class.couples_batch:
        raise UserError(f"method {name} cannot train with trainer.accumulate_steps={steps}: its loss couples the images "
                        f"of a batch (negatives or statistics), so micro-batches would train another objective; use "
                        f"more processes or a smaller trainer.batch_size")
    if method_class.needs_target and settings.target_dataset is None:
        raise UserError(f"method {name} trains on two datasets: set the second with target_dataset=<one of "
                        f"{', '.join(DATASETS.names())}> (e.g. target_dataset=imagefolder target_dataset.root=DIR)")
    if settings.target_dataset is not None and not method_class.needs_target:
        raise UserError(f"target_dataset={settings.target_dataset.name} is set but method {name} trains on one "
                        f"dataset; remove target_dataset (eval_dataset=NAME evaluates on another dataset)")
    context = {"encoder": encoder, "image_size": image_size, "mean": mean, "std": std, "num_images": num_images}
    if num_classes is not None:
        context["num_classes"] = num_classes
    method = METHODS.build(name, context=context, **settings.method.options)
    try:
        method.check_views(settings.augmentation.view_sizes(image_size))
    except UserError as error:
        raise UserError(f"method {name} {error} (augmentation {settings.augmentation.name})") from None
    return method


_checked: set[str] = set()


def check_settings(settings: Settings) -> None:
    """Build, once per distinct combination, what the settings name, on the CPU at the
    dataset's image size: every method, encoder and augmentation argument is checked
    before any work starts, and eval=layers' stages against the encoder. With
    `checkpoint`, only the encoder (a backbone.pt is loaded into the configured one; a
    run's checkpoint brings its own config)."""
    for protocol in settings.eval.evaluators:
        EVALUATORS.check_installed(protocol)
    check_objective(settings.trainer.objective, settings.eval.evaluators,
                    () if settings.checkpoint else METHODS.get(settings.method.name).reports)
    for dataset in (settings.dataset, settings.target_dataset, settings.eval_dataset):
        if dataset is not None:
            DATASETS.check_installed(dataset.name)
    image_size = settings.dataset.options["image_size"]
    parts = (settings.encoder, image_size) if settings.checkpoint else (settings.method, settings.encoder,
                                                                       settings.augmentation, settings.eval, image_size,
                                                                       settings.trainer.accumulate_steps,
                                                                       settings.target_dataset)
    key = json.dumps(parts, default=repr, sort_keys=True)
    if key in _checked:
        return
    with torch.random.fork_rng(devices=[]):  # the build's random draws leave the caller's stream alone
        # the class count is the data's, not loaded yet: a stand-in of 2 checks the other arguments
        encoder = build_encoder(settings.encoder, image_size) if settings.checkpoint else \
            build_method(settings, image_size, num_classes=2).encoder
    if "layers" in settings.eval.evaluators and not settings.checkpoint:  # a checkpoint brings its own encoder
        from ssltrain.eval.layers import chosen_stages

        chosen_stages(encoder, settings.eval.protocol_options("layers").get("stages"))
    _checked.add(key)


def build_optimizer(settings: Settings, method: SSLMethod, steps_per_epoch: int) -> tuple[torch.optim.Optimizer, OptimizerSchedule]:
    """The optimizer over the method's parameter groups and its per-step schedule:
    linear warm-up (capped at a share of the run) then optimizer.lr_schedule's decay; logs the effective values."""
    cfg, trainer = settings.optimizer, settings.trainer
    lr = cfg.lr * trainer.batch_size / 256  # linear scaling rule (Goyal et al., 2017)
    total = max(1, trainer.epochs * steps_per_epoch)
    warmup = capped_warmup(cfg.warmup_epochs, cfg.warmup_max_fraction, trainer.epochs)
    lrs = warmup_decay(cfg.lr_schedule, lr, cfg.min_lr, total, round(warmup * steps_per_epoch), cfg.warmup_start_lr,
                       cfg.lr_decay_start)
    wd_end = cfg.weight_decay if cfg.weight_decay_end is None else cfg.weight_decay_end
    wds = warmup_cosine(cfg.weight_decay, wd_end, total)
    capped = f" (the recipe's {cfg.warmup_epochs:g}, capped at {cfg.warmup_max_fraction:.0%} of the run)" \
        if warmup < cfg.warmup_epochs else ""
    log.info("optimizer %s: lr %.4g (%g per 256 images at batch %d), warm-up %.3g epochs%s, %s to %.4g over %d "
             "epochs; weight decay %g%s%s", cfg.name, lr, cfg.lr, trainer.batch_size, warmup, capped, cfg.lr_schedule,
             float(lrs[-1]),
             trainer.epochs, cfg.weight_decay, f" -> {wd_end:g}" if wd_end != cfg.weight_decay else "",
             f"; biases and norms at {cfg.bias_lr_scale:g} x lr" if cfg.bias_lr_scale != 1 else "")
    optimizer = OPTIMIZERS.build(cfg.name, context={"params": method.param_groups()}, **cfg.options)
    return optimizer, OptimizerSchedule(lrs, wds, base_lr=lr, bias_lr_scale=cfg.bias_lr_scale)
