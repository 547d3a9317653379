"""The pretraining order over tar shards: every rank, and every read stream of a rank,
reads its own shards, and an epoch sees no image twice.

An epoch deals the shards, whole, to `world_size x streams` read streams, largest first to
the stream holding the fewest images (ties between equal shards broken at random, and the
streams shuffled onto ranks, both seeded by (seed, epoch)): each epoch gives each rank
other shards, but the streams' loads are the same every epoch, so an epoch has the same
number of steps. Each stream yields `per_stream` batches of its images in a seeded random
order, where `per_stream` is the smallest stream's image count // batch size; the images
of a stream beyond that wait for a later epoch (a different set each epoch). A rank's step
i is its stream i % streams' next batch; DataLoader hands step i to worker i % num_workers,
so when num_workers divides `streams` each worker reads the shards of its own streams only.

As for EpochSampler, an epoch's order depends only on (seed, epoch, world_size, streams),
never on the worker count: a run resumed mid-epoch continues with the very batches it had
not trained on. (dataset.streams is part of the run's identity; a resumed run with another
world size deals the shards anew, see the README's "Streaming from shards".)
"""

from __future__ import annotations

import heapq
import logging

import torch

from ssltrain.data.images import ShardMembers
from ssltrain.data.samplers.epoch import EpochSampler
from ssltrain.errors import UserError

log = logging.getLogger(__name__)


def deal_largest_first(counts: list[int], slots: int) -> tuple[list[list[int]], list[int]]:
    """Shards of these image counts, taken in the order given, each to the least loaded of
    `slots` streams (the lowest-numbered on a tie) -> (each stream's shard positions, each
    stream's image count)."""
    heap = [(0, slot) for slot in range(slots)]
    dealt: list[list[int]] = [[] for _ in range(slots)]
    for shard, count in enumerate(counts):
        load, slot = heapq.heappop(heap)
        dealt[slot].append(shard)
        heapq.heappush(heap, (load + count, slot))
    return dealt, [load for load, _ in sorted(heap, key=lambda pair: pair[1])]


def stream_loads(counts: list[int], slots: int) -> list[int]:
    """Images per stream when shards of these sizes are dealt largest first (which the
    dealing of any epoch reproduces: only equal sizes change places)."""
    return deal_largest_first(sorted(counts, reverse=True), slots)[1]


class ShardSampler(EpochSampler):
    """(epoch, index) keys for one rank over shard members; see the module's docstring."""

    def __init__(self, shards: ShardMembers, batch_size: int, seed: int, rank: int = 0, world_size: int = 1,
                 batch_key: str = "trainer.batch_size"):
        self.batch_size, self.seed, self.rank, self.world_size = batch_size, seed, rank, world_size
        self.streams = shards.streams
        shard_of = shards.table[:, 0]  # [N]
        self.shard_ids, counts = shard_of.unique(return_counts=True)  # [S], [S]
        slots = world_size * self.streams
        if len(self.shard_ids) < slots:
            raise UserError(f"{len(self.shard_ids)} shards cannot give each of {world_size} process(es) x "
                            f"dataset.streams={self.streams} read streams a shard of its own; write smaller shards "
                            f"(scripts/make_shards.py --shard-size) or lower dataset.streams")
        self.size = len(shard_of)
        self.members = shard_of.argsort(stable=True).split(counts.tolist())  # per shard: its images' indices
        self.counts = counts
        smallest = min(stream_loads(counts.tolist(), slots))
        self.per_stream = smallest // batch_size
        if self.per_stream == 0:
            raise UserError(f"the smallest of {slots} read streams holds {smallest} images, no full batch of "
                            f"{batch_key}={batch_size} per process; lower it or dataset.streams")
        self.steps_per_epoch = self.streams * self.per_stream
        self.epoch, self.start_step = 0, 0
        if rank == 0:
            seen = self.steps_per_epoch * batch_size * world_size
            log.info("shards: %d images in %d shards, dealt to %d process(es) x %d streams; an epoch is %d steps and "
                     "trains on %d images (%d wait for a later epoch, others each time)", self.size,
                     len(self.shard_ids), world_size, self.streams, self.steps_per_epoch, seen, self.size - seen)

    def deal(self, epoch: int) -> list[list[int]]:
        """The epoch's shards (positions in self.shard_ids) of each of the world's read
        streams; stream g belongs to rank g // streams."""
        generator = torch.Generator().manual_seed(self.seed * 10_007 + epoch)
        slots = self.world_size * self.streams
        priority = self.counts.double() + torch.rand(len(self.counts), generator=generator, dtype=torch.float64)
        order = priority.argsort(descending=True).tolist()  # largest first, equal sizes in a random order
        dealt_in_order, _ = deal_largest_first([int(self.counts[shard]) for shard in order], slots)
        dealt = [[order[position] for position in positions] for positions in dealt_in_order]
        placement = torch.randperm(slots, generator=generator).tolist()  # slot -> world stream
        streams: list[list[int]] = [[] for _ in range(slots)]
        for slot, stream in enumerate(placement):
            streams[stream] = dealt[slot]
        return streams

    def indices(self, epoch: int) -> torch.Tensor:
        """This rank's image indices for the whole epoch, [steps_per_epoch * batch_size]."""
        streams = self.deal(epoch)[self.rank * self.streams : (self.rank + 1) * self.streams]
        batches = []
        for number, shards in enumerate(streams):
            images = torch.cat([self.members[shard] for shard in shards])
            generator = torch.Generator().manual_seed((self.seed * 10_007 + epoch) * 65_537 + self.rank * self.streams + number)
            order = images[torch.randperm(len(images), generator=generator)][: self.per_stream * self.batch_size]
            batches.append(order.view(self.per_stream, self.batch_size))  # [per_stream, B]
        return torch.stack(batches, dim=1).flatten()  # step i: stream i % streams, its batch i // streams
