"""Which layer transfers: a linear probe on the pooled output of each encoder stage.

The layer-wise analysis of the colorization and split-brain papers (Zhang et al., 2016,
2017: a linear classifier on each conv layer of the frozen network). A stage is an entry of
the encoder's `stages()` (ResNet: stem, layer1..layer4; the small CNN: its blocks; ViT: the
patch embedding, then each block); its output is pooled to [B, C]: a feature map by its
spatial mean, ViT tokens as the encoder pools its final ones (class token or patch mean).
One pass over the images gives every stage's features (forward hooks); each stage then gets
its own probe (linear.fit_linear, on standardised features).
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import nn

from ssltrain.errors import UserError
from ssltrain.eval.data import EvalData, extract_features, topk_accuracy
from ssltrain.eval.linear import fit_linear
from ssltrain.registry import EVALUATORS
from ssltrain.runtime.run_files import LABEL_COUNTS
from ssltrain.runtime.run_logger import RunLogger

# Encoders with more stages than this (ViTs: one per block) are probed at a few depths.
ALL_STAGES_MAX = 6


def default_stages(count: int) -> list[int]:
    """Every stage of a short encoder; of a deep one, the stages at a quarter, half, three
    quarters and all of its depth."""
    if count <= ALL_STAGES_MAX:
        return list(range(count))
    return sorted({round(quarter * (count - 1) / 4) for quarter in (1, 2, 3, 4)})


def chosen_stages(encoder: nn.Module, stages: Optional[list[int]]) -> list[int]:
    """The stages to probe (default_stages when None); UserError for an index the encoder lacks."""
    count = len(encoder.stages())
    chosen = default_stages(count) if stages is None else list(stages)
    if not chosen or any(not 0 <= index < count for index in chosen):
        raise UserError(f"eval.stages={chosen}: {type(encoder).__name__} has stages 0 to {count - 1}")
    return chosen


def _pool(output: torch.Tensor, token_pool: str) -> torch.Tensor:
    if output.dim() == 4:  # [B, C, h, w]
        return output.mean(dim=(2, 3))
    if output.dim() == 3:  # ViT tokens [B, 1 + N, D], class token first
        return output[:, 0] if token_pool == "cls" else output[:, 1:].mean(dim=1)
    return output.flatten(1)


class StageFeatures(nn.Module):
    """encoder -> the chosen stages' pooled outputs side by side [B, sum of their widths];
    `widths` tells the columns apart after the first forward."""

    def __init__(self, encoder: nn.Module, stages: list[int]):
        super().__init__()
        self.encoder = encoder
        last_modules = [[part for part in stage if isinstance(part, nn.Module)][-1] for stage in encoder.stages()]
        self.outputs: dict[int, torch.Tensor] = {}
        self.hooks = [last_modules[index].register_forward_hook(self._keeper(index)) for index in stages]
        self.stages = stages
        self.widths: list[int] = []

    def _keeper(self, index: int):
        token_pool = getattr(self.encoder, "pool", "cls")

        def keep(module, inputs, output):
            self.outputs[index] = _pool(output, token_pool).float()
        return keep

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        self.encoder(images)
        pooled = [self.outputs.pop(index) for index in self.stages]
        self.widths = [part.shape[1] for part in pooled]
        return torch.cat(pooled, dim=1)

    def remove(self) -> None:
        for hook in self.hooks:
            hook.remove()


@EVALUATORS.register("layers", metrics=("stage*_top1", "stage*_top5", *LABEL_COUNTS))
def layers(encoder: nn.Module, data: EvalData, device: torch.device, logger: Optional[RunLogger] = None,
           stages: Optional[list[int]] = None, epochs: int = 100, lr: float = 0.1, batch_size: int = 256,
           weight_decay: float = 0.0, label_fraction: float = 1.0) -> dict[str, float]:
    """stages: indices into the encoder's stages() (null: all of a CNN's, four depths of a
    ViT's); the rest as eval=linear. Reports stage<i>_top1 / stage<i>_top5 per stage."""
    stages = chosen_stages(encoder, stages)
    data = data.with_label_fraction(label_fraction)
    probe = StageFeatures(encoder, stages)
    try:
        train_features, train_labels = extract_features(probe, data.train, data, device)
        val_features, val_labels = extract_features(probe, data.val, data, device)
    finally:
        probe.remove()
    results: dict[str, float] = {}
    for index, train_part, val_part in zip(stages, train_features.split(probe.widths, dim=1),
                                           val_features.split(probe.widths, dim=1)):
        with torch.enable_grad():
            classifier = fit_linear(train_part, train_labels, data.num_classes, epochs, lr, batch_size, weight_decay,
                                    data.seed)
        with torch.no_grad():
            results[f"stage{index}_top1"], results[f"stage{index}_top5"] = topk_accuracy(classifier(val_part), val_labels)
    if logger:
        for index in stages:
            logger.scalars({"layer_probe_top1": results[f"stage{index}_top1"]}, index, prefix="eval")
    return {**results, "label_fraction": label_fraction, "labelled_images": len(data.train)}
