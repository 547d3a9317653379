"""Multi-crop plumbing shared by SwAV and DINO (Caron et al. 2020, sec. 3.2).

The crop order is the augmentation config's view order: the global crops are the first
two views, at the largest size; any further views are local crops, no larger. The
encoder takes every crop size itself (a ViT resizes its position embeddings, as DINO's
vision_transformer.py does for its 96 px local crops), so the sizes are checked once,
before training starts.
"""

from __future__ import annotations

from typing import Sequence

from ssltrain.errors import UserError
from ssltrain.methods.base import SSLMethod

GLOBAL_CROPS = 2


class MultiCropMethod(SSLMethod):
    """A method trained on two global crops first, then any number of smaller local crops."""

    views = (GLOBAL_CROPS, None)

    def check_views(self, sizes: Sequence[int]) -> None:
        super().check_views(sizes)
        if sizes[0] != sizes[1] or any(side > sizes[0] for side in sizes[2:]):
            raise UserError(f"needs the two global crops first, of one size and no view larger; got view sizes "
                            f"{list(sizes)}; list the two global crops first in the augmentation's views")
