"""What the supervised metric-learning methods share (siamese, triplet, arcface): an
embedding head on the encoder, run on every view of a labelled batch. Not registered."""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from ssltrain.data.batch import Batch
from ssltrain.methods.base import SSLMethod, encode_views
from ssltrain.parts.heads import mlp


class EmbeddingMethod(SSLMethod):
    views = (1, None)
    needs_labels = True

    def __init__(self, encoder: nn.Module, hidden_dim: Optional[int], output_dim: int, normalize: bool,
                 last_norm: Optional[str] = None):
        """hidden_dim: one Linear -> BatchNorm -> ReLU layer of this width before the output
        layer (None: the output layer alone); last_norm: a norm after the output layer."""
        super().__init__(encoder)
        self.normalize = normalize
        widths = [encoder.out_dim, *([hidden_dim] if hidden_dim else []), output_dim]
        self.head = mlp(widths, last_norm=last_norm)

    def embed(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        """(embeddings [B*V, D] of every view, L2-normalised when `normalize`; their labels [B*V]),
        view after view; each view is one more labelled sample of its image's class."""
        z = torch.cat(encode_views(batch.views, lambda x: self.head(self.encoder(x))))  # [V*B, D]
        return (F.normalize(z, dim=1) if self.normalize else z), batch.labels.repeat(len(batch.views))
