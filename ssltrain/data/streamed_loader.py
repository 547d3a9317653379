"""The streamed backend (augmentation.backend=streamed): large images read from their files
every epoch, each sample's geometry in DataLoader workers, the colour ops batched on the
training device.

"Streamed" names the data it serves: images too large to decode into memory, read from
disk (or, through EncodedViews, any source of encoded bytes) as the batched backend's
decoded tensors never are. Per sample, a worker reads the file's bytes, decodes them
(torchvision.io: libjpeg-turbo for JPEG) and cuts each view's crop, resized to the view's
size and flipped (data/encoded_views.py), so only uint8 [3, s, s] views travel to the main
process. There the batch's colour jitter, grayscale, blur, solarization and normalisation
run as the batched backend's ops (augment/batched.py: ColourAugment). On CUDA the workers
only read bytes: the GPU decodes the batch's JPEGs together (decode_jpeg on a list) and
crops them there (data/device_decode.py).

Seeds, as the other backends: a sample's crops from loader.sample_seed(seed, epoch, index),
a batch's colour from device_loader.batch_seed(seed, epoch, step, rank); so the views
depend on neither the worker count nor an interruption, and the sampler order is the other
backends'. An unreadable file is left out of its batch and reported once (UNREADABLE).
"""

from __future__ import annotations

from typing import Iterator, Optional, Sequence

import torch
from torch.utils.data import Dataset

from ssltrain.augment.batched import ColourAugment
from ssltrain.augment.views import ViewConfig
from ssltrain.data.batch import Batch
from ssltrain.data.device_decode import decode_and_crop
from ssltrain.data.device_loader import batch_seed
from ssltrain.data.encoded_views import EncodedViews, read_encoded
from ssltrain.data.images import ImageSet
from ssltrain.data.loader import collate_readable, collate_views, report_unreadable, sample_seed, worker_loader
from ssltrain.data.samplers import make_sampler
from ssltrain.errors import UserError


class EncodedImageDataset(Dataset):
    """(epoch, index) -> (views, label, index), or the path of a file that cannot be read or
    decoded (collate_views leaves it out). Without `views` the item carries the file's bytes
    in the views' place, for the device to decode (collate_encoded)."""

    def __init__(self, images: ImageSet, views: Optional[EncodedViews], seed: int):
        self.images, self.views, self.seed = images, views, seed

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, key: tuple[int, int]):
        epoch, index = key
        content = read_encoded(self.images, index)
        if content is not None and self.views is not None:
            content = self.views(content, sample_seed(self.seed, epoch, index))
        return self.images.paths[index] if content is None else (content, int(self.images.labels[index]), index)


def collate_encoded(samples: list) -> dict:
    """collate_views for items that carry bytes: "encoded", a list of 1-D uint8 tensors, not stacked."""
    return collate_readable(samples, "encoded", list)


class StreamedLoader:
    """Yields device `Batch`es for one epoch at a time, from any step of that epoch."""

    def __init__(self, images: ImageSet, views: Sequence[ViewConfig], image_size: int, mean: Sequence[float],
                 std: Sequence[float], batch_size: int, seed: int, device: torch.device, num_workers: int,
                 rank: int = 0, world_size: int = 1, channels_last: bool = False,
                 images_per_class: Optional[int] = None):
        if images.paths is None:
            raise UserError("augmentation.backend=streamed reads image files and this dataset is decoded in memory; "
                            "use augmentation.backend=batched (or auto)")
        self.sampler = make_sampler(images.labels, batch_size, seed, rank, world_size, images_per_class,
                                    shards=images.members)
        self.crops = EncodedViews(views, image_size)
        self.on_device = device.type == "cuda"  # decode on the GPU: the workers only read bytes
        dataset = EncodedImageDataset(images, None if self.on_device else self.crops, seed)
        self.loader = worker_loader(dataset, self.sampler, device, num_workers,
                                    collate_encoded if self.on_device else collate_views)
        self.colour = ColourAugment(views, image_size, mean, std)
        self.device, self.seed, self.rank, self.images = device, seed, rank, images
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.generator = torch.Generator(device=device)

    @property
    def steps_per_epoch(self) -> int:
        return self.sampler.steps_per_epoch

    def epoch(self, epoch: int, start_step: int = 0) -> Iterator[Batch]:
        self.sampler.set_epoch(epoch, start_step)
        for step, raw in enumerate(self.loader, start_step):
            if self.on_device:
                indices = raw["indices"].tolist()
                raw = decode_and_crop(raw, [self.images.paths[i] for i in indices],
                                      [sample_seed(self.seed, epoch, i) for i in indices], self.crops, self.device)
            report_unreadable(raw, len(self.images), epoch)
            crops = [view.to(self.device, non_blocking=True) for view in raw["views"]]  # uint8 [B, 3, s, s] from workers
            self.generator.manual_seed(batch_seed(self.seed, epoch, step, self.rank))
            yield Batch(views=[view.contiguous(memory_format=self.memory_format) for view in self.colour(crops, self.generator)],
                        labels=raw["labels"].to(self.device, non_blocking=True),
                        indices=raw["indices"].to(self.device, non_blocking=True))
