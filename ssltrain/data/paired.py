"""Two datasets in one step: the pretraining loader's batches, each carrying a batch of a
second (target) dataset's loader in `Batch.target`, for the methods that train on two
domains (`SSLMethod.needs_target`: DANN's unlabelled target, CycleGAN's domain B).

An epoch is the source's; the target cycles through its own epochs alongside, from the
position the global step gives it, so a resumed run draws the same target batches as
one that never stopped. Both loaders keep their own seeded order and augmentation.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Iterator

from ssltrain.data.batch import Batch
from ssltrain.data.pipeline import Loader


def target_seed(seed: int) -> int:
    """The target loader's seed: its own image order and augmentation draws, not the source's."""
    return seed + 1_000_003


class PairedLoader:
    """Yields the source's `Batch`es with `target` set, for one source epoch at a time."""

    def __init__(self, source: Loader, target: Loader):
        self.source, self.target = source, target

    @property
    def steps_per_epoch(self) -> int:
        return self.source.steps_per_epoch

    def _targets(self, position: int) -> Iterator[Batch]:
        """The target's batches from global step `position` on, through as many epochs as asked."""
        epoch, step = divmod(position, self.target.steps_per_epoch)
        while True:
            yield from self.target.epoch(epoch, step)
            epoch, step = epoch + 1, 0

    def epoch(self, epoch: int, start_step: int = 0) -> Iterator[Batch]:
        targets = self._targets(epoch * self.steps_per_epoch + start_step)
        try:
            for batch in self.source.epoch(epoch, start_step):
                yield replace(batch, target=next(targets))
        finally:
            targets.close()
