"""Fine-tuning: the encoder plus a new linear head, trained on labelled, augmented images.

The first `freeze_stages` stages of the encoder stay frozen (weights and BatchNorm
statistics); -1 freezes all of them, which is the linear probe with augmentation. The
backbone gets its own, usually smaller, learning rate.
"""

from __future__ import annotations

import copy
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from ssltrain.augment.views import ViewConfig
from ssltrain.data.loader import PretrainLoader
from ssltrain.augment.per_sample import MultiViewTransform
from ssltrain.encoders.base import stage_parameters
from ssltrain.eval.data import EvalData, extract_features, topk_accuracy
from ssltrain.eval.knn import KNN_METRICS, knn_accuracy
from ssltrain.eval.pictures import report_classifier
from ssltrain.registry import EVALUATORS
from ssltrain.runtime.run_files import LABEL_COUNTS
from ssltrain.runtime.progress import bar as progress_bar
from ssltrain.runtime.run_logger import RunLogger
from ssltrain.optim.schedules import warmup_cosine

# Light augmentation for supervised training: crop covering half the image or more, flip.
TRAIN_VIEW = ViewConfig(crop_scale=(0.5, 1.0), crop_ratio=(3 / 4, 4 / 3), flip_p=0.5)


def _freeze(encoder: nn.Module, count: int) -> list[nn.Module]:
    """Freeze the first `count` stages (-1: all) and train the rest, parameters that
    pretraining held fixed included (MAE's sine-cosine positions, MoCo v3's patch
    projection: their reference fine-tuning trains them); returns the frozen modules, to
    keep in eval mode."""
    encoder.requires_grad_(True)
    stages = encoder.stages()
    frozen = stages if count < 0 else stages[:count]
    modules = []
    for stage in frozen:
        for param in stage_parameters(stage):
            param.requires_grad_(False)
        modules.extend(part for part in stage if isinstance(part, nn.Module))
    return modules


def train_classifier(encoder: nn.Module, data: EvalData, device: torch.device, epochs: int, lr: float,
                     backbone_lr: float, batch_size: int, weight_decay: float, freeze_stages: int,
                     logger: Optional[RunLogger] = None, tag: str = "finetune") -> tuple[torch.Tensor, torch.Tensor]:
    """Train `encoder` itself (pass a copy to keep the original) + a linear head; returns
    its (logits [N, C], labels [N]) on data.val."""
    backbone = encoder.to(device)
    frozen_modules = _freeze(backbone, freeze_stages)
    head = nn.Linear(backbone.out_dim, data.num_classes).to(device)
    model = nn.Sequential(backbone, head)
    groups = [{"params": list(head.parameters()), "base_lr": lr}]
    trainable = [p for p in backbone.parameters() if p.requires_grad]
    if trainable:
        groups.append({"params": trainable, "base_lr": backbone_lr})
    optimizer = torch.optim.SGD(groups, lr=lr, momentum=0.9, nesterov=True, weight_decay=weight_decay)
    transform = MultiViewTransform([TRAIN_VIEW], data.image_size, data.mean, data.std)
    loader = PretrainLoader(data.train, transform, batch_size, data.seed, device, data.num_workers,
                            batch_key="eval.batch_size")
    schedule = warmup_cosine(1.0, 0.0, epochs * loader.steps_per_epoch).tolist()
    step = 0
    for epoch in progress_bar(range(epochs), desc=tag, unit="epoch"):
        model.train()
        for module in frozen_modules:
            module.eval()
        total = torch.zeros((), device=device)
        for batch in loader.epoch(epoch):
            for group in optimizer.param_groups:
                group["lr"] = group["base_lr"] * schedule[step]
            with data.precision.autocast(device.type):
                loss = F.cross_entropy(model(batch.views[0]), batch.labels)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += loss.detach()
            step += 1
        if logger:
            logger.scalars({f"{tag}_train_loss": (total / loader.steps_per_epoch).item()}, epoch, prefix="eval")
    return extract_features(model, data.val, data, device)


def classifier_results(tag: str, logits: torch.Tensor, labels: torch.Tensor, data: EvalData,
                       logger: Optional[RunLogger]) -> dict[str, float]:
    """<tag>_top1 and <tag>_top5 of a classifier's evaluation-split logits [N, C], and its
    confusion matrix and per-class accuracy in pictures/."""
    top1, top5 = topk_accuracy(logits, labels)
    report_classifier(logger, tag, labels, logits.argmax(dim=1), data.names)
    return {f"{tag}_top1": top1, f"{tag}_top5": top5}


@EVALUATORS.register("finetune", metrics=("finetune_top1", "finetune_top5", *KNN_METRICS, *LABEL_COUNTS))
def finetune(encoder: nn.Module, data: EvalData, device: torch.device, logger: Optional[RunLogger] = None,
             epochs: int = 30, lr: float = 0.1, backbone_lr: float = 0.01, batch_size: int = 256,
             weight_decay: float = 5e-4, freeze_stages: int = 0, knn: bool = True,
             label_fraction: float = 1.0) -> dict[str, float]:
    """knn: also report kNN accuracy of the encoder before fine-tuning; label_fraction: train
    (and vote, for kNN) with this seeded, class-balanced share of the labelled images."""
    data = data.with_label_fraction(label_fraction)
    results = knn_accuracy(encoder, data, device) if knn else {}
    logits, labels = train_classifier(copy.deepcopy(encoder), data, device, epochs, lr, backbone_lr, batch_size,
                                      weight_decay, freeze_stages, logger)
    results.update(classifier_results("finetune", logits, labels, data, logger))
    return {**results, "label_fraction": label_fraction, "labelled_images": len(data.train)}
