"""One run, top to bottom: device, data, model, resume, pretraining, outputs, evaluation.

Everything here takes typed Settings; nothing below cli.py sees a DictConfig.
"""

from __future__ import annotations

import json
import logging
import platform
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import torch
from omegaconf import OmegaConf
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from ssltrain.runtime import dist
from ssltrain.runtime.atomic import atomic_save, atomic_write_text
from ssltrain.runtime.checkpoint import RESULTS_FILE, Checkpointer, Progress, find_resumable, load_checkpoint, run_identity
from ssltrain.config import Settings, parse_config
from ssltrain.data.images import DatasetSplits, make_splits
from ssltrain.data.loader import default_workers
from ssltrain.data.pipeline import pretrain_loader
from ssltrain.engine import Interrupted, PretrainLoop, Precision
from ssltrain.errors import UserError
from ssltrain.eval.data import EvalData
from ssltrain.eval.knn import knn_accuracy
from ssltrain.methods.base import SSLMethod
from ssltrain.registry import DATASETS, ENCODERS, EVALUATORS, METHODS, OPTIMIZERS
from ssltrain.runtime.run_logger import RunLogger
from ssltrain.optim.schedules import OptimizerSchedule, warmup_cosine

log = logging.getLogger("ssltrain")


def select_device(requested: str) -> torch.device:
    if requested == "cuda" and not torch.cuda.is_available():
        raise UserError("trainer.device=cuda but CUDA is not available here; use trainer.device=cpu (or auto)")
    if requested == "auto":
        requested = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(requested)


def select_precision(requested: str, device: torch.device) -> Precision:
    if requested == "auto":
        requested = "bf16" if device.type == "cuda" else "fp32"
    if requested == "fp16" and device.type != "cuda":
        raise UserError("trainer.precision=fp16 needs CUDA; use bf16 or fp32 on the CPU")
    return Precision({"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[requested])


def load_data(settings: Settings) -> DatasetSplits:
    dataset = settings.dataset
    source = DATASETS.build(dataset.name, **dataset.options)
    splits = make_splits(source, dataset.limit, dataset.holdout_fraction, settings.trainer.seed)
    log.info("data: %s, %d training images, evaluation on %s", dataset.name, len(splits.train), splits.val_split)
    return splits


def build_encoder(settings: Settings, image_size: int) -> nn.Module:
    return ENCODERS.build(settings.encoder.name, context={"image_size": image_size}, **settings.encoder.options)


def build_method(settings: Settings, splits: DatasetSplits) -> SSLMethod:
    encoder = build_encoder(settings, splits.image_size)
    context = {"encoder": encoder, "image_size": splits.image_size, "num_classes": splits.num_classes,
               "mean": splits.mean, "std": splits.std}
    method_class = METHODS.get(settings.method.name)
    if encoder.kind not in method_class.encoder_kinds:
        fitting = [name for name in ENCODERS.names() if ENCODERS.build(name, context={"image_size": splits.image_size}).kind in method_class.encoder_kinds]
        raise UserError(f"method {settings.method.name} needs a {' or '.join(method_class.encoder_kinds)} encoder; "
                        f"choose encoder= one of: {', '.join(fitting)}")
    method = METHODS.build(settings.method.name, context=context, **settings.method.options)
    sizes = [view.size or splits.image_size for view in settings.augmentation.views for _ in range(view.count)]
    try:
        method.check_views(sizes)
    except UserError as error:
        raise UserError(f"method {settings.method.name} {error} (augmentation {settings.augmentation.name})") from None
    if method.needs_labels and not splits.train.has_labels:
        raise UserError(f"method {settings.method.name} needs labelled images; {settings.dataset.name} has none")
    return method


@dataclass
class Pretrained:
    """The encoder to evaluate, where the run's outputs go, and what pretraining cost."""

    encoder: nn.Module
    out_dir: Path
    method: Optional[str]  # None for a bare backbone.pt
    encoder_name: str
    epochs: Optional[int]
    seconds: Optional[float] = None
    images: Optional[int] = None
    logger: Optional[RunLogger] = None

    @classmethod
    def from_progress(cls, encoder: nn.Module, out_dir: Path, settings: Settings, progress: Progress,
                      logger: Optional[RunLogger] = None) -> "Pretrained":
        return cls(encoder, out_dir, settings.method.name, settings.encoder.name, progress.epoch,
                   progress.train_seconds, progress.images_seen, logger)


def load_pretrained(path: str, settings: Settings, image_size: int, run_dir: Path) -> Pretrained:
    """The encoder of a run's checkpoints/last.pt (built from that run's config), or the
    configured encoder loaded with a backbone.pt state_dict."""
    state = load_checkpoint(path)
    if "method" in state and "config" in state:
        trained = parse_config(state["config"])
        encoder = build_encoder(trained, image_size)
        weights = {key[len("encoder."):]: value for key, value in state["method"].items() if key.startswith("encoder.")}
        pretrained = Pretrained.from_progress(encoder, run_dir, trained, Progress(**state["progress"]))
    else:
        encoder, weights = build_encoder(settings, image_size), state
        pretrained = Pretrained(encoder, run_dir, None, settings.encoder.name, None)
    try:
        encoder.load_state_dict(weights, strict=True)
    except RuntimeError as error:
        raise UserError(f"the weights in {path} do not fit encoder {pretrained.encoder_name}: {str(error).splitlines()[0]}") from None
    return pretrained


def build_optimizer(settings: Settings, method: SSLMethod, steps_per_epoch: int) -> tuple[torch.optim.Optimizer, OptimizerSchedule]:
    cfg, epochs = settings.optimizer, settings.trainer.epochs
    lr = cfg.lr * settings.trainer.batch_size / 256  # linear scaling rule (Goyal et al., 2017)
    total = max(1, epochs * steps_per_epoch)
    warmup = round(cfg.warmup_epochs * steps_per_epoch)
    lrs = warmup_cosine(lr, cfg.min_lr, total, warmup, cfg.warmup_start_lr)
    wd_end = cfg.weight_decay if cfg.weight_decay_end is None else cfg.weight_decay_end
    wds = warmup_cosine(cfg.weight_decay, wd_end, total)
    optimizer = OPTIMIZERS.build(cfg.name, context={"params": method.param_groups()}, **cfg.options)
    return optimizer, OptimizerSchedule(lrs, wds, base_lr=lr)


@dataclass
class Resumption:
    run_dir: Path  # where this run's outputs go
    state: Optional[dict[str, Any]]  # checkpoint to continue from, if any


def find_resumption(settings: Settings, run_dir: Path, search_roots: list[Path]) -> Resumption:
    resume = settings.trainer.resume
    if resume == "never":
        return Resumption(run_dir, None)
    if resume != "auto":
        return Resumption(run_dir, load_checkpoint(resume))
    found = find_resumable(run_dir, search_roots, run_identity(settings.resolved)) if dist.is_main_process() else None
    found = dist.broadcast_object(found)
    if found is None:
        return Resumption(run_dir, None)
    if found != run_dir:
        log.info("resuming the interrupted run in %s; its outputs continue there", found)
    return Resumption(found, load_checkpoint(found / "checkpoints" / "last.pt"))


def _hparams(settings: Settings) -> dict[str, Any]:
    return {"method": settings.method.name, "encoder": settings.encoder.name, "dataset": settings.dataset.name,
            "augmentation": settings.augmentation.name, "optimizer": settings.optimizer.name,
            "lr": settings.optimizer.lr, "weight_decay": settings.optimizer.weight_decay,
            "epochs": settings.trainer.epochs, "batch_size": settings.trainer.batch_size, "seed": settings.trainer.seed}


def run(settings: Settings, run_dir: Path, search_roots: list[Path]) -> Optional[dict[str, Any]]:
    """Pretrain and evaluate as configured; returns the results (on rank 0)."""
    trainer = settings.trainer
    device = select_device(trainer.device)
    device = dist.init_from_torchrun(device.type) or device
    try:
        return _run(settings, run_dir, search_roots, device)
    finally:
        dist.shutdown()


@dataclass
class Environment:
    """Where and how this process computes."""

    device: torch.device
    precision: Precision
    workers: int
    rank: int = 0
    world: int = 1

    @property
    def main(self) -> bool:
        return self.rank == 0


def _run(settings: Settings, run_dir: Path, search_roots: list[Path], device: torch.device) -> Optional[dict[str, Any]]:
    trainer = settings.trainer
    env = Environment(device, select_precision(trainer.precision, device),
                      default_workers(device) if trainer.num_workers < 0 else trainer.num_workers,
                      dist.rank(), dist.world_size())
    if trainer.batch_size % env.world:
        raise UserError(f"trainer.batch_size={trainer.batch_size} must divide evenly over {env.world} processes")
    splits = load_data(settings)
    eval_data = None
    if settings.eval.name != "none":
        if splits.val is None or not splits.train.has_labels:
            raise UserError(f"evaluation needs labelled images and {settings.dataset.name} has none here; use eval=none")
        eval_data = EvalData(splits.train, splits.val, splits.num_classes, splits.image_size, splits.mean, splits.std,
                             trainer.seed, env.workers, env.precision.dtype)
    torch.manual_seed(trainer.seed)
    if settings.checkpoint:
        pretrained = load_pretrained(settings.checkpoint, settings, splits.image_size, run_dir)
        pretrained.encoder.to(device)
    else:
        pretrained = pretrain(settings, splits, eval_data, env, run_dir, search_roots)
    return evaluate_and_report(settings, splits, eval_data, pretrained, env) if env.main else None


def pretrain(settings: Settings, splits: DatasetSplits, eval_data: Optional[EvalData], env: Environment,
             run_dir: Path, search_roots: list[Path]) -> Pretrained:
    """Build the method, data and optimizer, resume if asked, train; writes backbone.pt."""
    trainer, device = settings.trainer, env.device
    method = build_method(settings, splits).to(device)
    if env.world > 1 and trainer.sync_batchnorm and device.type == "cuda":  # gloo has no SyncBatchNorm
        method = nn.SyncBatchNorm.convert_sync_batchnorm(method)
    if trainer.channels_last:
        method.to(memory_format=torch.channels_last)
    loader = pretrain_loader(splits.train, settings.augmentation, splits.image_size, splits.mean, splits.std,
                             trainer.batch_size // env.world, trainer.seed, device, env.workers, env.rank, env.world,
                             channels_last=trainer.channels_last)
    optimizer, schedule = build_optimizer(settings, method, loader.steps_per_epoch)
    model: Any = method
    if env.world > 1:
        model = DistributedDataParallel(method, device_ids=[device.index] if device.type == "cuda" else None)
    if trainer.compile:
        model = torch.compile(model)

    resumption = find_resumption(settings, run_dir, search_roots)
    out_dir = resumption.run_dir
    loop = PretrainLoop(
        method=method, model=model, optimizer=optimizer, schedule=schedule, loader=loader, precision=env.precision,
        epochs=trainer.epochs, seed=trainer.seed, rank=env.rank, log_every=trainer.log_every,
        image_every=trainer.image_every, knn_every=trainer.knn_every,
        monitor=(lambda: knn_accuracy(method.encoder, eval_data, device)) if env.main and eval_data else None,
        checkpointer=Checkpointer(out_dir, settings.resolved) if env.main else None,
        image_stats=(splits.mean, splits.std),
    )
    progress = Progress()
    if resumption.state is not None:
        progress = loop.restore(resumption.state)
        log.info("resumed at epoch %d, step %d", progress.epoch, progress.step)
    if env.main:
        atomic_write_text(out_dir / "config.yaml", OmegaConf.to_yaml(OmegaConf.create(settings.resolved)))
        loop.logger = RunLogger(out_dir, loop.total_steps, progress.step)
    try:
        progress = loop.run(progress)
    except Interrupted as stop:
        if loop.logger:
            loop.logger.close()
        raise UserError(f"{stop}; checkpoint saved in {out_dir / 'checkpoints'}: rerun the same command to resume") from None
    if loader.skipped_images:
        log.warning("skipped %d unreadable images during pretraining", loader.skipped_images)
    if env.main:
        atomic_save(method.encoder.state_dict(), out_dir / "backbone.pt")
    return Pretrained.from_progress(method.encoder, out_dir, settings, progress, loop.logger)


def evaluate_and_report(settings: Settings, splits: DatasetSplits, eval_data: Optional[EvalData],
                        pretrained: Pretrained, env: Environment) -> dict[str, Any]:
    """Run the configured evaluation; write results.json and the TensorBoard hparams entry."""
    metrics = {}
    if eval_data is not None:
        context = {"encoder": pretrained.encoder, "data": eval_data, "device": env.device, "logger": pretrained.logger}
        metrics = EVALUATORS.build(settings.eval.name, context=context, **settings.eval.options)
    device = env.device
    results = {
        "method": pretrained.method,
        "encoder": pretrained.encoder_name,
        "epochs": pretrained.epochs,
        "dataset": settings.dataset.name,
        "train_images": len(splits.train),
        "val_split": splits.val_split,
        "val_images": len(splits.val) if splits.val is not None else 0,
        "eval": settings.eval.name,
        **metrics,
        "pretrain_seconds": pretrained.seconds,
        "images_per_second": pretrained.images / pretrained.seconds if pretrained.seconds else None,
        "checkpoint": settings.checkpoint,
        "seed": settings.trainer.seed,
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu ({platform.machine()})",
        "torch": torch.__version__,
    }
    atomic_write_text(pretrained.out_dir / RESULTS_FILE, json.dumps(results, indent=2))
    if pretrained.logger:
        pretrained.logger.hparams(_hparams(settings), metrics)
        pretrained.logger.close()
    log.info("results: %s", json.dumps({k: v for k, v in results.items() if k.endswith(("top1", "top5"))}))
    log.info("outputs in %s", pretrained.out_dir)
    return results
