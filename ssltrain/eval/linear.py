"""Linear probe: a linear classifier on the frozen encoder's features.

Without augmentation (the default) the features are computed once and the classifier
trains on them, which makes 100 epochs cost seconds. The features are standardised with
the training set's mean and std first (a fixed affine map, so the probe stays linear),
which makes one learning rate work across methods whose feature scales differ widely.
With augment=true the classifier trains through the frozen encoder on augmented
images instead (the fine-tuning loop with every stage frozen).
"""

from __future__ import annotations

import copy
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from ssltrain.eval.data import EvalData, extract_features
from ssltrain.eval.finetune import classifier_results, train_classifier
from ssltrain.eval.knn import KNN_METRICS, knn_metrics
from ssltrain.registry import EVALUATORS
from ssltrain.runtime.run_files import LABEL_COUNTS
from ssltrain.runtime.progress import bar as progress_bar
from ssltrain.runtime.run_logger import RunLogger
from ssltrain.optim.schedules import warmup_cosine


def fit_linear(features: torch.Tensor, labels: torch.Tensor, num_classes: int, epochs: int, lr: float,
               batch_size: int, weight_decay: float, seed: int, logger: Optional[RunLogger] = None) -> nn.Module:
    """SGD (momentum 0.9) with a cosine schedule on precomputed features -> classifier."""
    mean, std = features.mean(0), features.std(0).clamp_min(1e-6)
    layer = nn.Linear(features.shape[1], num_classes).to(features.device)
    optimizer = torch.optim.SGD(layer.parameters(), lr=lr, momentum=0.9, weight_decay=weight_decay)
    steps_per_epoch = max(1, len(features) // batch_size)
    lrs = warmup_cosine(lr, 0.0, epochs * steps_per_epoch).tolist()
    standardised = (features - mean) / std
    generator = torch.Generator().manual_seed(seed)
    step = 0
    for epoch in progress_bar(range(epochs), desc="linear probe", unit="epoch"):
        order = torch.randperm(len(features), generator=generator).to(features.device)
        total = torch.zeros((), device=features.device)
        for start in range(0, steps_per_epoch * batch_size, batch_size):
            index = order[start : start + batch_size]
            loss = F.cross_entropy(layer(standardised[index]), labels[index])
            optimizer.param_groups[0]["lr"] = lrs[step]
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += loss.detach()
            step += 1
        if logger:
            logger.scalars({"linear_train_loss": (total / steps_per_epoch).item()}, epoch, prefix="eval")
    return _Standardised(mean, std, layer)


class _Standardised(nn.Module):
    def __init__(self, mean: torch.Tensor, std: torch.Tensor, layer: nn.Linear):
        super().__init__()
        self.register_buffer("mean", mean)
        self.register_buffer("std", std)
        self.layer = layer

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.layer((features - self.mean) / self.std)


@EVALUATORS.register("linear", metrics=("linear_top1", "linear_top5", *KNN_METRICS, *LABEL_COUNTS))
def linear(encoder: nn.Module, data: EvalData, device: torch.device, logger: Optional[RunLogger] = None,
           epochs: int = 100, lr: float = 0.1, batch_size: int = 256, weight_decay: float = 0.0,
           augment: bool = False, knn: bool = True, label_fraction: float = 1.0) -> dict[str, float]:
    """knn: also report kNN accuracy (free once the features exist); label_fraction: train
    (and vote, for kNN) with this seeded, class-balanced share of the labelled images."""
    data = data.with_label_fraction(label_fraction)
    train_features, train_labels = extract_features(encoder, data.train, data, device)
    val_features, val_labels = extract_features(encoder, data.val, data, device)
    results = knn_metrics((train_features, train_labels), (val_features, val_labels), data.num_classes) if knn else {}
    if augment:
        logits, labels = train_classifier(copy.deepcopy(encoder), data, device, epochs=epochs, lr=lr, backbone_lr=0.0,
                                          batch_size=batch_size, weight_decay=weight_decay, freeze_stages=-1,
                                          logger=logger, tag="linear")
    else:
        with torch.enable_grad():
            classifier = fit_linear(train_features, train_labels, data.num_classes, epochs, lr, batch_size,
                                    weight_decay, data.seed, logger)
        with torch.no_grad():
            logits, labels = classifier(val_features), val_labels
    results.update(classifier_results("linear", logits, labels, data, logger))
    return {**results, "label_fraction": label_fraction, "labelled_images": len(data.train)}
