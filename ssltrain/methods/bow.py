"""BoWNet: predict the bag of visual words of a trained teacher's feature map of an image
from a perturbed view of it.

Gidaris et al., "Learning Representations by Predicting Bags of Visual Words", CVPR 2020,
https://arxiv.org/abs/2002.12247.

The teacher is a previously trained ssltrain run (`method.teacher`: its folder, its
checkpoints/last.pt, or a backbone.pt of the configured encoder), e.g. a rotation run as in
the paper; it is frozen and runs in evaluation mode. Its last feature map (a CNN's
forward_features) of the first view gives the target; the student (the encoder and a
linear layer over `num_words` words) sees every other view and is trained by the
cross-entropy between its softmax and the target histogram (pretext/visual_words.py:
soft assignment, the mean over positions).

The vocabulary: `num_words` centres of k-means (`kmeans_iterations` Lloyd steps, seed 0)
over the teacher's feature-map vectors of the first training batch of every rank, built at
the first step and kept in a buffer (checkpointed, so a resumed run keeps it). The paper
clusters a larger sample of the dataset offline.

Without a teacher (method.teacher=null) the teacher is a frozen copy of the encoder's
random initialisation: for smoke tests only; a warning says so.

Defaults: the paper's 2048 words; inverse_delta 15 as we recall it from the authors' code
(gidariss/BoWNet), not checked against it here. Differences from the paper: the teacher sees
the first of the augmentation's views instead of the unperturbed image, the predictor is a
plain linear layer (the paper's has L2-normalised weights and a learned scale), and the
histogram averages the positions' soft assignments.
"""

from __future__ import annotations

import copy
import logging
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from ssltrain.build import load_encoder
from ssltrain.config import parse_group
from ssltrain.data.batch import Batch
from ssltrain.errors import UserError
from ssltrain.methods.base import SSLMethod, encode_views
from ssltrain.pretext.visual_words import bow_histogram, kmeans
from ssltrain.registry import METHODS
from ssltrain.runtime import dist
from ssltrain.runtime.checkpoint import load_checkpoint, split_checkpoint

log = logging.getLogger("ssltrain")


def load_teacher(path: Optional[str], encoder: nn.Module) -> nn.Module:
    """The frozen teacher `method.teacher=path` names (a run's folder or last.pt: the encoder
    its config names; a backbone.pt: `encoder`'s architecture), or a copy of `encoder` when
    path is None. One line when it is missing, does not fit, or has no feature map."""
    if path is None:
        log.warning("method.teacher is not set: bow's teacher is the encoder's random initialisation; "
                    "give a trained run, e.g. method.teacher=<a rotation run's folder>")
        teacher = copy.deepcopy(encoder)
    else:
        config, weights = split_checkpoint(load_checkpoint(path, "method.teacher"))
        if config is None:
            teacher = load_encoder_like(encoder, weights, path)
        else:
            teacher = load_encoder(parse_group("encoder", config["encoder"]), config["dataset"]["image_size"], weights,
                                   f"method.teacher={path}")
    if not hasattr(teacher, "forward_features"):
        raise UserError(f"method.teacher={path} is a {teacher.kind} encoder; bow needs a CNN teacher's feature map")
    return teacher.requires_grad_(False).eval()


def load_encoder_like(encoder: nn.Module, weights: dict[str, torch.Tensor], path: str) -> nn.Module:
    teacher = copy.deepcopy(encoder)
    try:
        teacher.load_state_dict(weights, strict=True)
    except RuntimeError as error:
        raise UserError(f"the weights in method.teacher={path} do not fit the configured encoder: "
                        f"{str(error).splitlines()[0]}") from None
    return teacher


@METHODS.register("bow")
class BoW(SSLMethod):
    views = (2, None)
    encoder_kinds = ("cnn", "vit")

    def __init__(self, encoder: nn.Module, teacher: Optional[str] = None, num_words: int = 2048,
                 kmeans_iterations: int = 10, inverse_delta: float = 15.0):
        """teacher: a trained run (see the module docstring); num_words: the vocabulary's
        size; inverse_delta: the sharpness of the soft assignment (pretext/visual_words.py)."""
        super().__init__(encoder)
        self.teacher = load_teacher(teacher, encoder)
        channels = self.teacher.feature_channels
        self.num_words, self.kmeans_iterations, self.inverse_delta = num_words, kmeans_iterations, inverse_delta
        self.register_buffer("vocabulary", torch.zeros(num_words, channels))  # [K, C]
        self.register_buffer("vocabulary_ready", torch.zeros((), dtype=torch.bool))
        self._ready = False  # mirrors vocabulary_ready once read, so later steps never sync with the device
        self.predictor = nn.Linear(encoder.out_dim, num_words)

    def train(self, mode: bool = True) -> "BoW":
        super().train(mode)
        self.teacher.eval()  # the teacher keeps its trained BatchNorm statistics
        return self

    @torch.no_grad()
    def build_vocabulary(self, feature_map: torch.Tensor) -> None:
        """k-means over every rank's [B, C, h, w] teacher feature map, once per run."""
        if not self._ready and not bool(self.vocabulary_ready):
            vectors = dist.gather(feature_map.float()).permute(0, 2, 3, 1).reshape(-1, feature_map.shape[1])
            if len(vectors) < self.num_words:
                raise UserError(f"method.num_words={self.num_words} is more than the {len(vectors)} feature vectors of "
                                f"the first batch that the vocabulary is built from; lower method.num_words or raise "
                                f"trainer.batch_size")
            self.vocabulary.copy_(kmeans(vectors, self.num_words, self.kmeans_iterations, torch.Generator().manual_seed(0)))
            self.vocabulary_ready.fill_(True)
        self._ready = True

    def training_step(self, batch: Batch) -> dict[str, torch.Tensor]:
        with torch.no_grad():
            feature_map = self.teacher.forward_features(batch.views[0])  # [B, C, h, w]
            self.build_vocabulary(feature_map)
            targets = bow_histogram(feature_map, self.vocabulary, self.inverse_delta)  # [B, K]
        logits = encode_views(batch.views[1:], lambda x: self.predictor(self.encoder(x)))  # (V - 1) x [B, K]
        losses = [-(targets * F.log_softmax(z.float(), dim=1)).sum(dim=1).mean() for z in logits]
        return {"loss": torch.stack(losses).mean()}
