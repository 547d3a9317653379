"""Clustering (eval=kmeans) and retrieval (eval=retrieval): their arithmetic on hand-made
cases where the answer is known; several protocols in one run from the command line, every
number of which trainer.objective accepts before the run."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from conftest import run_cli, smoke
from ssltrain.compose import compose_settings
from ssltrain.errors import UserError
from ssltrain.eval.clustering import cluster_accuracy, clustering_metrics, kmeans_clusters
from ssltrain.eval.retrieval import retrieval_metrics
from ssltrain.objective import check_objective
from ssltrain.runtime.run_files import result_numbers
from ssltrain.registry import Registry


def test_perfect_clusters_under_other_names_score_one_on_every_clustering_metric():
    labels = torch.tensor([0] * 5 + [1] * 5 + [2] * 5)
    clusters = torch.tensor([2] * 5 + [0] * 5 + [1] * 5)
    assert clustering_metrics(labels, clusters) == pytest.approx(
        {"kmeans_nmi": 1.0, "kmeans_ari": 1.0, "kmeans_accuracy": 1.0})


def test_clusters_unrelated_to_the_labels_score_about_zero_nmi_and_ari():
    generator = torch.Generator().manual_seed(0)
    labels, clusters = torch.randint(10, (5000,), generator=generator), torch.randint(10, (5000,), generator=generator)
    metrics = clustering_metrics(labels, clusters)
    assert metrics["kmeans_nmi"] < 0.01 and abs(metrics["kmeans_ari"]) < 0.01 and metrics["kmeans_accuracy"] < 0.15


def test_cluster_accuracy_takes_the_best_one_to_one_matching():
    # clusters 0, 1, 2 are best matched to classes 1, 0, 2: 2 + 2 + 1 of 6 images
    assert cluster_accuracy(torch.tensor([1, 1, 0, 0, 0, 2]), torch.tensor([0, 0, 0, 1, 1, 2])) == pytest.approx(5 / 6)


def test_kmeans_finds_well_separated_groups():
    generator = torch.Generator().manual_seed(0)
    centres = torch.eye(4) * 10
    labels = torch.arange(4).repeat_interleave(25)
    features = centres[labels] + 0.1 * torch.randn(100, 4, generator=generator)
    assert cluster_accuracy(labels, kmeans_clusters(features, k=4, restarts=3, seed=0)) == 1.0


def _at(degrees: float) -> list[float]:
    return [math.cos(math.radians(degrees)), math.sin(math.radians(degrees))]


def test_retrieval_scores_recall_and_map_at_r_of_a_known_ranking():
    gallery = torch.tensor([_at(0), _at(10), _at(20), _at(30), _at(90)])
    gallery_labels = torch.tensor([0, 1, 0, 0, 1])
    queries, query_labels = torch.tensor([_at(-1), _at(95)]), torch.tensor([0, 1])
    # query 0 ranks classes 0 1 0 0 1, R = 3: precision 1 at rank 1 and 2/3 at rank 3 -> (1 + 2/3) / 3
    # query 1 ranks 1 0 0 0 1, R = 2: precision 1 at rank 1 only -> 1 / 2
    expected = {"recall_at_1": 1.0, "recall_at_5": 1.0, "recall_at_10": 1.0, "map_at_r": ((1 + 2 / 3) / 3 + 1 / 2) / 2}
    assert retrieval_metrics(gallery, gallery_labels, queries, query_labels) == pytest.approx(expected)
    assert retrieval_metrics(gallery, gallery_labels, queries, query_labels, chunk=1) == pytest.approx(expected)


def test_a_query_whose_nearest_image_is_of_another_class_misses_recall_at_one():
    gallery, gallery_labels = torch.tensor([_at(0), _at(45)]), torch.tensor([1, 0])
    metrics = retrieval_metrics(gallery, gallery_labels, torch.tensor([_at(0)]), torch.tensor([0]))
    assert metrics["recall_at_1"] == 0.0 and metrics["recall_at_5"] == 1.0 and metrics["map_at_r"] == 0.0


def test_an_entry_whose_extra_is_not_installed_says_which_extra_to_install():
    registry = Registry("eval", "ssltrain.eval")
    registry.register("exotic", extra="exotic-extra", modules=("no_such_module_for_ssltrain",))(lambda: None)
    with pytest.raises(UserError, match=r"eval=exotic needs no_such_module_for_ssltrain; install it with "
                                        r"pip install 'ssltrain\[exotic-extra\]'"):
        registry.check_installed("exotic")


@pytest.fixture(scope="module")
def several_protocols_run(tmp_path_factory) -> Path:
    """The output folder of a run evaluated by five protocols (trainer.epochs=0)."""
    folder = tmp_path_factory.mktemp("several-protocols")
    result = run_cli(smoke("trainer.epochs=0", "eval=[linear,kmeans,retrieval,layers,embedding]",
                           "+eval.settings.linear.epochs=2", "+eval.settings.linear.label_fraction=0.5",
                           "+eval.settings.layers.epochs=2", "+eval.settings.layers.label_fraction=0.5",
                           "+eval.settings.embedding.samples=30"), folder)
    assert result.returncode == 0, result.stderr
    return next(folder.glob("outputs/*/*/results.json")).parent


def test_several_protocols_run_on_one_encoder_and_write_their_metrics_into_one_results_file(several_protocols_run):
    results = json.loads((several_protocols_run / "results.json").read_text())
    assert results["eval"] == "linear,kmeans,retrieval,layers,embedding"
    assert sorted(path.name for path in (several_protocols_run / "pictures").iterdir()) == [
        "embedding-tsne.png", "linear-confusion.json", "linear-confusion.png", "linear-per-class.png"]
    assert (results["label_fraction"], results["labelled_images"]) == (0.5, 0.5 * results["eval_train_images"])
    for name in ("linear_top1", "knn_top1", "kmeans_nmi", "kmeans_ari", "kmeans_accuracy", "recall_at_1",
                 "recall_at_5", "recall_at_10", "map_at_r", "stage0_top1", "stage1_top1"):
        assert 0.0 <= results[name] <= 1.0, name


def test_every_number_of_the_results_file_is_one_trainer_objective_accepts_before_the_run(several_protocols_run):
    results = json.loads((several_protocols_run / "results.json").read_text())
    for name in result_numbers(results):
        check_objective(name, ["linear", "kmeans", "retrieval", "layers", "embedding"])


def test_protocols_asked_for_different_label_fractions_are_refused_at_the_start():
    with pytest.raises(UserError, match=r"the protocols' label fractions differ \(linear 0.1, finetune 1\)"):
        compose_settings(["eval=[linear,finetune]", "+eval.settings.linear.label_fraction=0.1"])
