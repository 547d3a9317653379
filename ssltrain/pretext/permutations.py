"""Permutation sets far apart in Hamming distance, the classes of a jigsaw puzzle.

Noroozi & Favaro, "Unsupervised Learning of Visual Representations by Solving Jigsaw
Puzzles", ECCV 2016, https://arxiv.org/abs/1603.09246, section 3.3 and Algorithm 1: pick
permutations one at a time, each the candidate farthest from those already picked, so
that two classes never differ by a swap of a few tiles.

Here "farthest" is max-min: the candidate whose smallest Hamming distance to the set is
largest; ties go to the larger summed distance (Algorithm 1's criterion), then to the
earlier candidate in a seeded random order. Candidates are every permutation when there
are at most `candidates` of them, else `candidates` seeded random permutations (9! =
362,880 take seconds to enumerate; 20,000 random ones reach the same minimum distance
for the set sizes below, in well under a second).

Minimum pairwise distance reached for 9 tiles, 20,000 candidates, seed 0 (tests check
the first): 64 permutations -> 7, 100 -> 6, 1000 -> 5. With every permutation as a
candidate and at most as many permutations as tiles, the minimum is the number of
tiles: each set picked so far is a Latin rectangle, and a Latin rectangle can always be
extended by a row that differs from every row everywhere (Hall's marriage theorem).
"""

from __future__ import annotations

import itertools
import math
from functools import lru_cache

import torch

from ssltrain.errors import UserError


def _candidates(length: int, limit: int, generator: torch.Generator) -> torch.Tensor:
    """[M, length] permutations in a seeded random order: all of them, or `limit` random ones."""
    if math.factorial(length) <= limit:
        every = torch.tensor(list(itertools.permutations(range(length))), dtype=torch.int64)
        return every[torch.randperm(len(every), generator=generator)]
    return torch.rand(limit, length, generator=generator).argsort(dim=1)


@lru_cache(maxsize=16)
def _select(count: int, length: int, candidates: int, seed: int) -> torch.Tensor:
    pool = _candidates(length, candidates, torch.Generator().manual_seed(seed))  # [M, L]
    if count > len(pool):
        raise ValueError(f"{count} permutations asked for, but only {len(pool)} candidates")
    nearest = torch.full((len(pool),), length + 1, dtype=torch.int64)  # min distance to the chosen set
    total = torch.zeros(len(pool), dtype=torch.int64)  # summed distance to the chosen set
    chosen = [0]  # the first candidate is a random permutation (Algorithm 1, line 2)
    for _ in range(count - 1):
        distance = (pool != pool[chosen[-1]]).sum(dim=1)  # [M]
        nearest = torch.minimum(nearest, distance)
        total += distance
        # lexicographic (nearest, total): total < length * count + 1 never outweighs nearest
        best = int((nearest * (length * count + 1) + total).argmax())
        if nearest[best] == 0:
            raise UserError(f"only {len(chosen)} distinct permutations among {len(pool)} random candidates; raise "
                            f"method.permutation_candidates or lower method.num_permutations")
        chosen.append(best)
    return pool[chosen]


def max_hamming_permutations(count: int, length: int = 9, candidates: int = 20_000, seed: int = 0) -> torch.Tensor:
    """`count` distinct permutations of range(length), greedily spread apart in Hamming
    distance (see the module docstring). Deterministic in its arguments and cached per
    process. Returns [count, length] int64; row p, entry j: the tile placed at position j."""
    return _select(count, length, candidates, seed).clone()
