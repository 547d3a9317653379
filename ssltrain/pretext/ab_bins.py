"""The quantised ab colour space of colorization as classification.

Zhang, Isola & Efros, "Colorful Image Colorization", ECCV 2016,
https://arxiv.org/abs/1603.08511, section 2.1-2.3: ab is split into a grid of bins (size
10 gives the paper's 313 in-gamut bins), targets are soft-encoded over the 5 nearest bins
(Gaussian kernel, sigma 5), rare colours are up-weighted by the inverse of the smoothed
empirical bin distribution mixed with a uniform one (lambda 0.5), and a prediction is
turned back into a colour by the annealed mean (temperature 0.38).
"""

from __future__ import annotations

import torch

from ssltrain.pretext.color import rgb_to_lab


@torch.no_grad()
def gamut_bins(grid: float, levels: int = 64) -> torch.Tensor:
    """[Q, 2] ab centres (multiples of `grid`) of the grid cells that sRGB colours reach,
    found by converting a levels^3 lattice of the RGB cube to Lab."""
    axis = torch.linspace(0, 1, levels)
    rgb = torch.stack(torch.meshgrid(axis, axis, axis, indexing="ij")).reshape(1, 3, -1, 1)  # [1, 3, levels^3, 1]
    ab = rgb_to_lab(rgb)[0, 1:, :, 0].T  # [levels^3, 2]
    return torch.unique(torch.round(ab / grid), dim=0) * grid  # [Q, 2]


def bin_distances(ab: torch.Tensor, centres: torch.Tensor) -> torch.Tensor:
    """[B, 2, H, W] colours, [Q, 2] centres -> [B*H*W, Q] Euclidean distances."""
    pixels = ab.float().permute(0, 2, 3, 1).reshape(-1, 2)  # [B*H*W, 2]
    return torch.cdist(pixels, centres.float())  # [B*H*W, Q]


def soft_encode(ab: torch.Tensor, centres: torch.Tensor, neighbours: int, sigma: float) -> torch.Tensor:
    """[B, 2, H, W] -> [B, Q, H, W] target distributions: each pixel's `neighbours` nearest
    bins, weighted by a Gaussian of their distance (sigma in ab units), summing to 1."""
    batch, _, height, width = ab.shape
    distances, nearest = bin_distances(ab, centres).topk(neighbours, dim=1, largest=False)  # [N, k] each
    weights = torch.softmax(-distances.pow(2) / (2 * sigma**2), dim=1)  # [N, k]
    targets = torch.zeros(len(weights), len(centres), device=ab.device).scatter_(1, nearest, weights)  # [N, Q]
    return targets.view(batch, height, width, -1).permute(0, 3, 1, 2)  # [B, Q, H, W]


def nearest_bin(ab: torch.Tensor, centres: torch.Tensor) -> torch.Tensor:
    """[B, 2, H, W] -> [B, H, W] index of each pixel's nearest bin."""
    batch, _, height, width = ab.shape
    return bin_distances(ab, centres).argmin(dim=1).view(batch, height, width)


def bin_histogram(bins: torch.Tensor, count: int) -> torch.Tensor:
    """[...] bin indices -> [count] fraction of them in each bin (no host sync)."""
    flat = bins.reshape(-1)
    hits = torch.zeros(count, device=bins.device).scatter_add_(0, flat, torch.ones(len(flat), device=bins.device))
    return hits / len(flat)


def rebalancing_weights(distribution: torch.Tensor, centres: torch.Tensor, mix: float, sigma: float) -> torch.Tensor:
    """[Q] empirical bin distribution -> [Q] weights w ∝ ((1 - mix) * p_smooth + mix / Q)^-1,
    scaled so that sum_q p_smooth_q w_q = 1 (Zhang et al. eq. 4), where p_smooth is the
    distribution convolved with a Gaussian of `sigma` over the bin centres."""
    kernel = torch.exp(-torch.cdist(centres.float(), centres.float()).pow(2) / (2 * sigma**2))  # [Q, Q]
    smooth = (kernel * distribution.float()).sum(dim=1)  # [Q]
    smooth = smooth / smooth.sum()
    weights = 1.0 / ((1 - mix) * smooth + mix / len(centres))  # [Q]
    return weights / (smooth * weights).sum()


def annealed_mean(logits: torch.Tensor, centres: torch.Tensor, temperature: float) -> torch.Tensor:
    """[B, Q, H, W] bin scores -> [B, 2, H, W] ab: the mean of softmax(log p / T), the
    paper's interpolation between the mode (T -> 0) and the mean (T = 1)."""
    probs = torch.softmax(logits.float() / temperature, dim=1)  # [B, Q, H, W]; log softmax / T differs by a constant
    return torch.einsum("bqhw,qc->bchw", probs, centres.float())
