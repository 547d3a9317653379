"""Image ops on whole batches with one parameter per sample, as plain tensor code.

Each op takes float images [B, 3, H, W] in [0, 1] and per-sample parameters ([B] or
[B, k] tensors on the same device) and computes what torchvision.transforms.v2.functional
computes for one image with that sample's parameter, for every sample at once: no Python
loop over samples, no host sync. They run on any device (CPU tests cover them).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ssltrain.augment.pixels import device_constant

GRAY_WEIGHTS = (0.2989, 0.587, 0.114)  # ITU-R 601-2 luma, as torchvision's rgb_to_grayscale
SOLARIZE_THRESHOLD = 128 / 255  # the CPU pipeline solarizes uint8 pixels >= 128


def _column(values: torch.Tensor) -> torch.Tensor:
    """[B] -> [B, 1, 1, 1], to broadcast a per-sample value over an image batch."""
    return values.view(-1, 1, 1, 1)


def resize_weights(start: torch.Tensor, length: torch.Tensor, in_size: int, out_size: int) -> torch.Tensor:
    """Per-sample linear maps [B, out_size, in_size] that crop the interval
    [start, start + length) of an axis and resize it to out_size pixels.

    Bilinear with antialiasing, as torch's `interpolate(..., antialias=True)` (the filter
    that torchvision's resize uses): output pixel o centred at start + (o + 0.5) * scale in
    input coordinates (scale = length / out_size) takes the triangle filter of half-width
    max(scale, 1) over the crop's pixels, renormalised where the crop's edge cuts it. For
    upsampling this is plain bilinear with edge clamping.
    """
    start, length = start.float().view(-1, 1, 1), length.float().view(-1, 1, 1)  # [B, 1, 1]
    scale = length / out_size
    support = scale.clamp(min=1.0)
    outputs = torch.arange(out_size, device=start.device, dtype=torch.float32).view(1, -1, 1)  # [1, out, 1]
    pixels = torch.arange(in_size, device=start.device, dtype=torch.float32).view(1, 1, -1)  # [1, 1, in]
    centre = start + (outputs + 0.5) * scale  # [B, out, 1]
    weights = (1.0 - ((pixels + 0.5 - centre) / support).abs()).clamp(min=0.0)  # [B, out, in]
    weights = weights * ((pixels >= start) & (pixels < start + length))
    return weights / weights.sum(dim=-1, keepdim=True)


def resized_crop(images: torch.Tensor, boxes: torch.Tensor, size: int) -> torch.Tensor:
    """Crop boxes [B, 4] (top, left, height, width; in pixels) out of images [B, 3, H, W]
    (uint8 or float in [0, 1]) and resize each to size x size: two batched matmuls.
    Returns float [B, 3, size, size] in [0, 1]."""
    height, width = images.shape[-2:]
    rows = resize_weights(boxes[:, 0], boxes[:, 2], height, size)  # [B, size, H]
    cols = resize_weights(boxes[:, 1], boxes[:, 3], width, size)  # [B, size, W]
    pixels = images.float() / 255 if images.dtype == torch.uint8 else images.float()
    resized = rows.unsqueeze(1) @ pixels @ cols.transpose(1, 2).unsqueeze(1)  # [B, 3, size, size]
    return resized.clamp(0.0, 1.0)


def hflip(images: torch.Tensor, flip: torch.Tensor) -> torch.Tensor:
    """Mirror the samples where flip [B] (bool) is set."""
    return torch.where(_column(flip), images.flip(-1), images)


def grayscale(images: torch.Tensor) -> torch.Tensor:
    """Luma [B, 1, H, W]."""
    weights = device_constant(GRAY_WEIGHTS, images.device)  # [3]
    return (weights @ images.flatten(2)).view(len(images), 1, *images.shape[2:])  # [3] @ [B, 3, HW]


def random_grayscale(images: torch.Tensor, apply: torch.Tensor) -> torch.Tensor:
    """Grayscale (kept as 3 equal channels) where apply [B] is set."""
    return torch.where(_column(apply), grayscale(images).expand_as(images), images)


# Colour jitter ops, in torchvision's numbering (the order ColorJitter permutes).
BRIGHTNESS, CONTRAST, SATURATION, HUE = range(4)
NO_OP = 4


def blend_op(images: torch.Tensor, op: torch.Tensor, factors: torch.Tensor) -> torch.Tensor:
    """Per sample, one of the three blend adjustments, or nothing where op is NO_OP or HUE.

    op: [B] in 0..4; factors: [B, 4] (brightness, contrast, saturation, hue). Each blend is
    clamp(f * x + (1 - f) * target, 0, 1) with target 0 (brightness), the mean luma
    (contrast) or the luma (saturation), as torchvision's adjust_* ops; computed as
    f * x + offset + weight * luma with per-sample offset and weight, so one pass serves
    all three (f = 1, offset = weight = 0 leaves a sample exactly as it was).
    """
    factor = torch.where(op < HUE, factors.gather(1, op.clamp(max=SATURATION).unsqueeze(1)).squeeze(1), 1.0)  # [B]
    luma = grayscale(images)  # [B, 1, H, W]
    offset = torch.where(op == CONTRAST, (1.0 - factor) * luma.mean(dim=(1, 2, 3)), 0.0)  # [B]
    weight = torch.where(op == SATURATION, 1.0 - factor, 0.0)  # [B]
    blended = torch.addcmul(_column(offset), images, _column(factor))  # [B, 3, H, W]
    return blended.addcmul_(luma, _column(weight)).clamp_(0.0, 1.0)


def adjust_hue(images: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """Rotate the HSV hue of each sample by shift [B] (a fraction of the circle).

    RGB -> (hue in sixths, value = max, chroma = max - min); each channel comes back as
    value - chroma * clamp(min(k, 4 - k), 0, 1) with k = (n + 6 * hue) mod 6 and n = 5, 3, 1
    for r, g, b: the closed form of the HSV -> RGB map, with no per-sector gather. Ties for
    the maximum resolve r, then g, then b, as in torchvision.
    """
    r, g, b = images.unbind(dim=1)  # [B, H, W] each
    value = torch.maximum(torch.maximum(r, g), b)
    chroma = value - torch.minimum(torch.minimum(r, g), b)
    numerator = torch.where(value == r, g - b, torch.where(value == g, b - r + 2.0 * chroma, r - g + 4.0 * chroma))
    hue = numerator / torch.where(chroma > 0, chroma, 1.0) + 6.0 * shift.view(-1, 1, 1)  # sixths, mod 6 below
    k = torch.stack([(hue + sector).remainder_(6.0) for sector in (5.0, 3.0, 1.0)], dim=1)  # [B, 3, H, W]
    ramp = torch.minimum(k, 4.0 - k).clamp_(0.0, 1.0)
    return value.unsqueeze(1) - chroma.unsqueeze(1) * ramp


def color_jitter(images: torch.Tensor, factors: torch.Tensor, order: torch.Tensor, apply: torch.Tensor,
                 with_hue: bool = True) -> torch.Tensor:
    """torchvision's ColorJitter with per-sample factors [B, 4] and op order [B, 4] (a
    permutation of BRIGHTNESS..HUE), where apply [B] is set.

    The ops before hue run as three blend slots, then hue once, then three more slots;
    each slot does, per sample, that sample's next op or nothing. So the batch computes hue
    once and six cheap blends, whatever mix of orders it holds. with_hue=False (hue
    strength 0) skips the hue computation, which is then the identity.
    """
    order = torch.where(apply.unsqueeze(1), order, NO_OP)  # [B, 4]
    hue_at = (order == HUE).float().argmax(dim=1, keepdim=True)  # [B, 1]; 0 when not applied
    slots = torch.arange(3, device=order.device).unsqueeze(0)  # [1, 3]
    before = torch.where(slots < hue_at, order[:, :3], NO_OP)  # [B, 3]
    after_index = hue_at + 1 + slots
    after = torch.where(after_index < 4, order.gather(1, after_index.clamp(max=3)), NO_OP)  # [B, 3]
    for slot in range(3):
        images = blend_op(images, before[:, slot], factors)
    if with_hue:
        images = torch.where(_column(apply), adjust_hue(images, factors[:, HUE]), images)
    for slot in range(3):
        images = blend_op(images, after[:, slot], factors)
    return images


def gaussian_kernels(sigma: torch.Tensor, kernel_size: int) -> torch.Tensor:
    """Normalised 1-D Gaussian kernels [B, kernel_size], one per sigma [B]."""
    offsets = torch.arange(kernel_size, device=sigma.device, dtype=torch.float32) - (kernel_size - 1) / 2
    kernels = torch.exp(-0.5 * (offsets.unsqueeze(0) / sigma.float().unsqueeze(1)) ** 2)  # [B, k]
    return kernels / kernels.sum(dim=1, keepdim=True)


def gaussian_blur(images: torch.Tensor, sigma: torch.Tensor, kernel_size: int, apply: torch.Tensor) -> torch.Tensor:
    """Gaussian blur with per-sample sigma [B] where apply [B] is set: reflect padding and a
    separable grouped convolution (one group per sample and channel)."""
    batch, channels, height, width = images.shape
    kernels = gaussian_kernels(sigma, kernel_size).repeat_interleave(channels, dim=0)  # [B*3, k]
    pad = kernel_size // 2
    flat = F.pad(images.reshape(1, batch * channels, height, width), (pad, pad, pad, pad), mode="reflect")
    flat = F.conv2d(flat, kernels.view(-1, 1, kernel_size, 1), groups=batch * channels)  # vertical
    flat = F.conv2d(flat, kernels.view(-1, 1, 1, kernel_size), groups=batch * channels)  # horizontal
    return torch.where(_column(apply), flat.view_as(images), images)


def solarize(images: torch.Tensor, apply: torch.Tensor, threshold: float = SOLARIZE_THRESHOLD) -> torch.Tensor:
    """Invert the pixels at or above threshold, in the samples where apply [B] is set."""
    return torch.where(_column(apply) & (images >= threshold), 1.0 - images, images)
