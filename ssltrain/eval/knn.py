"""Weighted k-nearest-neighbour classification on frozen, L2-normalised features.

Wu et al., "Unsupervised Feature Learning via Non-Parametric Instance Discrimination",
CVPR 2018, https://arxiv.org/abs/1805.01978, section 3.4: each of the k nearest
training features votes for its class with weight exp(cosine similarity / T).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ssltrain.eval.data import EvalData, extract_features, topk_accuracy
from ssltrain.registry import EVALUATORS


@torch.no_grad()
def knn_scores(train_features: torch.Tensor, train_labels: torch.Tensor, query_features: torch.Tensor,
               num_classes: int, k: int = 200, temperature: float = 0.1, chunk: int = 1024) -> torch.Tensor:
    """Class scores [Q, C] of every query: the summed weights of its k nearest neighbours."""
    train = F.normalize(train_features, dim=1)  # [N, D]
    k = min(k, len(train))
    scores = []
    for start in range(0, len(query_features), chunk):
        query = F.normalize(query_features[start : start + chunk], dim=1)  # [q, D]
        similarity, neighbours = (query @ train.T).topk(k, dim=1)  # [q, k]
        weights = (similarity / temperature).exp()  # [q, k]
        votes = torch.zeros(len(query), num_classes, device=query.device)
        votes.scatter_add_(1, train_labels[neighbours], weights)
        scores.append(votes)
    return torch.cat(scores)


# Wu et al. 2018's values, also solo-learn's and lightly's kNN monitors.
DEFAULT_K = 200
DEFAULT_TEMPERATURE = 0.1


def knn_metrics(train: tuple[torch.Tensor, torch.Tensor], val: tuple[torch.Tensor, torch.Tensor], num_classes: int,
                k: int = DEFAULT_K, temperature: float = DEFAULT_TEMPERATURE) -> dict[str, float]:
    """knn_top1 / knn_top5 of (features, labels) pairs."""
    scores = knn_scores(train[0], train[1], val[0], num_classes, k, temperature)
    top1, top5 = topk_accuracy(scores, val[1])
    return {"knn_top1": top1, "knn_top5": top5}


def knn_accuracy(encoder: nn.Module, data: EvalData, device: torch.device, k: int = DEFAULT_K,
                 temperature: float = DEFAULT_TEMPERATURE) -> dict[str, float]:
    train = extract_features(encoder, data.train, data, device)
    val = extract_features(encoder, data.val, data, device)
    return knn_metrics(train, val, data.num_classes, k, temperature)


KNN_METRICS = ("knn_top1", "knn_top5")


@EVALUATORS.register("knn", metrics=KNN_METRICS)
def knn(encoder: nn.Module, data: EvalData, device: torch.device, k: int = DEFAULT_K,
        temperature: float = DEFAULT_TEMPERATURE) -> dict[str, float]:
    return knn_accuracy(encoder, data, device, k, temperature)

