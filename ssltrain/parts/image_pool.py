"""A history of generated images for a GAN's discriminator.

Zhu et al., "Unpaired Image-to-Image Translation using Cycle-Consistent Adversarial
Networks", ICCV 2017, https://arxiv.org/abs/1703.10593, sec. 7.1: "we update the
discriminators using a history of generated images rather than the ones produced by the
latest generators. We keep an image buffer that stores the 50 previously created images"
(after Shrivastava et al., CVPR 2017). As the authors' code (util/image_pool.py) does it,
image by image: until the pool is full each new image is stored and passed on; after that,
with probability 1/2 the discriminator gets a stored image instead, which the new one
replaces in the pool, and otherwise the new image itself.
"""

from __future__ import annotations

import torch
from torch import nn


class ImagePool(nn.Module):
    """query(images [B, C, H, W]) -> [B, C, H, W]: the images a discriminator scores. The
    stored images are buffers, so a checkpoint keeps them; size 0: no pool (images pass as they are).
    Draws from torch's global generator on the CPU (the engine seeds it every step)."""

    def __init__(self, size: int, image_shape: tuple[int, int, int]):
        super().__init__()
        self.size = size
        self.register_buffer("images", torch.zeros(size, *image_shape))  # [size, C, H, W]
        self.register_buffer("count", torch.zeros((), dtype=torch.long))  # images stored so far (<= size)

    @torch.no_grad()
    def query(self, images: torch.Tensor) -> torch.Tensor:
        if self.size == 0:
            return images
        out = images.clone()
        stored = int(self.count)
        coins, slots = torch.rand(len(images)).tolist(), torch.randint(self.size, (len(images),)).tolist()
        for index, image in enumerate(images):
            if stored < self.size:  # filling: keep it, pass it on
                self.images[stored] = image
                stored += 1
            elif coins[index] < 0.5:  # a stored image goes out, the new one takes its place
                out[index] = self.images[slots[index]]
                self.images[slots[index]] = image
        self.count.fill_(stored)
        return out
