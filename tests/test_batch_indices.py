"""Every pretraining loader tells the method which training images a batch holds
(Batch.indices, for instance discrimination): the batched in-memory path, the per-sample
DataLoader path (in-process and in workers, from files with an unreadable one among them),
the streamed path (the same files) and each DDP rank's shard."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

from ssltrain.augment.per_sample import MultiViewTransform
from ssltrain.augment.views import ViewConfig
from ssltrain.data.device_loader import DeviceLoader
from ssltrain.data.images import ImageSet
from ssltrain.data.loader import PretrainLoader
from ssltrain.data.streamed_loader import StreamedLoader

CPU = torch.device("cpu")
MEAN, STD = (0.0, 0.0, 0.0), (1.0, 1.0, 1.0)


def _flat_images(count: int = 12) -> ImageSet:
    """Image i is flat grey of value 10 * i, so a view names its image without augmentation."""
    pixels = (10 * torch.arange(count, dtype=torch.uint8)).view(count, 1, 1, 1).expand(count, 4, 4, 3).contiguous()
    return ImageSet(labels=torch.full((count,), -1), pixels=pixels)


def _image_of(batch) -> torch.Tensor:
    return (batch.views[0][:, 0, 0, 0] * 255 / 10).round().long()  # [B]


@pytest.mark.parametrize("backend", ["batched", "per_sample"])
@pytest.mark.parametrize("world_size", [1, 2])
def test_the_indices_name_the_images_of_the_batch_and_the_ranks_share_out_the_epoch(backend, world_size):
    images, seen = _flat_images(), []
    for rank in range(world_size):
        if backend == "batched":
            loader = DeviceLoader(images, [ViewConfig()], 4, MEAN, STD, batch_size=3, seed=1, device=CPU, rank=rank,
                                  world_size=world_size)
        else:
            loader = PretrainLoader(images, MultiViewTransform([ViewConfig()], 4, MEAN, STD), 3, 1, CPU, num_workers=0,
                                    rank=rank, world_size=world_size)
        for batch in loader.epoch(0):
            assert batch.indices.dtype == torch.long and torch.equal(batch.indices, _image_of(batch))
            seen.append(batch.indices)
    assert sorted(torch.cat(seen).tolist()) == list(range(12)), "every image once per epoch over the ranks"


@pytest.mark.parametrize("backend", ["per_sample", "streamed"])
def test_a_worker_process_and_an_unreadable_file_keep_the_indices_aligned(tmp_path, backend):
    paths = []
    for i in range(6):
        path = tmp_path / f"{i}.png"
        Image.new("RGB", (4, 4), (10 * i,) * 3).save(path)
        paths.append(str(path))
    (tmp_path / "broken.png").write_bytes(b"not an image")
    paths[2] = str(tmp_path / "broken.png")
    images = ImageSet(labels=torch.full((6,), -1), paths=paths)
    if backend == "streamed":
        loader = StreamedLoader(images, [ViewConfig()], 4, MEAN, STD, batch_size=3, seed=1, device=CPU, num_workers=1)
    else:
        loader = PretrainLoader(images, MultiViewTransform([ViewConfig()], 4, MEAN, STD), 3, 1, CPU, num_workers=1)
    batches = list(loader.epoch(0))
    indices = torch.cat([batch.indices for batch in batches])
    assert sorted(indices.tolist()) == [0, 1, 3, 4, 5], "the unreadable image is left out, the others keep their index"
    for batch in batches:
        assert torch.equal(batch.indices, _image_of(batch))
