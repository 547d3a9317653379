"""MAE: hide most patches, encode the visible ones, reconstruct the hidden pixels.

He et al., "Masked Autoencoders Are Scalable Vision Learners", CVPR 2022,
https://arxiv.org/abs/2111.06377.

The encoder is the run's ViT itself: its token path (`tokens` with the mask's indices)
encodes the visible patches only, so evaluation's plain forward (all patches) uses the
same weights. As in MAE's models_mae.py, its positions are the fixed 2D sine-cosine ones.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn
from torchvision.models.vision_transformer import EncoderBlock

from ssltrain.data.batch import Batch
from ssltrain.augment.pixels import denormalize
from ssltrain.errors import UserError
from ssltrain.losses.mae import mae_loss, normalize_patches
from ssltrain.pretext.masking import TokenMask, random_token_mask
from ssltrain.methods.base import SSLMethod
from ssltrain.pretext.patches import patchify, unpatchify
from ssltrain.parts.pos_embed import sincos_2d_with_class
from ssltrain.registry import METHODS

IMAGES_TO_SHOW = 8


def gather_tokens(tokens: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """tokens [B, N, D], index [B, K] -> [B, K, D]: each sample's tokens at its own indices."""
    return tokens.gather(1, index[..., None].expand(-1, -1, tokens.shape[2]))


class MAEDecoder(nn.Module):
    """Pre-norm transformer blocks over [class token, visible tokens, mask tokens] in
    patch order, with fixed 2D sine-cosine positions; predicts every patch's pixels."""

    def __init__(self, in_dim: int, dim: int, depth: int, heads: int, grid: int, patch_pixels: int):
        super().__init__()
        self.embed = nn.Linear(in_dim, dim)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, dim))
        nn.init.normal_(self.mask_token, std=0.02)  # MAE's reference initialisation
        self.register_buffer("positions", sincos_2d_with_class(dim, grid)[None], persistent=False)  # [1, 1 + N, dim]
        self.blocks = nn.Sequential(*(EncoderBlock(heads, dim, 4 * dim, 0.0, 0.0) for _ in range(depth)))
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.predict = nn.Linear(dim, patch_pixels)

    def forward(self, encoded: torch.Tensor, restore: torch.Tensor) -> torch.Tensor:
        """encoded [B, 1 + K, D_enc] (class token first), restore [B, N] -> [B, N, patch_pixels]."""
        x = self.embed(encoded)  # [B, 1 + K, dim]
        batch, count = restore.shape
        hidden = self.mask_token.expand(batch, count + 1 - x.shape[1], -1)  # [B, N - K, dim]
        patches = gather_tokens(torch.cat([x[:, 1:], hidden], dim=1), restore)  # [B, N, dim], patch order
        x = torch.cat([x[:, :1], patches], dim=1) + self.positions  # [B, 1 + N, dim]
        return self.predict(self.norm(self.blocks(x))[:, 1:])  # [B, N, patch_pixels]


@METHODS.register("mae")
class MAE(SSLMethod):
    views = (1, 1)
    encoder_kinds = ("vit",)

    def __init__(self, encoder: nn.Module, mask_ratio: float = 0.75, decoder_dim: int = 512, decoder_depth: int = 8,
                 decoder_heads: int = 16, norm_pix_loss: bool = True,
                 mean: tuple[float, float, float] = (0.5, 0.5, 0.5), std: tuple[float, float, float] = (0.5, 0.5, 0.5)):
        super().__init__(encoder)
        if not 0.0 <= mask_ratio < 1.0:
            raise UserError(f"method.mask_ratio={mask_ratio} must be in [0, 1): the encoder needs a visible patch")
        if decoder_dim % 4 or decoder_dim % decoder_heads:
            raise UserError(f"method.decoder_dim={decoder_dim} must be divisible by 4 (sine-cosine positions) "
                            f"and by method.decoder_heads={decoder_heads}")
        encoder.use_fixed_sincos_positions()
        self.mask_ratio, self.norm_pix_loss = mask_ratio, norm_pix_loss
        self.mean, self.std = tuple(mean), tuple(std)
        self.patch = encoder.patch_size
        grid = encoder.image_size // self.patch
        self.num_patches = grid * grid
        self.decoder = MAEDecoder(encoder.hidden_dim, decoder_dim, decoder_depth, decoder_heads, grid,
                                  self.patch * self.patch * 3)

    def reconstruct(self, images: torch.Tensor, mask: TokenMask) -> torch.Tensor:
        """Predicted pixels of every patch [B, N, patch * patch * 3] from the visible ones."""
        return self.decoder(self.encoder.tokens(images, mask.keep), mask.restore)  # encoder: [B, 1 + K, D]

    def _mask(self, batch: int, device: torch.device) -> TokenMask:
        return random_token_mask(batch, self.num_patches, self.mask_ratio, device)

    def check_views(self, sizes: Sequence[int]) -> None:
        super().check_views(sizes)
        if sizes[0] != self.encoder.image_size:
            raise UserError(f"reconstructs the {self.num_patches} patches of {self.encoder.image_size} px views, "
                            f"got {sizes[0]} px ones; leave the view's size at the image size")

    def training_step(self, batch: Batch) -> dict[str, torch.Tensor]:
        images = batch.views[0]  # [B, 3, H, W], normalised: MAE's reference targets are its normalised inputs
        mask = self._mask(images.shape[0], images.device)
        prediction = self.reconstruct(images, mask)  # [B, N, P]
        return {"loss": mae_loss(prediction, patchify(images, self.patch), mask.masked, self.norm_pix_loss)}

    def images(self, batch: Batch) -> dict[str, torch.Tensor]:
        """inputs, masked inputs (hidden patches grey), reconstructions (predicted hidden
        patches with the visible ones pasted back) and the loss's targets.

        Under norm_pix_loss the decoder predicts normalised patches; to draw them they are
        mapped back with the true patch's mean and scale, and the targets are drawn as
        normalised patches read as dataset-normalised pixels."""
        images = batch.views[0][:IMAGES_TO_SHOW]  # [n, 3, H, W]
        mask = self._mask(images.shape[0], images.device)
        target = patchify(images, self.patch)  # [n, N, P]
        prediction = self.reconstruct(images, mask).to(target.dtype)  # [n, N, P]
        if self.norm_pix_loss:
            target_normalised, mean, scale = normalize_patches(target)
            prediction = prediction * scale + mean
        else:
            target_normalised = target
        hidden = mask.masked[..., None].to(target.dtype)  # [n, N, 1]
        pasted = target * (1 - hidden) + prediction * hidden  # [n, N, P]
        hidden_pixels = unpatchify(hidden.expand_as(target), self.patch)  # [n, 3, H, W]
        pixels = denormalize(images, self.mean, self.std)
        return {
            "inputs": pixels,
            "masked_inputs": pixels * (1 - hidden_pixels) + 0.5 * hidden_pixels,
            "reconstructions": denormalize(unpatchify(pasted, self.patch), self.mean, self.std),
            "targets": denormalize(unpatchify(target_normalised, self.patch), self.mean, self.std),
        }
