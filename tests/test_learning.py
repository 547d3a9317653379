"""Every method learns on real images: a short pretraining beats the same encoder at random
initialisation on held-out images, by the margin in learning_checks.yaml (the table holds
each check's settings). SimCLR's runs in the default suite; the others with `-m slow`."""

import pytest

from learning_check import load_table

MARGIN, CHECKS = load_table()


def _marks(name: str) -> list:
    return [pytest.mark.learning] + ([] if CHECKS[name].default_suite else [pytest.mark.slow])


@pytest.mark.parametrize("name", [pytest.param(name, marks=_marks(name)) for name in CHECKS])
def test_pretraining_beats_the_random_encoder_on_held_out_images(name, learn):
    result = learn(CHECKS[name])
    assert result["gain"] >= MARGIN, result
