"""k-means on the frozen features of the evaluation split, scored against the labels.

The clustering protocol of representation-learning papers (e.g. SCAN, Van Gansbeke et al.,
ECCV 2020, https://arxiv.org/abs/2005.12320, table 1): k = number of classes, k-means on
L2-normalised features, then NMI, ARI and cluster accuracy (each cluster takes the class
the Hungarian matching assigns it). scikit-learn runs k-means (seeded, several restarts)
and the two scores; scipy the matching: the `clustering` extra.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ssltrain.eval.data import EvalData, extract_features
from ssltrain.registry import EVALUATORS


def cluster_accuracy(labels: torch.Tensor, clusters: torch.Tensor) -> float:
    """The fraction of images whose cluster is matched to their class, under the one-to-one
    matching of clusters to classes that maximises it (Hungarian algorithm)."""
    from scipy.optimize import linear_sum_assignment

    size = int(max(labels.max(), clusters.max())) + 1
    counts = torch.zeros(size, size, dtype=torch.long)  # [cluster, class]
    counts.index_put_((clusters.long(), labels.long()), torch.ones_like(labels, dtype=torch.long), accumulate=True)
    rows, columns = linear_sum_assignment(counts.numpy(), maximize=True)
    return counts[rows, columns].sum().item() / len(labels)


def clustering_metrics(labels: torch.Tensor, clusters: torch.Tensor) -> dict[str, float]:
    """kmeans_nmi, kmeans_ari and kmeans_accuracy of a clustering against the labels."""
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

    truth, found = labels.cpu().numpy(), clusters.cpu().numpy()
    return {"kmeans_nmi": float(normalized_mutual_info_score(truth, found)),
            "kmeans_ari": float(adjusted_rand_score(truth, found)),
            "kmeans_accuracy": cluster_accuracy(labels.cpu(), clusters.cpu())}


def kmeans_clusters(features: torch.Tensor, k: int, restarts: int, seed: int) -> torch.Tensor:
    """Cluster index [N] of every (L2-normalised) feature: the best of `restarts` k-means runs."""
    from sklearn.cluster import KMeans

    points = F.normalize(features.float(), dim=1).cpu().numpy()
    return torch.from_numpy(KMeans(n_clusters=k, n_init=restarts, random_state=seed).fit_predict(points))


@EVALUATORS.register("kmeans", extra="clustering", modules=("sklearn", "scipy"),
                     metrics=("kmeans_nmi", "kmeans_ari", "kmeans_accuracy"))
def kmeans(encoder: nn.Module, data: EvalData, device: torch.device, restarts: int = 10) -> dict[str, float]:
    """restarts: k-means runs from different seeded starts; the lowest inertia is kept."""
    features, labels = extract_features(encoder, data.val, data, device)
    clusters = kmeans_clusters(features, data.num_classes, restarts, data.seed)
    return clustering_metrics(labels, clusters)
