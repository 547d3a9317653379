"""The method contract: the engine calls only what is defined here.

A method owns the encoder and everything else it trains (projectors, predictors,
momentum copies, queues). `training_step` returns a dict with at least "loss"; every
other scalar in it is logged. The hooks default to doing nothing.
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch
from torch import nn

from ssltrain.augment.pixels import RGB
from ssltrain.data.batch import Batch
from ssltrain.errors import UserError
from ssltrain.optim.param_groups import default_param_groups


class SSLMethod(nn.Module):
    #: how many views the method trains on: (fewest, most); most None = no limit
    views: tuple[int, int | None] = (1, None)
    #: True for methods that read batch.labels (supervised baselines)
    needs_labels: bool = False
    #: True for methods that train on two datasets: batch.target holds target_dataset's batch
    needs_target: bool = False
    #: encoder kinds the method works with ("cnn", "vit"; see encoders/base.py)
    encoder_kinds: tuple[str, ...] = ("cnn", "vit")
    #: False for methods whose encoder sees tiles cut from the views, not the views themselves
    encodes_views: bool = True
    #: True for methods whose loss couples the images of a batch (in-batch negatives, batch
    #: statistics, Sinkhorn, a queue or centre updated by every forward): trained in
    #: micro-batches (trainer.accumulate_steps) it would be another objective, so they refuse
    #: it. The others' losses are means over images, so K micro-batches give the batch's gradient
    couples_batch: bool = False
    #: the numbers the method's own heads score on held-out images (held_out_metrics), which
    #: a run adds to results.json: e.g. DANN's label classifier on each domain
    reports: tuple[str, ...] = ()

    def __init__(self, encoder: nn.Module):
        super().__init__()
        self.encoder = encoder

    def held_out_metrics(self, features: dict[str, tuple[torch.Tensor, torch.Tensor]]) -> dict[str, float]:
        """The numbers named in `reports`, from the encoder's features of the held-out labelled
        images of each domain the method trained on: {"source": (features [N, D], labels [N]),
        "target": ...}, a domain left out when its held-out images have no labels."""
        return {}

    @staticmethod
    def encoder_module(encoder: nn.Module, mean: RGB, std: RGB) -> nn.Module:
        """The module the method trains as `self.encoder`, made from the configured encoder
        for images normalised by (mean, std): what backbone.pt holds and evaluation probes.
        The encoder itself, unless the method builds its representation around it; loading a
        run's weights (build.load_run_encoder) builds the same module."""
        return encoder

    def forward(self, batch: Batch) -> dict[str, torch.Tensor]:
        # DDP synchronises gradients of what runs inside forward(), so the step lives here
        return self.training_step(batch)

    def training_step(self, batch: Batch) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def check_views(self, sizes: Sequence[int]) -> None:
        """Raise UserError unless the method can train on views of these sides (pixels, in
        the augmentation's order): their number, and each side the encoder must take.
        Called before any work starts; methods with more demands (multi-crop) extend it."""
        fewest, most = self.views
        if len(sizes) < fewest or (most is not None and len(sizes) > most):
            wanted = f"{fewest}" if fewest == most else f"{fewest} or more" if most is None else f"{fewest} to {most}"
            raise UserError(f"trains on {wanted} views but the augmentation makes {len(sizes)}; "
                            f"choose another augmentation")
        if self.encodes_views:
            for index, side in enumerate(sizes):
                try:
                    self.encoder.check_input_size(side)
                except UserError as error:
                    raise UserError(f"cannot encode view {index} ({side} px): {error}") from None

    def on_step_start(self, step: int, total_steps: int) -> None:
        """Before the forward pass: per-iteration schedules (e.g. a teacher temperature)."""

    def after_optimizer_step(self, step: int, total_steps: int) -> None:
        """After the update: momentum (EMA) copies, prototype normalisation, ..."""

    def param_groups(self) -> list[dict]:
        """Optimizer groups; override to give parts their own lr (see schedules.py flags)."""
        return default_param_groups(self)

    def images(self, batch: Batch) -> dict[str, torch.Tensor]:
        """Image grids to log ([N, 3, H, W] in [0, 1]) for methods that make images."""
        return {}


def encode_views(views: Sequence[torch.Tensor], network: Callable[[torch.Tensor], torch.Tensor]) -> list[torch.Tensor]:
    """`network` on each view, running views of the same size as one batch, so BatchNorm
    normalises them together. For the methods whose reference code concatenates views:
    SimCLR (its TF code), SupCon (SupContrast's main_supcon.py), and DINO / SwAV, whose
    multi-crop wrapper runs the crops of one resolution together. Returns one output per view."""
    outputs: list[torch.Tensor | None] = [None] * len(views)
    by_size: dict[tuple[int, ...], list[int]] = {}
    for index, view in enumerate(views):
        by_size.setdefault(tuple(view.shape[1:]), []).append(index)
    for indices in by_size.values():
        chunk = network(torch.cat([views[i] for i in indices]))
        for i, part in zip(indices, chunk.chunk(len(indices))):
            outputs[i] = part
    return outputs  # type: ignore[return-value]


def encode_each(views: Sequence[torch.Tensor], network: Callable[[torch.Tensor], torch.Tensor]) -> list[torch.Tensor]:
    """`network` on each view on its own, so BatchNorm normalises, and keeps running
    statistics of, one view at a time. For the methods whose reference code runs the views
    one by one: BYOL, SimSiam, MoCo v2 and v3, NNCLR, Barlow Twins, VICReg."""
    return [network(view) for view in views]
