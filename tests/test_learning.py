"""SimCLR learns on real images: the check every method repeats (see conftest.learn)."""

import pytest


@pytest.mark.learning
def test_simclr_pretraining_beats_a_random_encoder_on_heldout_knn(learn):
    result = learn(["method=simclr"], epochs=6)
    assert result["gain"] >= 0.03, result
