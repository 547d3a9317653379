"""Jigsaw permutation sets: valid, distinct, spread apart, deterministic."""

import itertools

import pytest
import torch

from ssltrain.pretext.permutations import _select, max_hamming_permutations


def min_pairwise_hamming(rows: list[list[int]]) -> int:
    return min(sum(x != y for x, y in zip(a, b)) for a, b in itertools.combinations(rows, 2))


def test_every_member_is_a_permutation_of_the_tile_indices():
    perms = max_hamming_permutations(64)
    assert perms.shape == (64, 9) and perms.dtype == torch.int64
    assert all(sorted(row) == list(range(9)) for row in perms.tolist())


def test_the_set_has_the_asked_number_of_distinct_members():
    perms = max_hamming_permutations(64)
    assert len({tuple(row) for row in perms.tolist()}) == 64


def test_the_default_set_of_64_reaches_minimum_hamming_distance_7():
    # the value documented in permutations.py, measured here pair by pair
    assert min_pairwise_hamming(max_hamming_permutations(64).tolist()) == 7


@pytest.mark.parametrize("length", [3, 4, 5, 6])
def test_with_every_candidate_up_to_length_permutations_differ_in_every_position(length):
    # a Latin rectangle always extends, so greedy max-min never settles for less
    perms = max_hamming_permutations(length, length=length, candidates=10_000)
    assert min_pairwise_hamming(perms.tolist()) == length


def test_the_set_is_the_same_when_recomputed_and_depends_on_the_seed():
    first = max_hamming_permutations(64)
    _select.cache_clear()
    assert torch.equal(max_hamming_permutations(64), first)
    assert not torch.equal(max_hamming_permutations(64, seed=1), first)


def test_callers_get_a_copy_of_the_cached_set():
    perms = max_hamming_permutations(64)
    perms[0] = 0
    assert sorted(max_hamming_permutations(64)[0].tolist()) == list(range(9))


def test_asking_for_more_permutations_than_exist_fails():
    with pytest.raises(ValueError, match="only 6 candidates"):
        max_hamming_permutations(7, length=3)
