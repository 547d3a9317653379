"""Vision Transformers (torchvision's VisionTransformer) returning the class token."""

from __future__ import annotations

from typing import Optional

from torch import nn
from torchvision.models.vision_transformer import VisionTransformer

from ssltrain.encoders.base import Stage
from ssltrain.registry import ENCODERS


class ViTEncoder(VisionTransformer):
    kind = "vit"

    def __init__(self, image_size: int, patch_size: int, num_layers: int, num_heads: int, hidden_dim: int):
        super().__init__(image_size=image_size, patch_size=patch_size, num_layers=num_layers,
                         num_heads=num_heads, hidden_dim=hidden_dim, mlp_dim=4 * hidden_dim)
        self.heads = nn.Identity()  # forward returns the final class token [B, hidden_dim]
        self.out_dim = hidden_dim

    def stages(self) -> list[Stage]:
        blocks: list[Stage] = [[layer] for layer in self.encoder.layers]
        blocks[-1].append(self.encoder.ln)
        return [[self.conv_proj, self.class_token, self.encoder.pos_embedding], *blocks]


def default_patch_size(image_size: int) -> int:
    """4 px patches for CIFAR-sized images (8x8 tokens at 32 px), 16 px otherwise."""
    return 4 if image_size <= 64 else 16


def _vit(image_size: int, patch_size: Optional[int], num_layers: int, num_heads: int, hidden_dim: int) -> ViTEncoder:
    patch = patch_size or default_patch_size(image_size)
    if image_size % patch:
        raise ValueError(f"encoder.patch_size={patch} must divide the image size {image_size}")
    return ViTEncoder(image_size, patch, num_layers, num_heads, hidden_dim)


# Sizes from DeiT (Touvron et al., 2021, table 1): tiny 192-d / 3 heads, small 384-d / 6 heads.
@ENCODERS.register("vit_tiny")
def vit_tiny(image_size: int, patch_size: Optional[int] = None, depth: int = 12) -> ViTEncoder:
    """patch_size: null picks 4 for images <= 64 px, else 16."""
    return _vit(image_size, patch_size, depth, 3, 192)


@ENCODERS.register("vit_small")
def vit_small(image_size: int, patch_size: Optional[int] = None, depth: int = 12) -> ViTEncoder:
    return _vit(image_size, patch_size, depth, 6, 384)
