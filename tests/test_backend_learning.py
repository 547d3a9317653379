"""The batched backend trains as well as the per-sample CPU pipeline it replaces."""

import pytest


@pytest.mark.slow
@pytest.mark.learning
def test_simclr_learns_as_well_with_the_batched_backend_as_with_the_cpu_one(learn):
    batched = learn(["method=simclr", "augmentation.backend=gpu"], epochs=6)
    per_sample = learn(["method=simclr", "augmentation.backend=cpu"], epochs=6)
    assert batched["gain"] >= 0.03, batched
    assert batched["trained_knn_top1"] >= per_sample["trained_knn_top1"] - 0.02, (batched, per_sample)
