"""Pictures of what was learned: a probe's confusion matrix and per-class accuracy, the
embedding projector and t-SNE map; the numbers behind them without matplotlib too."""

from __future__ import annotations

import json
import logging
import sys

import pytest
import torch

from ssltrain.encoders.small import small_cnn
from ssltrain.eval import pictures
from ssltrain.eval.embedding import embedding
from ssltrain.eval.linear import linear
from ssltrain.eval.pictures import confusion_matrix, per_class_accuracy
from ssltrain.runtime.run_logger import RunLogger
from test_eval import _toy_data

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_the_confusion_matrix_counts_true_classes_in_rows_and_predictions_in_columns():
    labels, predictions = torch.tensor([0, 0, 0, 1, 2, 2]), torch.tensor([0, 1, 1, 1, 2, 0])
    assert confusion_matrix(labels, predictions, 3).tolist() == [[1, 2, 0], [0, 1, 0], [1, 0, 1]]


def test_per_class_accuracy_is_each_rows_diagonal_share():
    accuracy = per_class_accuracy(torch.tensor([[1, 2, 0], [0, 1, 0], [1, 0, 1]]))
    assert accuracy.tolist() == pytest.approx([1 / 3, 1.0, 0.5])


def test_the_linear_probe_writes_its_confusion_and_per_class_accuracy(tmp_path):
    data = _toy_data()
    with RunLogger(tmp_path) as logger:
        results = linear(small_cnn(channels=(8, 16)), data, torch.device("cpu"), logger, epochs=5)
    table = json.loads((tmp_path / "pictures" / "linear-confusion.json").read_text())
    matrix = torch.tensor(table["matrix"])
    assert table["classes"] == ["0", "1"] and matrix.sum() == len(data.val)
    assert matrix.diag().sum() / matrix.sum() == pytest.approx(results["linear_top1"])
    for name in ("linear-confusion.png", "linear-per-class.png"):
        assert (tmp_path / "pictures" / name).read_bytes().startswith(PNG_MAGIC)


def test_without_matplotlib_the_numbers_are_written_and_the_log_says_how_to_get_the_pictures(tmp_path, monkeypatch,
                                                                                              caplog):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib raises ImportError
    monkeypatch.setattr(pictures, "_said_missing", False)
    with RunLogger(tmp_path) as logger, caplog.at_level(logging.WARNING, logger="ssltrain"):
        pictures.report_classifier(logger, "linear", torch.tensor([0, 1]), torch.tensor([0, 0]), ["cat", "dog"])
    assert sorted(path.name for path in (tmp_path / "pictures").iterdir()) == ["linear-confusion.json"]
    assert "pip install 'ssltrain[plots]'" in caplog.text


def test_the_embedding_shows_a_sample_in_the_projector_and_as_a_tsne_map(tmp_path):
    with RunLogger(tmp_path) as logger:
        assert embedding(small_cnn(channels=(8, 16)), _toy_data(), torch.device("cpu"), logger, samples=20) == {}
    assert (tmp_path / "pictures" / "embedding-tsne.png").read_bytes().startswith(PNG_MAGIC)
    projector = (tmp_path / "tensorboard" / "projector_config.pbtxt").read_text()
    assert "metadata.tsv" in projector and "sprite.png" in projector  # class names and thumbnails
    metadata = next((tmp_path / "tensorboard").rglob("metadata.tsv")).read_text().split()
    assert len(metadata) == 20 and set(metadata) == {"0", "1"}
