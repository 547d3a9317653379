"""Vision Transformers (torchvision's VisionTransformer) returning the class token, or the
mean of the patch tokens (`pool: mean`), for any input whose sides are multiples of the
patch size.

The one token path of the project: multi-crop methods encode smaller crops, tile tasks
encode tiles and MAE encodes only its visible patches through `tokens`. With `checkpointing` (the common
setting encoder.checkpointing) each block's activations are recomputed in the backward
pass instead of kept (torch.utils.checkpoint, non-reentrant). The attribute
names stay torchvision's, so a saved state_dict loads strictly into its VisionTransformer.
"""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint
from torchvision.models.vision_transformer import VisionTransformer

from ssltrain.encoders.base import Stage
from ssltrain.errors import UserError
from ssltrain.parts.pos_embed import sincos_2d_with_class
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
        self.checkpointing = False  # recompute each block in the backward pass (build.build_encoder sets it)

    def check_input_size(self, side: int) -> None:
        """Raise UserError unless images of this side can be cut into whole patches."""
        if side % self.patch_size:
            below = side - side % self.patch_size
            examples = f"{below} or {below + self.patch_size}" if below else f"{self.patch_size}"
            raise UserError(f"{side} px inputs do not fit the ViT's {self.patch_size} px patches; "
                            f"use a side that is a multiple of {self.patch_size} (e.g. {examples})")

    def positions(self, rows: int, cols: int) -> torch.Tensor:
        """[1, 1 + rows * cols, D]: the class token's position, then the square grid of patch
        positions resized bicubically to rows x cols (DINO's `interpolate_pos_encoding`)."""
        table = self.encoder.pos_embedding  # [1, 1 + n * n, D]
        side = self.image_size // self.patch_size
        if (rows, cols) == (side, side):
            return table
        grid = table[:, 1:].reshape(1, side, side, -1).permute(0, 3, 1, 2)  # [1, D, n, n]
        grid = F.interpolate(grid, size=(rows, cols), mode="bicubic", align_corners=False)  # [1, D, rows, cols]
        return torch.cat([table[:, :1], grid.flatten(2).transpose(1, 2)], dim=1)

    def tokens(self, images: torch.Tensor, keep: Optional[torch.Tensor] = None) -> torch.Tensor:
        """images [B, 3, H, W] -> final tokens [B, 1 + K, D] after the last norm, class token
        first. keep [B, K]: each sample's patch indices (row-major) to encode, in that order,
        each with its own position (MAE's visible patches); None: every patch, K = N."""
        for side in images.shape[-2:]:
            self.check_input_size(side)
        patches = self.conv_proj(images)  # [B, D, h, w]
        positions = self.positions(*patches.shape[-2:])  # [1, 1 + h * w, D]
        patches = patches.flatten(2).transpose(1, 2) + positions[:, 1:]  # [B, N, D]
        if keep is not None:
            patches = patches.gather(1, keep[..., None].expand(-1, -1, patches.shape[2]))  # [B, K, D]
        cls = (self.class_token + positions[:, :1]).expand(patches.shape[0], -1, -1)  # [B, 1, D]
        x = self.encoder.dropout(torch.cat([cls, patches], dim=1))  # [B, 1 + K, D]
        recompute = self.checkpointing and torch.is_grad_enabled()
        for block in self.encoder.layers:
            x = checkpoint(block, x, use_reentrant=False) if recompute else block(x)  # [B, 1 + K, D]
        return self.encoder.ln(x)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """[B, hidden_dim]: the final class token, or the mean of the final patch tokens
        (MAE's `global_pool`: a method whose loss never reaches the class token, as MAE's,
        is better read from its patch tokens)."""
        tokens = self.tokens(images)  # [B, 1 + N, D]
        return tokens[:, 0] if self.pool == "cls" else tokens[:, 1:].mean(dim=1)

    def use_fixed_sincos_positions(self) -> None:
        """MAE's encoder positions (its models_mae.py): fixed 2D sine-cosine for the grid, zero
        for the class token, never trained. Kept in pos_embedding, so the state_dict keeps
        torchvision's keys; frozen, so the optimizer's groups leave it out."""
        side = self.image_size // self.patch_size
        with torch.no_grad():
            self.encoder.pos_embedding.copy_(sincos_2d_with_class(self.hidden_dim, side)[None])  # [1, 1 + N, D]
        self.encoder.pos_embedding.requires_grad_(False)

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
