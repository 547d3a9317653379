"""sRGB <-> CIE Lab (D65 white), pure tensor code on [B, 3, H, W] images.

The formulas are the standard ones (IEC 61966-2-1 sRGB transfer curve, the sRGB -> XYZ
matrix for the D65 white point, CIE 1976 L*a*b*). Matrix products are written as
broadcast sums so that autocast never runs them in reduced precision, and everything is
computed in float32: callers get float32 back whatever they pass in.

RGB is in [0, 1]; L in [0, 100]; a, b roughly in [-110, 110] for sRGB colours.
"""

from __future__ import annotations

import torch

# sRGB (linear) -> XYZ for the D65 white point (IEC 61966-2-1)
RGB_TO_XYZ = (
    (0.4124564, 0.3575761, 0.1804375),
    (0.2126729, 0.7151522, 0.0721750),
    (0.0193339, 0.1191920, 0.9503041),
)
XYZ_TO_RGB = (
    (3.2404542, -1.5371385, -0.4985314),
    (-0.9692660, 1.8760108, 0.0415560),
    (0.0556434, -0.2040259, 1.0572252),
)
D65_WHITE = (0.95047, 1.0, 1.08883)  # XYZ of the reference white, Y = 1
DELTA = 6.0 / 29.0  # where the Lab curve switches from linear to a cube root


def _mix(matrix: tuple[tuple[float, ...], ...], images: torch.Tensor) -> torch.Tensor:
    """out[:, i] = sum_j matrix[i][j] * images[:, j] for [B, 3, H, W] images."""
    weights = torch.tensor(matrix, dtype=images.dtype, device=images.device).view(1, 3, 3, 1, 1)
    return (weights * images.unsqueeze(1)).sum(dim=2)  # [B, 3, H, W]


def _white(images: torch.Tensor) -> torch.Tensor:
    return torch.tensor(D65_WHITE, dtype=images.dtype, device=images.device).view(1, 3, 1, 1)


def srgb_to_linear(rgb: torch.Tensor) -> torch.Tensor:
    return torch.where(rgb <= 0.04045, rgb / 12.92, ((rgb.clamp(min=0.04045) + 0.055) / 1.055) ** 2.4)


def linear_to_srgb(linear: torch.Tensor) -> torch.Tensor:
    curve = 1.055 * linear.clamp(min=0.0031308) ** (1 / 2.4) - 0.055
    return torch.where(linear <= 0.0031308, 12.92 * linear, curve)


def _lab_curve(t: torch.Tensor) -> torch.Tensor:
    return torch.where(t > DELTA**3, t.clamp(min=DELTA**3) ** (1 / 3), t / (3 * DELTA**2) + 4 / 29)


def _lab_curve_inverse(f: torch.Tensor) -> torch.Tensor:
    return torch.where(f > DELTA, f.clamp(min=DELTA) ** 3, 3 * DELTA**2 * (f - 4 / 29))


def rgb_to_lab(rgb: torch.Tensor) -> torch.Tensor:
    """[B, 3, H, W] sRGB in [0, 1] -> [B, 3, H, W] (L, a, b)."""
    xyz = _mix(RGB_TO_XYZ, srgb_to_linear(rgb.float())) / _white(rgb.float())  # [B, 3, H, W]
    fx, fy, fz = _lab_curve(xyz).unbind(dim=1)  # [B, H, W] each
    return torch.stack([116 * fy - 16, 500 * (fx - fy), 200 * (fy - fz)], dim=1)


def lab_to_rgb(lab: torch.Tensor) -> torch.Tensor:
    """[B, 3, H, W] (L, a, b) -> [B, 3, H, W] sRGB, not clipped: colours outside the sRGB
    gamut come back outside [0, 1] (clamp them to show them)."""
    lightness, a, b = lab.float().unbind(dim=1)  # [B, H, W] each
    fy = (lightness + 16) / 116
    f = torch.stack([fy + a / 500, fy, fy - b / 200], dim=1)  # [B, 3, H, W]
    xyz = _lab_curve_inverse(f) * _white(f)
    return linear_to_srgb(_mix(XYZ_TO_RGB, xyz))


def lightness_image(lab: torch.Tensor) -> torch.Tensor:
    """[B, 3, H, W] Lab -> [B, 3, H, W] sRGB in [0, 1] of its lightness alone (a, b = 0: grey,
    R = G = B), so that a network taking RGB can see L without an input adapter."""
    return lab_to_rgb(torch.cat([lab[:, :1], torch.zeros_like(lab[:, 1:])], dim=1)).clamp(0, 1)


def chroma_image(lab: torch.Tensor, lightness: float = 50.0) -> torch.Tensor:
    """[B, 3, H, W] Lab -> [B, 3, H, W] sRGB in [0, 1] of its colour (a, b) alone, at a fixed
    `lightness` (clamped where that colour leaves the sRGB gamut)."""
    return lab_to_rgb(torch.cat([torch.full_like(lab[:, :1], lightness), lab[:, 1:]], dim=1)).clamp(0, 1)
