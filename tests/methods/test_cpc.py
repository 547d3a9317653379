"""CPC: the InfoNCE loss against a hand computation, a causal context, a learning run."""

import math

import pytest
import torch

from ssltrain.encoders.small import small_cnn
from ssltrain.errors import UserError
from ssltrain.losses.cpc_infonce import cpc_infonce
from ssltrain.methods.cpc import CPC, CausalContext


def hand_infonce(predictions, embeddings, offsets) -> float:
    """Per offset, the mean over valid guesses of -log softmax over all B*R*C patches."""
    batch, rows, cols, _ = embeddings.shape
    everything = [embeddings[b, i, j] for b in range(batch) for i in range(rows) for j in range(cols)]
    per_offset = []
    for step, k in enumerate(offsets):
        terms = []
        for b in range(batch):
            for i in range(rows - k):
                for j in range(cols):
                    guess = predictions[step, b, i, j]
                    scores = [float(guess @ z) for z in everything]
                    positive = float(guess @ embeddings[b, i + k, j])
                    terms.append(math.log(sum(math.exp(s) for s in scores)) - positive)
        per_offset.append(sum(terms) / len(terms))
    return sum(per_offset) / len(per_offset)


def test_loss_matches_a_hand_computation():
    generator = torch.Generator().manual_seed(0)
    embeddings = torch.randn(2, 4, 3, 5, generator=generator, dtype=torch.float64)
    predictions = torch.randn(2, 2, 4, 3, 5, generator=generator, dtype=torch.float64)
    offsets = [1, 2]
    expected = hand_infonce(predictions, embeddings, offsets)
    assert cpc_infonce(predictions, embeddings, offsets).item() == pytest.approx(expected, rel=1e-10)


def test_loss_ignores_guesses_that_have_no_patch_below():
    generator = torch.Generator().manual_seed(0)
    embeddings = torch.randn(2, 4, 3, 5, generator=generator)
    predictions = torch.randn(1, 2, 4, 3, 5, generator=generator)
    changed = predictions.clone()
    changed[0, :, 2:] = 100.0  # rows 2 and 3 have nothing 2 rows below
    assert torch.equal(cpc_infonce(predictions, embeddings, [2]), cpc_infonce(changed, embeddings, [2]))


def test_context_at_row_i_does_not_depend_on_rows_below():
    context = CausalContext(in_dim=4, width=8, layers=3)
    generator = torch.Generator().manual_seed(0)
    z = torch.randn(2, 6, 5, 4, generator=generator)  # [B, R, C, D]
    for row in range(5):
        below = z.clone()
        below[:, row + 1:] = torch.randn(below[:, row + 1:].shape, generator=generator)
        assert torch.equal(context(below)[:, : row + 1], context(z)[:, : row + 1]), row


def test_context_at_row_i_depends_on_row_i_and_above():
    context = CausalContext(in_dim=4, width=8, layers=3)
    z = torch.randn(2, 6, 5, 4, generator=torch.Generator().manual_seed(0))
    for row in range(6):
        changed = z.clone()
        changed[:, row] += 1.0
        for seen_by in range(row, min(row + 2, 6)):  # its own row and the next one
            assert not torch.allclose(context(changed)[:, seen_by], context(z)[:, seen_by]), (row, seen_by)


@pytest.mark.parametrize("options,message", [
    ({"prediction_steps": 5, "min_offset": 3},
     "method.min_offset=3 with method.prediction_steps=5 predicts rows [3, 4, 5, 6, 7] below, but the grid has 7 rows "
     "(8 px patches at stride 4 on 32 px images); use method.min_offset >= 1 and "
     "method.min_offset + method.prediction_steps <= 7"),
    ({"patch": 40}, "method.patch=40 does not fit 32 px images; use 1 <= method.patch <= 32"),
    ({"stride": 0}, "method.stride=0 must be > 0"),
])
def test_a_patch_grid_the_offsets_do_not_fit_is_a_one_line_error_naming_valid_values(options, message):
    with pytest.raises(UserError) as error:
        CPC(small_cnn(channels=(8, 16)), image_size=32, **options)
    assert str(error.value) == message
