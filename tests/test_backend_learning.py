"""The batched backend trains as well as the per-sample pipeline it replaces."""

from dataclasses import replace

import pytest

from learning_check import load_table

MARGIN, CHECKS = load_table()


@pytest.mark.slow
@pytest.mark.learning
def test_simclr_learns_as_well_with_the_batched_backend_as_with_the_per_sample_one(learn):
    simclr = CHECKS["simclr"]
    batched = learn(replace(simclr, overrides=[*simclr.overrides, "augmentation.backend=batched"]))
    per_sample = learn(replace(simclr, overrides=[*simclr.overrides, "augmentation.backend=per_sample"]))
    assert batched["gain"] >= MARGIN, batched
    metric = simclr.metric
    assert batched[f"trained_{metric}"] >= per_sample[f"trained_{metric}"] - MARGIN, (batched, per_sample)
