"""One run, top to bottom: device, data, resume, pretraining, outputs, evaluation.

Everything here takes typed Settings; nothing below cli.py sees a DictConfig. The run
opens its TensorBoard logger once, around pretraining and evaluation, and closes it.
"""

from __future__ import annotations

import json
import logging
import platform
from contextlib import nullcontext
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Optional

import torch
from omegaconf import OmegaConf
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from ssltrain.build import (build_method, build_optimizer, load_data, load_encoder, load_run_encoder, select_device,
                            select_precision)
from ssltrain.config import Settings
from ssltrain.data.images import DatasetSplits
from ssltrain.data.loader import default_workers
from ssltrain.data.paired import PairedLoader, target_seed
from ssltrain.data.pipeline import pretrain_loader
from ssltrain.engine import PretrainLoop, TrainStep
from ssltrain.errors import Stopped, UserError
from ssltrain.eval.data import EvalData, estimate_batchnorm_statistics, extract_features
from ssltrain.eval.knn import knn_accuracy
from ssltrain.methods.base import SSLMethod
from ssltrain.registry import EVALUATORS, METHODS
from ssltrain.runtime import dist
from ssltrain.runtime.atomic import atomic_save, atomic_write_text
from ssltrain.runtime.checkpoint import (CheckpointInterval, Checkpointer, Progress, load_checkpoint, restore,
                                         run_identity, split_checkpoint)
from ssltrain.runtime.run_files import BACKBONE_FILE, CHECKPOINT_DIR, CHECKPOINT_FILE, CONFIG_FILE, RESULTS_FILE
from ssltrain.runtime.precision import Precision
from ssltrain.runtime.run_dir import RunLock, claim
from ssltrain.runtime.run_logger import RunLogger
from ssltrain.runtime.signals import Interrupted

log = logging.getLogger("ssltrain")

# Said with the duration estimate when a run on a CPU would take days.
CPU_HINT = ("a CPU suits a small encoder on a subset, e.g. ssltrain dataset.root=DIR encoder=small_cnn "
            "dataset.limit=5000 trainer.epochs=10 eval=knn")


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


@dataclass
class Pretrained:
    """The encoder to evaluate and what pretraining it had."""

    encoder: nn.Module
    method: Optional[str]  # None for a bare backbone.pt
    encoder_name: str
    image_size: int  # the side of the images it takes
    dataset: Optional[str]  # what it pretrained on (None for a bare backbone.pt)
    epochs: Optional[int]
    seconds: Optional[float] = None
    images: Optional[int] = None  # images processed, over all epochs
    train_images: Optional[int] = None  # size of the training set it pretrained on
    scores: dict[str, float] = field(default_factory=dict)  # the method's own (SSLMethod.reports)

    @classmethod
    def from_progress(cls, encoder: nn.Module, method: str, encoder_name: str, image_size: int, dataset: str,
                      progress: Progress, train_images: Optional[int],
                      scores: Optional[dict[str, float]] = None) -> "Pretrained":
        return cls(encoder, method, encoder_name, image_size, dataset, progress.epoch, progress.train_seconds,
                   progress.images_seen, train_images, scores or {})


@dataclass
class Resumption:
    run_dir: Path  # where this run's outputs go
    state: Optional[dict[str, Any]]  # checkpoint to continue from, if any

    @property
    def step(self) -> int:
        return self.state["progress"]["step"] if self.state else 0


def run(settings: Settings, run_dir: Path, search_roots: list[Path]) -> Optional[dict[str, Any]]:
    """Pretrain and evaluate as configured; returns the results (on rank 0)."""
    device = select_device(settings.trainer.device)
    device = dist.init_from_torchrun(device.type) or device
    try:
        return _run(settings, run_dir, search_roots, device)
    finally:
        dist.shutdown()


def _run(settings: Settings, run_dir: Path, search_roots: list[Path], device: torch.device) -> Optional[dict[str, Any]]:
    trainer = settings.trainer
    env = Environment(device, select_precision(trainer.precision, device),
                      default_workers(device) if trainer.num_workers < 0 else trainer.num_workers,
                      dist.rank(), dist.world_size())
    if trainer.batch_size % (env.world * trainer.accumulate_steps):
        raise UserError(f"trainer.batch_size={trainer.batch_size} must divide evenly over {env.world} processes x "
                        f"trainer.accumulate_steps={trainer.accumulate_steps} micro-batches")
    directory, resumes, lock = claim_run_dir(settings, run_dir, search_roots)
    with lock or nullcontext():
        resumption = Resumption(directory, resume_state(settings, directory, resumes))
        # a checkpoint that does not fit says so before any image is decoded
        pretrained = load_pretrained(settings.checkpoint, settings) if settings.checkpoint else None
        splits = None if pretrained and settings.eval_dataset else \
            load_data(settings.dataset, trainer.seed, pretrained.image_size if pretrained else None)
        eval_data = evaluation_data(settings, splits, env, pretrained.image_size if pretrained else splits.image_size)
        torch.manual_seed(trainer.seed)
        return _pretrain_and_evaluate(settings, splits, eval_data, env, resumption, pretrained)


def _pretrain_and_evaluate(settings: Settings, splits: Optional[DatasetSplits], eval_data: Optional[EvalData],
                           env: Environment, resumption: Resumption, pretrained: Optional["Pretrained"]
                           ) -> Optional[dict[str, Any]]:
    """pretrained: a checkpoint's encoder to evaluate; None: pretrain on `splits` first."""
    with RunLogger(resumption.run_dir, resumption.step) if env.main else nullcontext() as logger:
        if pretrained is not None:
            pretrained.encoder.to(env.device)
        else:
            pretrained = pretrain(settings, splits, eval_data, env, resumption, logger)
        if not env.main:
            return None
        return evaluate_and_report(settings, eval_data, pretrained, env, resumption.run_dir, logger)


def evaluation_data(settings: Settings, splits: Optional[DatasetSplits], env: Environment,
                    image_size: int) -> Optional[EvalData]:
    """The labelled images the configured evaluator needs (eval_dataset's, at the encoder's
    input size `image_size`, else the pretraining dataset's), or None when it needs none."""
    if not EVALUATORS.accepts(settings.eval.name, "data"):
        return None
    key, dataset = ("eval_dataset", settings.eval_dataset) if settings.eval_dataset else ("dataset", settings.dataset)
    if settings.eval_dataset:
        splits = load_data(settings.eval_dataset, settings.trainer.seed, image_size, "evaluation data")
    if splits.val is None or not splits.train.has_labels:
        raise UserError(f"eval={settings.eval.name} needs labelled images and {key}={dataset.name} has none here; "
                        f"give {key} a labelled copy (root/train/<class>/*), or use eval=none")
    return EvalData.from_splits(splits, dataset.name, settings.trainer.seed, env.workers, env.precision)


def load_pretrained(path: str, settings: Settings) -> Pretrained:
    """The encoder of a run's checkpoints/last.pt (built from that run's config, at its image
    size), or the configured encoder (at dataset.image_size) loaded with a backbone.pt state_dict."""
    state = load_checkpoint(path)
    config, weights = split_checkpoint(state)
    if config is None:
        image_size = settings.dataset.options["image_size"]
        encoder = load_encoder(settings.encoder, image_size, weights, path)
        return Pretrained(encoder, None, settings.encoder.name, image_size, None, None)
    encoder, encoder_settings, dataset = load_run_encoder(config, weights, path)
    return Pretrained.from_progress(encoder, config["method"]["name"], encoder_settings.name,
                                    dataset.options["image_size"], dataset.name, Progress(**state["progress"]),
                                    state.get("train_images"))


def claim_run_dir(settings: Settings, run_dir: Path, search_roots: list[Path]) -> tuple[Path, bool, Optional[RunLock]]:
    """(where this run writes, whether it continues the run there, rank 0's lock on it):
    runtime/run_dir.claim decides on rank 0; every rank learns the outcome, or the error."""
    identity = None if settings.checkpoint else run_identity(settings.resolved)
    lock, outcome = None, None
    if dist.is_main_process():
        try:
            claimed = claim(run_dir, search_roots, identity, settings.trainer.resume == "auto")
            lock, outcome = claimed.lock, (str(claimed.run_dir), claimed.resumes, None)
        except UserError as error:
            outcome = (None, False, str(error))
    directory, resumes, error = dist.broadcast_object(outcome)
    if error:
        raise UserError(error)
    return Path(directory), resumes, lock


def resume_state(settings: Settings, directory: Path, resumes: bool) -> Optional[dict[str, Any]]:
    """The checkpoint this run continues from: its folder's, trainer.resume=PATH's, or none."""
    if resumes:
        return load_checkpoint(directory / CHECKPOINT_DIR / CHECKPOINT_FILE)
    resume = settings.trainer.resume
    return None if resume in ("auto", "never") else load_checkpoint(resume, "trainer.resume")


def pretrain(settings: Settings, splits: DatasetSplits, eval_data: Optional[EvalData], env: Environment,
             resumption: Resumption, logger: Optional[RunLogger]) -> Pretrained:
    """Build the method, data and optimizer, resume if asked, train; writes backbone.pt."""
    trainer, device, out_dir = settings.trainer, env.device, resumption.run_dir
    if METHODS.get(settings.method.name).needs_labels and not splits.train.has_labels:
        raise UserError(f"method {settings.method.name} needs labelled images; {settings.dataset.name} has none")
    method = build_method(settings, splits.image_size, splits.mean, splits.std, splits.num_classes, len(splits.train))
    # two-domain methods: the target's training images at the source's size, normalised as the source's
    target = load_data(settings.target_dataset, trainer.seed, splits.image_size, "target data") \
        if method.needs_target else None
    method.to(device)
    if env.world > 1 and trainer.sync_batchnorm and device.type == "cuda":  # gloo has no SyncBatchNorm
        method = nn.SyncBatchNorm.convert_sync_batchnorm(method)
    if trainer.channels_last:
        method.to(memory_format=torch.channels_last)
    loader = pretrain_loader(splits.train, settings.augmentation, splits.image_size, splits.mean, splits.std,
                             trainer.batch_size // env.world, trainer.seed, device, env.workers, env.rank, env.world,
                             channels_last=trainer.channels_last,
                             images_per_class=trainer.images_per_class if trainer.sampler == "pk" else None)
    if target is not None:
        loader = PairedLoader(loader, pretrain_loader(
            target.train, settings.augmentation, splits.image_size, splits.mean, splits.std,
            trainer.batch_size // env.world, target_seed(trainer.seed), device, env.workers, env.rank, env.world,
            channels_last=trainer.channels_last))
    optimizer, schedule = build_optimizer(settings, method, loader.steps_per_epoch)
    model: Any = method
    if env.world > 1:
        model = DistributedDataParallel(method, device_ids=[device.index] if device.type == "cuda" else None)
    if trainer.compile:
        model = torch.compile(model)
    step = TrainStep(method, model, optimizer, schedule, trainer.epochs * loader.steps_per_epoch, device.type,
                     env.precision, trainer.seed, env.rank, trainer.clip_grad, trainer.accumulate_steps)
    progress = Progress()
    if resumption.state is not None:
        progress = restore(resumption.state, method, optimizer, step.scaler)
        log.info("resumed at epoch %d, step %d", progress.epoch, progress.step)
    if env.main:
        atomic_write_text(out_dir / CONFIG_FILE, OmegaConf.to_yaml(OmegaConf.create(settings.resolved)))
    checkpointer = Checkpointer(out_dir, settings.resolved, len(splits.train)) if env.main else None
    loop = PretrainLoop(
        step=step, loader=loader, epochs=trainer.epochs, world_size=env.world, log_every=trainer.log_every,
        image_every=trainer.image_every, knn_every=trainer.knn_every,
        checkpoint_every=CheckpointInterval.parse(trainer.checkpoint_every),
        monitor=(lambda: knn_accuracy(method.encoder, eval_data, device)) if env.main and eval_data else None,
        logger=logger, checkpointer=checkpointer, image_stats=(splits.mean, splits.std),
        slow_hint=CPU_HINT if device.type == "cpu" else "",
    )
    try:
        progress = loop.run(progress)
    except Interrupted as stop:
        where = checkpointer.written if checkpointer else None
        raise Stopped(f"{stop}; checkpoint saved as {where}: rerun the same command to resume") from None
    if trainer.epochs == 0 and eval_data is not None:
        images = estimate_batchnorm_statistics(method.encoder, eval_data, device)
        log.info("random-init baseline: BatchNorm statistics estimated on %d training images, no weight updated", images)
    if env.main:
        atomic_save(method.encoder.state_dict(), out_dir / BACKBONE_FILE)
    scores = held_out_scores(method, splits, target, settings.trainer.seed, env) if env.main else {}
    return Pretrained.from_progress(method.encoder, settings.method.name, settings.encoder.name, splits.image_size,
                                    settings.dataset.name, progress, len(splits.train), scores)


def held_out_scores(method: SSLMethod, splits: DatasetSplits, target: Optional[DatasetSplits], seed: int,
                    env: Environment) -> dict[str, float]:
    """What the method's own heads score (SSLMethod.reports) on the held-out labelled images
    of each domain it trained on, normalised as in training (the source's statistics)."""
    if not method.reports:
        return {}
    features = {}
    for domain, data in (("source", splits), ("target", target)):
        if data is not None and data.val is not None and data.val.has_labels:
            fed = replace(EvalData.from_splits(data, domain, seed, env.workers, env.precision), mean=splits.mean,
                          std=splits.std, image_size=splits.image_size)
            features[domain] = extract_features(method.encoder, data.val, fed, env.device)
    return method.held_out_metrics(features)


def _hparams(settings: Settings) -> dict[str, Any]:
    return {"method": settings.method.name, "encoder": settings.encoder.name, "dataset": settings.dataset.name,
            "augmentation": settings.augmentation.name, "optimizer": settings.optimizer.name,
            "lr": settings.optimizer.lr, "weight_decay": settings.optimizer.weight_decay,
            "epochs": settings.trainer.epochs, "batch_size": settings.trainer.batch_size, "seed": settings.trainer.seed}


def evaluate_and_report(settings: Settings, eval_data: Optional[EvalData], pretrained: Pretrained, env: Environment,
                        out_dir: Path, logger: Optional[RunLogger]) -> dict[str, Any]:
    """Run the configured evaluator; write results.json and the TensorBoard hparams entry."""
    context = {"encoder": pretrained.encoder, "data": eval_data, "device": env.device, "logger": logger}
    metrics = EVALUATORS.build(settings.eval.name, context=context, **settings.eval.options)
    device = env.device
    results = {
        "method": pretrained.method,
        "encoder": pretrained.encoder_name,
        "epochs": pretrained.epochs,
        "dataset": pretrained.dataset,  # pretraining's (None for a bare backbone.pt)
        "train_images": pretrained.train_images,
        "eval_dataset": eval_data.dataset if eval_data else None,
        "eval_train_images": len(eval_data.train) if eval_data else 0,
        "val_split": eval_data.val_split if eval_data else None,
        "val_images": len(eval_data.val) if eval_data else 0,
        "eval": ",".join(settings.eval.evaluators),
        **pretrained.scores,
        **metrics,
        "pretrain_seconds": pretrained.seconds,
        "images_per_second": pretrained.images / pretrained.seconds if pretrained.seconds else None,
        "checkpoint": settings.checkpoint,
        "seed": settings.trainer.seed,
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu ({platform.machine()})",
        "torch": torch.__version__,
    }
    atomic_write_text(out_dir / RESULTS_FILE, json.dumps(results, indent=2))
    if logger:
        logger.hparams(_hparams(settings), metrics)
    log.info("results: %s", json.dumps({k: v for k, v in results.items() if k.endswith(("top1", "top5"))}))
    log.info("outputs in %s", out_dir)
    return results
