"""A look at the feature space: a seeded, class-balanced sample of evaluation images shown in
TensorBoard's embedding projector (their features, class names and thumbnails: PCA, t-SNE
and UMAP interactively) and as a 2-D t-SNE map (van der Maaten & Hinton, 2008; scikit-learn,
cosine distances) saved as pictures/embedding-tsne.png. It reports no figure: the pictures
are for looking, the probes for numbers.
"""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from ssltrain.augment.pixels import denormalize
from ssltrain.data.images import ImageSet, balanced_subset
from ssltrain.eval.data import EvalData, eval_batches, extract_features
from ssltrain.eval.pictures import map_figure, pyplot
from ssltrain.registry import EVALUATORS
from ssltrain.runtime.run_logger import RunLogger


def thumbnails(images: ImageSet, data: EvalData, side: int, device: torch.device) -> torch.Tensor:
    """[N, 3, side, side] in [0, 1]: the images as the encoder sees them, shrunk."""
    shrunk = [F.interpolate(denormalize(batch.float(), data.mean, data.std).clamp(0, 1), size=(side, side),
                            mode="bilinear", antialias=True, align_corners=False).cpu()
              for batch, _ in eval_batches(images, data, 512, device, desc="thumbnails")]
    return torch.cat(shrunk)


@EVALUATORS.register("embedding", extra="plots", modules=("matplotlib", "sklearn"))
def embedding(encoder: nn.Module, data: EvalData, device: torch.device, logger: Optional[RunLogger] = None,
              samples: int = 2000, perplexity: float = 30.0, thumbnail_size: int = 32) -> dict[str, float]:
    """samples: how many evaluation images (class-balanced, seeded); perplexity: t-SNE's
    (capped below a third of the sample); thumbnail_size: the projector's image side."""
    if logger is None:  # nowhere to show them (not rank 0)
        return {}
    from sklearn.manifold import TSNE

    chosen = balanced_subset(data.val.labels, samples, torch.Generator().manual_seed(data.seed))
    images = data.val.subset(chosen)
    features, labels = extract_features(encoder, images, data, device)
    features, labels = features.cpu(), labels.cpu()
    names = data.names
    logger.embedding(features, [names[label] for label in labels.tolist()],
                     thumbnails(images, data, thumbnail_size, device), tag="eval/features")
    points = TSNE(n_components=2, perplexity=min(perplexity, (len(features) - 1) / 3), metric="cosine", init="pca",
                  random_state=data.seed).fit_transform(features.numpy())
    plt = pyplot("the t-SNE map")
    title = f"t-SNE of {len(features)} evaluation images' features ({data.dataset})"
    logger.figure("eval/embedding_tsne", map_figure(plt, torch.from_numpy(points), labels, names, title),
                  "embedding-tsne")
    return {}
