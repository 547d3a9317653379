"""Image retrieval: each evaluation image queries the training images by cosine similarity.

The metric-learning protocol (Musgrave et al., "A Metric Learning Reality Check", ECCV
2020, https://arxiv.org/abs/2003.08505, section 3.2): Recall@k, the fraction of queries
with an image of their class among the k most similar, and MAP@R, where R is the number of
training images of the query's class: the mean over the first R results of the precision
at each one of its class, divided by R (1 only when all R come first). Queries run in
chunks, so memory holds `chunk` rows of similarities, never an N x N matrix.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ssltrain.eval.data import EvalData, extract_features
from ssltrain.registry import EVALUATORS

RECALL_AT = (1, 5, 10)


@torch.no_grad()
def retrieval_metrics(gallery: torch.Tensor, gallery_labels: torch.Tensor, queries: torch.Tensor,
                      query_labels: torch.Tensor, chunk: int = 256) -> dict[str, float]:
    """recall_at_1/5/10 and map_at_r of the queries [Q, D] against the gallery [N, D];
    queries whose class has no gallery image are left out."""
    gallery = F.normalize(gallery.float(), dim=1)  # [N, D]
    class_sizes = torch.bincount(gallery_labels, minlength=int(query_labels.max()) + 1)  # R per class
    recalls = torch.zeros(len(RECALL_AT), device=gallery.device)
    average_precision, counted = torch.zeros((), device=gallery.device), 0
    for start in range(0, len(queries), chunk):
        labels = query_labels[start : start + chunk]
        relevant_count = class_sizes[labels]  # [q] R of each query
        keep = relevant_count > 0
        labels, relevant_count = labels[keep], relevant_count[keep]
        query = F.normalize(queries[start : start + chunk][keep].float(), dim=1)  # [q, D]
        if not len(query):
            continue
        depth = min(len(gallery), max(int(relevant_count.max()), max(RECALL_AT)))
        ranked = (query @ gallery.T).topk(depth, dim=1).indices  # [q, depth]
        hits = (gallery_labels[ranked] == labels[:, None]).float()  # [q, depth]
        for index, k in enumerate(RECALL_AT):
            recalls[index] += hits[:, :k].amax(dim=1).sum()
        ranks = torch.arange(1, depth + 1, device=hits.device)
        within_r = ranks[None, :] <= relevant_count[:, None]  # [q, depth]
        precision = hits.cumsum(dim=1) / ranks  # [q, depth]
        average_precision += ((precision * hits * within_r).sum(dim=1) / relevant_count).sum()
        counted += len(query)
    if counted == 0:
        return {**{f"recall_at_{k}": float("nan") for k in RECALL_AT}, "map_at_r": float("nan")}
    metrics = {f"recall_at_{k}": (recalls[index] / counted).item() for index, k in enumerate(RECALL_AT)}
    metrics["map_at_r"] = (average_precision / counted).item()
    return metrics


@EVALUATORS.register("retrieval", metrics=(*(f"recall_at_{k}" for k in RECALL_AT), "map_at_r"))
def retrieval(encoder: nn.Module, data: EvalData, device: torch.device) -> dict[str, float]:
    gallery, gallery_labels = extract_features(encoder, data.train, data, device)
    queries, query_labels = extract_features(encoder, data.val, data, device)
    return retrieval_metrics(gallery, gallery_labels, queries, query_labels)
