"""Pictures of what an encoder learned: a classifier's confusion matrix and per-class
accuracy, and a 2-D map of features, each a PNG in the run's pictures/ and a TensorBoard
figure. The numbers behind the classifier's pictures are written as JSON whatever is
installed; the drawing needs matplotlib (the `plots` extra), and without it the log says
once which pictures were left out and how to get them.
"""

from __future__ import annotations

import logging
from typing import Optional

import torch

from ssltrain.runtime.run_logger import RunLogger

log = logging.getLogger("ssltrain")

PLOTS_INSTALL = "pip install 'ssltrain[plots]'"
_said_missing = False


def pyplot(what: str):
    """matplotlib.pyplot on the file-only Agg backend, or None when matplotlib is not
    installed (then the log says, once per process, that `what` needs it)."""
    global _said_missing
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        if not _said_missing:
            log.warning("%s need matplotlib, which is not installed: %s (the numbers are in pictures/*.json)", what,
                        PLOTS_INSTALL)
            _said_missing = True
        return None
    return plt


def confusion_matrix(labels: torch.Tensor, predictions: torch.Tensor, num_classes: int) -> torch.Tensor:
    """[C, C] counts: row = true class, column = predicted class."""
    flat = labels.long().cpu() * num_classes + predictions.long().cpu()
    return torch.bincount(flat, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def per_class_accuracy(matrix: torch.Tensor) -> torch.Tensor:
    """[C]: each class's share of its images predicted right (NaN for a class without images)."""
    return matrix.diag().double() / matrix.sum(dim=1).double()


def _confusion_figure(plt, matrix: torch.Tensor, names: list[str], title: str):
    rates = matrix.double() / matrix.sum(dim=1, keepdim=True).clamp_min(1)
    side = max(4.0, 0.35 * len(names) + 2)
    figure, axes = plt.subplots(figsize=(side, side))
    image = axes.imshow(rates.numpy(), cmap="Blues", vmin=0, vmax=1)
    figure.colorbar(image, ax=axes, fraction=0.046, label="share of the true class")
    if len(names) <= 30:  # past that the tick labels overlap
        axes.set_xticks(range(len(names)), names, rotation=90)
        axes.set_yticks(range(len(names)), names)
        if len(names) <= 12:
            for row in range(len(names)):
                for column in range(len(names)):
                    axes.text(column, row, f"{rates[row, column]:.2f}", ha="center", va="center", fontsize=7,
                              color="white" if rates[row, column] > 0.5 else "black")
    axes.set(xlabel="predicted class", ylabel="true class", title=title)
    return figure


def _per_class_figure(plt, accuracy: torch.Tensor, names: list[str], title: str):
    figure, axes = plt.subplots(figsize=(max(5.0, 0.3 * len(names) + 2), 3.5))
    axes.bar(range(len(names)), accuracy.nan_to_num(0).numpy(), color="tab:blue")
    axes.axhline(float(accuracy.nanmean()), color="black", linewidth=1, linestyle="--", label="mean over classes")
    axes.set_xticks(range(len(names)), names, rotation=90 if len(names) > 10 else 0)
    axes.set(ylim=(0, 1), ylabel="accuracy", title=title)
    axes.legend(loc="lower right")
    return figure


def report_classifier(logger: Optional[RunLogger], tag: str, labels: torch.Tensor, predictions: torch.Tensor,
                      names: list[str]) -> None:
    """A classifier's evaluation-split predictions -> pictures/<tag>-confusion.json (the matrix
    and per-class accuracy) and, with matplotlib, <tag>-confusion.png and <tag>-per-class.png."""
    if logger is None:
        return
    matrix = confusion_matrix(labels, predictions, len(names))
    accuracy = per_class_accuracy(matrix)
    logger.table(f"{tag}-confusion", {"classes": names, "rows": "true class", "columns": "predicted class",
                                      "matrix": matrix.tolist(),
                                      "per_class_accuracy": dict(zip(names, accuracy.tolist()))})
    plt = pyplot("the confusion matrix and per-class accuracy pictures")
    if plt is None:
        return
    logger.figure(f"eval/{tag}_confusion", _confusion_figure(plt, matrix, names, f"{tag}: confusion on the evaluation split"),
                  f"{tag}-confusion")
    logger.figure(f"eval/{tag}_per_class", _per_class_figure(plt, accuracy, names, f"{tag}: accuracy per class"),
                  f"{tag}-per-class")


def map_figure(plt, points: torch.Tensor, labels: torch.Tensor, names: list[str], title: str):
    """points [N, 2] coloured by class, a legend of class names (up to 20 classes)."""
    figure, axes = plt.subplots(figsize=(7, 6))
    colours = plt.get_cmap("tab20" if len(names) > 10 else "tab10")
    for label, name in enumerate(names):
        chosen = labels == label
        if chosen.any():
            axes.scatter(points[chosen, 0].numpy(), points[chosen, 1].numpy(), s=6, color=colours(label % colours.N),
                         label=name)
    if len(names) <= 20:
        axes.legend(markerscale=3, fontsize=8, loc="best")
    axes.set(title=title, xticks=[], yticks=[])
    return figure
