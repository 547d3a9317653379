"""trainer.sampler=pk: class-balanced batches of P classes x K images (data/samplers/class_balanced.py
ClassBalancedSampler), seeded, resumable mid-epoch, disjoint across ranks, through both
pretraining loaders."""

from __future__ import annotations

import pytest
import torch

from ssltrain.augment.per_sample import MultiViewTransform
from ssltrain.augment.views import ViewConfig
from ssltrain.data.device_loader import DeviceLoader
from ssltrain.data.images import UNLABELLED, ImageSet
from ssltrain.data.loader import PretrainLoader
from ssltrain.data.samplers import ClassBalancedSampler, make_sampler
from ssltrain.errors import UserError

LABELS = torch.arange(10).repeat_interleave(30)[torch.randperm(300, generator=torch.Generator().manual_seed(1))]
P, K = 5, 4


def _sampler(seed: int = 0, rank: int = 0, world_size: int = 1, labels: torch.Tensor = LABELS) -> ClassBalancedSampler:
    return make_sampler(labels, P * K, seed, rank, world_size, images_per_class=K)  # type: ignore[return-value]


def _batches(sampler: ClassBalancedSampler, epoch: int, start_step: int = 0) -> list[list[int]]:
    sampler.set_epoch(epoch, start_step)
    keys = list(sampler)
    assert all(key_epoch == epoch for key_epoch, _ in keys)
    indices = [index for _, index in keys]
    return [indices[i : i + P * K] for i in range(0, len(indices), P * K)]


def _batches_of(sampler, size: int) -> list[list[int]]:
    indices = sampler.indices(0).tolist()
    return [indices[i : i + size] for i in range(0, len(indices), size)]


def test_every_batch_holds_p_classes_of_k_images_and_an_epoch_uses_each_image_at_most_once():
    sampler = _sampler()
    batches = _batches(sampler, epoch=2)
    # 10 classes x 30 images = 10 x 7 chunks of 4 (2 images per class wait for another epoch): 70 / P = 14 batches
    assert sampler.steps_per_epoch == len(batches) == 14 and len(sampler) == 14 * P * K
    for batch in batches:
        classes, counts = LABELS[batch].unique(return_counts=True)
        assert len(classes) == P and counts.tolist() == [K] * P
    every = sum(batches, [])
    assert len(set(every)) == len(every)


def test_the_order_depends_on_seed_and_epoch_only():
    assert _batches(_sampler(seed=3), epoch=1) == _batches(_sampler(seed=3), epoch=1)
    assert _batches(_sampler(seed=3), epoch=1) != _batches(_sampler(seed=3), epoch=2)
    assert _batches(_sampler(seed=3), epoch=1) != _batches(_sampler(seed=4), epoch=1)


def test_resuming_mid_epoch_gives_the_remaining_batches():
    sampler = _sampler()
    whole = _batches(sampler, epoch=5)
    assert _batches(sampler, epoch=5, start_step=6) == whole[6:]
    assert len(sampler) == (14 - 6) * P * K


def test_ranks_get_disjoint_whole_batches_of_the_same_count():
    shards = [_sampler(rank=rank, world_size=2) for rank in (0, 1)]
    batches = [_batches(sampler, epoch=0) for sampler in shards]
    assert shards[0].steps_per_epoch == shards[1].steps_per_epoch == 7
    assert not set(sum(batches[0], [])) & set(sum(batches[1], []))
    single = _batches(_sampler(), epoch=0)
    assert batches[0] == single[0::2] and batches[1] == single[1::2], "global batch s * world + rank"


def test_unbalanced_classes_deal_as_many_batches_as_distinct_classes_allow():
    labels = torch.tensor([0] * 40 + [1] * 4 + [2] * 4)  # chunks of 4: 10, 1, 1; P = 2 -> only 2 batches
    sampler = make_sampler(labels, 8, 0, images_per_class=4)
    assert sampler.steps_per_epoch == 2
    for batch in _batches_of(sampler, 8):
        assert len(labels[batch].unique()) == 2


@pytest.mark.parametrize("labels, batch_size, per_class, message", [
    (LABELS, 20, 3, "trainer.sampler=pk needs trainer.batch_size (per process: 20) to be a multiple of "
                    "trainer.images_per_class=3"),
    (LABELS, 48, 4, "12 classes per batch, but the data has 10; raise trainer.images_per_class"),
    (torch.full((20,), UNLABELLED), 8, 4, "trainer.sampler=pk draws batches by class and the training images have "
                                          "no labels"),
    (LABELS[:20], 16, 4, "make no 4 x 4 batch of distinct classes"),
])
def test_impossible_settings_fail_in_one_line_naming_the_key(labels, batch_size, per_class, message):
    with pytest.raises(UserError, match=message.replace("(", r"\(").replace(")", r"\)")):
        make_sampler(labels, batch_size, 0, images_per_class=per_class)


def test_both_loaders_yield_the_same_p_by_k_batches():
    pixels = torch.randint(0, 256, (300, 8, 8, 3), generator=torch.Generator().manual_seed(0), dtype=torch.uint8)
    images, stats = ImageSet(labels=LABELS, pixels=pixels), ((0.5,) * 3, (0.25,) * 3)
    device, cpu = (DeviceLoader(images, [ViewConfig()], 8, *stats, batch_size=P * K, seed=2, device=torch.device("cpu"),
                                images_per_class=K),
                   PretrainLoader(images, MultiViewTransform([ViewConfig()], 8, *stats), P * K, 2, torch.device("cpu"),
                                  num_workers=0, images_per_class=K))
    ours, theirs = list(device.epoch(1, start_step=10)), list(cpu.epoch(1, start_step=10))
    assert len(ours) == len(theirs) == 4
    for mine, reference in zip(ours, theirs):
        assert torch.equal(mine.labels, reference.labels)
        assert mine.labels.unique(return_counts=True)[1].tolist() == [K] * P
