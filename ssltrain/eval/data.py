"""What every evaluator gets: labelled train / val images and how to feed them."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, default_collate

from ssltrain.data.decode import try_load_rgb
from ssltrain.data.unreadable import UNREADABLE
from ssltrain.runtime.progress import bar as progress_bar
from ssltrain.data.images import DatasetSplits, ImageSet, balanced_subset
from ssltrain.runtime.precision import Precision
from ssltrain.augment.pixels import normalize
from ssltrain.augment.per_sample import eval_transform


@dataclass
class EvalData:
    train: ImageSet  # labelled: the pretraining images
    val: ImageSet  # labelled: official test split or seeded holdout
    num_classes: int
    image_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    seed: int
    num_workers: int = 0
    precision: Precision = field(default_factory=lambda: Precision(None))  # of feature extraction and the probes
    dataset: str = "unnamed"  # its config name, for results.json
    val_split: str = "val"  # what `val` is (test split or seeded holdout), for results.json
    class_names: list[str] | None = None  # in label order, for pictures ("0", "1", ... when None)

    @property
    def names(self) -> list[str]:
        return self.class_names or [str(label) for label in range(self.num_classes)]

    @classmethod
    def from_splits(cls, splits: DatasetSplits, dataset: str, seed: int, num_workers: int = 0,
                    precision: Precision = Precision(None)) -> "EvalData":
        return cls(splits.train, splits.val, splits.num_classes, splits.image_size, splits.mean, splits.std, seed,
                   num_workers, precision, dataset, splits.val_split, splits.class_names)

    def with_label_fraction(self, fraction: float) -> "EvalData":
        """The same data with a seeded, class-balanced `fraction` of the labelled training
        images: the semi-supervised protocol (SimCLR, Chen et al. 2020, section 4.2: 1% and 10%)."""
        if fraction >= 1.0:
            return self
        count = max(self.num_classes, round(fraction * len(self.train)))
        chosen = balanced_subset(self.train.labels, count, torch.Generator().manual_seed(self.seed))
        return replace(self, train=self.train.subset(chosen))


class _FileDataset(Dataset):
    """Image files -> (pixels, label, index in the set), or the file's path when unreadable."""

    def __init__(self, images: ImageSet, transform):
        self.images, self.transform = images, transform

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int):
        image = try_load_rgb(self.images, index)
        return self.images.paths[index] if image is None else (self.transform(image), self.images.labels[index], index)


def _collate_readable(samples: list):
    """Unreadable files (their paths) are left out; pixels, labels and indices stay together."""
    kept = [sample for sample in samples if not isinstance(sample, str)]
    return default_collate(kept) if kept else None, [sample for sample in samples if isinstance(sample, str)]


def file_batches(images: ImageSet, transform, batch_size: int, num_workers: int, pin_memory: bool) -> DataLoader:
    """Images streamed from their files (decoded in `num_workers` processes), in order, as
    (readable, skipped) per batch: readable = (pixels [B, 3, H, W], labels [B], indices [B]
    of those images in `images`), or None when none could be read; skipped = the paths of
    the unreadable ones."""
    return DataLoader(_FileDataset(images, transform), batch_size=batch_size, num_workers=num_workers,
                      pin_memory=pin_memory, collate_fn=_collate_readable)


def eval_batches(images: ImageSet, data: EvalData, batch_size: int, device: torch.device, desc: str = "features"):
    """Normalised [B, 3, H, W] batches with labels, in order, without augmentation (with a progress bar)."""
    batches = progress_bar(total=-(-len(images) // batch_size), desc=desc, unit="batch")
    with batches:
        if images.pixels is not None:  # decoded in memory: normalise whole batches at once
            for start in range(0, len(images), batch_size):
                pixels = images.pixels[start : start + batch_size].to(device, non_blocking=True)
                batch = normalize(pixels.permute(0, 3, 1, 2).float().div_(255), data.mean, data.std)
                yield batch.contiguous(memory_format=torch.channels_last), images.labels[start : start + batch_size].to(device)
                batches.update(1)
            return
        transform = eval_transform(data.image_size, data.mean, data.std, resize=True)
        for readable, skipped in file_batches(images, transform, batch_size, data.num_workers, device.type == "cuda"):
            UNREADABLE.report(skipped, len(images), "evaluation")
            batches.update(1)
            if readable is not None:
                batch, labels, _ = readable
                yield batch.to(device, non_blocking=True), labels.to(device, non_blocking=True)


@torch.no_grad()
def extract_features(network: nn.Module, images: ImageSet, data: EvalData, device: torch.device,
                     batch_size: int = 512) -> tuple[torch.Tensor, torch.Tensor]:
    """network(x) for every image -> (features [N, D] float32, labels [N]), on `device`."""
    was_training = network.training
    network.eval()
    features, labels = [], []
    with data.precision.autocast(device.type):
        for batch, batch_labels in eval_batches(images, data, batch_size, device):
            features.append(network(batch).float())
            labels.append(batch_labels)
    network.train(was_training)
    return torch.cat(features), torch.cat(labels)


# Enough images for the running means and variances to settle (a few dozen batches).
BATCHNORM_ESTIMATE_IMAGES = 10_000


@torch.no_grad()
def estimate_batchnorm_statistics(encoder: nn.Module, data: EvalData, device: torch.device,
                                  max_images: int = BATCHNORM_ESTIMATE_IMAGES, batch_size: int = 512) -> int:
    """Replace the encoder's BatchNorm running statistics by their average over (up to
    `max_images` of) the training images as the probes see them; no weight changes.

    A randomly initialised encoder's running statistics are the initial (mean 0, variance
    1), not its activations' on real images, so in eval mode its features are badly scaled
    and a "random encoder" baseline would understate what random features give. Returns
    how many images were used (0 for an encoder without BatchNorm)."""
    norms = [module for module in encoder.modules() if isinstance(module, nn.modules.batchnorm._BatchNorm)]
    if not norms:
        return 0
    momenta = [norm.momentum for norm in norms]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None  # a cumulative average over every batch seen
    was_training = encoder.training
    encoder.train()
    seen = 0
    chosen = torch.randperm(len(data.train), generator=torch.Generator().manual_seed(data.seed))[:max_images]
    images = data.train.subset(chosen.sort().values)  # a seeded sample: the images are stored class by class
    with data.precision.autocast(device.type):
        for batch, _ in eval_batches(images, data, batch_size, device, desc="batchnorm statistics"):
            encoder(batch)
            seen += len(batch)
    for norm, momentum in zip(norms, momenta):
        norm.momentum = momentum
    encoder.train(was_training)
    return seen


def topk_accuracy(scores: torch.Tensor, labels: torch.Tensor, ks: tuple[int, ...] = (1, 5)) -> list[float]:
    """scores: [N, C] (higher = more likely); fraction of rows whose label is in the top k."""
    top = scores.topk(min(max(ks), scores.shape[1]), dim=1).indices  # [N, k]
    hits = top == labels.unsqueeze(1)
    return [hits[:, :k].any(dim=1).float().mean().item() for k in ks]
