"""Vision Transformers (torchvision's VisionTransformer) returning the class token, or the
mean of the patch tokens (`pool: mean`)."""

from __future__ import annotations

from typing import Optional

import torch
from torch import nn
from torchvision.models.vision_transformer import VisionTransformer

from ssltrain.encoders.base import Stage
from ssltrain.errors import UserError
from ssltrain.registry import ENCODERS


POOLS = ("cls", "mean")


class ViTEncoder(VisionTransformer):
    kind = "vit"

    def __init__(self, image_size: int, patch_size: int, num_layers: int, num_heads: int, hidden_dim: int,
                 pool: str = "cls"):
        super().__init__(image_size=image_size, patch_size=patch_size, num_layers=num_layers,
                         num_heads=num_heads, hidden_dim=hidden_dim, mlp_dim=4 * hidden_dim)
        if pool not in POOLS:
            raise UserError(f"encoder.pool={pool!r} is not valid; choose one of: {', '.join(POOLS)}")
        self.heads = nn.Identity()  # drops torchvision's classifier, whose weights would go unused
        self.pool = pool
        self.out_dim = hidden_dim

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """[B, hidden_dim]: the final class token, or the mean of the final patch tokens
        (MAE's `global_pool`: a method whose loss never reaches the class token, as MAE's,
        is better read from its patch tokens)."""
        tokens = self._process_input(images)  # [B, N, D]
        cls = self.class_token.expand(tokens.shape[0], -1, -1)  # [B, 1, D]
        encoded = self.encoder(torch.cat([cls, tokens], dim=1))  # [B, 1 + N, D]
        return encoded[:, 0] if self.pool == "cls" else encoded[:, 1:].mean(dim=1)

    def stages(self) -> list[Stage]:
        blocks: list[Stage] = [[layer] for layer in self.encoder.layers]
        blocks[-1].append(self.encoder.ln)
        return [[self.conv_proj, self.class_token, self.encoder.pos_embedding], *blocks]


def default_patch_size(image_size: int) -> int:
    """4 px patches for CIFAR-sized images (8x8 tokens at 32 px), 16 px otherwise."""
    return 4 if image_size <= 64 else 16


def _vit(image_size: int, patch_size: Optional[int], num_layers: int, num_heads: int, hidden_dim: int,
         pool: str) -> ViTEncoder:
    patch = patch_size or default_patch_size(image_size)
    if image_size % patch:
        raise UserError(f"encoder.patch_size={patch} must divide the image size {image_size}; "
                        f"pick a divisor of {image_size}")
    return ViTEncoder(image_size, patch, num_layers, num_heads, hidden_dim, pool)


# Sizes from DeiT (Touvron et al., 2021, table 1): tiny 192-d / 3 heads, small 384-d / 6 heads.
@ENCODERS.register("vit_tiny")
def vit_tiny(image_size: int, patch_size: Optional[int] = None, depth: int = 12, pool: str = "cls") -> ViTEncoder:
    """patch_size: null picks 4 for images <= 64 px, else 16. pool: cls | mean."""
    return _vit(image_size, patch_size, depth, 3, 192, pool)


@ENCODERS.register("vit_small")
def vit_small(image_size: int, patch_size: Optional[int] = None, depth: int = 12, pool: str = "cls") -> ViTEncoder:
    return _vit(image_size, patch_size, depth, 6, 384, pool)
