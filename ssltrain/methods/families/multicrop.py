"""Multi-crop plumbing shared by SwAV and DINO (Caron et al. 2020, sec. 3.2).

The crop order is the augmentation config's view order: the global crops are the first
two views, at the largest size; any further views are local crops, no larger. A ViT is
built for one image size, so `crop_encoder` runs it on smaller crops by resizing its
position embeddings, as DINO's vision_transformer.py does for its 96 px local crops.
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

GLOBAL_CROPS = 2


def check_crops(views: Sequence[torch.Tensor]) -> None:
    """Raise a ValueError unless views[0] and views[1] are the global crops: two views of
    the same size, and no other view larger than them."""
    if len(views) < GLOBAL_CROPS:
        raise ValueError(f"multi-crop methods need at least {GLOBAL_CROPS} views (the global crops), got {len(views)}; "
                         "use augmentation=multicrop or another with 2 or more views")
    sizes = [tuple(view.shape[-2:]) for view in views]
    if sizes[0] != sizes[1] or any(size[0] > sizes[0][0] or size[1] > sizes[0][1] for size in sizes[2:]):
        raise ValueError(f"the first two views must be the global crops, of the largest size; got view sizes {sizes}; "
                         "list the two global crops first in the augmentation's views")


def resized_position_embedding(embedding: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """[1, 1 + n*n, D] class-token + square-grid position embeddings -> [1, 1 + height*width, D]
    (the grid part resized bicubically)."""
    grid = embedding[:, 1:]  # [1, n*n, D]
    side = round(grid.shape[1] ** 0.5)
    if (side, side) == (height, width):
        return embedding
    grid = grid.reshape(1, side, side, -1).permute(0, 3, 1, 2)  # [1, D, n, n]
    grid = F.interpolate(grid, size=(height, width), mode="bicubic", align_corners=False)  # [1, D, h, w]
    return torch.cat([embedding[:, :1], grid.flatten(2).transpose(1, 2)], dim=1)


def vit_class_token(vit: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """torchvision VisionTransformer's forward (class token out) for any image side that is
    a multiple of its patch size. [B, 3, H, W] -> [B, D]."""
    if images.shape[-2] % vit.patch_size or images.shape[-1] % vit.patch_size:
        raise ValueError(f"crop size {tuple(images.shape[-2:])} is not a multiple of the ViT's {vit.patch_size} px patches; "
                         "choose crop sizes that are")
    tokens = vit.conv_proj(images)  # [B, D, h, w]
    batch, _, height, width = tokens.shape
    tokens = tokens.flatten(2).transpose(1, 2)  # [B, h*w, D]
    tokens = torch.cat([vit.class_token.expand(batch, -1, -1), tokens], dim=1)  # [B, 1 + h*w, D]
    tokens = tokens + resized_position_embedding(vit.encoder.pos_embedding, height, width)
    blocks = vit.encoder
    return blocks.ln(blocks.layers(blocks.dropout(tokens)))[:, 0]  # [B, D]


def crop_encoder(encoder: nn.Module) -> Callable[[torch.Tensor], torch.Tensor]:
    """The encoder as a function of crops of any size: CNNs pool over any input; a ViT goes
    through `vit_class_token` for sizes other than its own."""
    if encoder.kind != "vit":
        return encoder

    def encode(images: torch.Tensor) -> torch.Tensor:
        if images.shape[-1] == encoder.image_size and images.shape[-2] == encoder.image_size:
            return encoder(images)
        return vit_class_token(encoder, images)

    return encode
