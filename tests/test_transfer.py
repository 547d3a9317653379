"""Transfer: pretrain on one dataset, evaluate on another (eval_dataset=NAME), its images at
the encoder's input size; the one-line refusals before any work."""

from __future__ import annotations

import json

import pytest
import torch

from conftest import run_cli, smoke
from kit import write_image_folder
from ssltrain.compose import compose_settings
from ssltrain.encoders.small import small_cnn
from ssltrain.errors import UserError
from ssltrain.registry import DATASETS
from ssltrain.run import run


def _results(tmp_path, pattern: str = "outputs/**/results.json") -> dict:
    return json.loads(max(tmp_path.glob(pattern), key=lambda path: path.stat().st_mtime).read_text())


def test_eval_dataset_is_a_dataset_entry_with_its_own_keys():
    settings = compose_settings(["eval_dataset=cifar100", "eval_dataset.limit=300", "eval_dataset.root=/data/c100"])
    assert settings.dataset.name == "cifar10" and settings.eval_dataset.name == "cifar100"
    assert (settings.eval_dataset.limit, settings.eval_dataset.options["root"]) == (300, "/data/c100")


def test_without_eval_dataset_the_run_evaluates_on_its_pretraining_dataset():
    assert compose_settings([]).eval_dataset is None


def test_an_eval_dataset_key_without_an_eval_dataset_says_to_choose_one():
    with pytest.raises(UserError, match=r"eval_dataset.root sets a key of the evaluation dataset, and none is chosen; "
                                        rf"add eval_dataset=<one of {', '.join(DATASETS.names())}>"):
        compose_settings(["eval_dataset.root=/data"])


def test_a_bad_eval_dataset_value_names_the_eval_dataset_key():
    with pytest.raises(UserError, match=r"^eval_dataset.holdout_fraction=2.0 must be in \(0, 1\)"):
        compose_settings(["eval_dataset=synthetic", "eval_dataset.holdout_fraction=2"])


def _run(overrides: list[str], folder) -> dict:
    """A run in this process (the command line's own path is tested once, below)."""
    return run(compose_settings(overrides), folder, search_roots=[])


def test_pretraining_on_one_dataset_evaluates_on_the_other_and_names_both(tmp_path):
    results = _run(smoke("trainer.epochs=1", "eval_dataset=synthetic", "eval_dataset.num_images=300",
                         "eval_dataset.num_classes=3", "eval_dataset.seed=7"), tmp_path)
    assert (results["dataset"], results["train_images"]) == ("synthetic", 256)
    assert (results["eval_dataset"], results["eval_train_images"], results["val_images"]) == ("synthetic", 300, 60)


def test_a_finished_run_is_evaluated_on_a_folder_of_other_sized_images_resized_to_its_input(tmp_path):
    assert run_cli(smoke("trainer.epochs=0", "eval=none"), tmp_path).returncode == 0
    run_dir = next(tmp_path.glob("outputs/*/*"))
    write_image_folder(tmp_path / "folder", classes=("a", "b", "c"), per_class=6, size=20, corrupt=False)
    # dataset= stays at its default (cifar10 under data/, absent): a checkpoint with an eval_dataset never loads it
    result = run_cli(["checkpoint=" + str(run_dir), "eval=knn", "eval.k=3", "eval_dataset=imagefolder",
                      f"eval_dataset.root={tmp_path / 'folder'}", "eval_dataset.holdout_fraction=0.5",
                      "trainer.num_workers=0"], tmp_path)
    assert result.returncode == 0, result.stderr
    said = result.stdout + result.stderr
    assert "imagefolder images at 32 px, the encoder's input size, not the configured 224" in said
    results = _results(tmp_path, "outputs/*/*-eval-*/results.json")
    assert (results["dataset"], results["eval_dataset"], results["val_images"]) == ("synthetic", "imagefolder", 9)
    assert results["knn_top1"] == 1.0  # one flat colour per class


def test_an_unlabelled_eval_dataset_is_refused_in_one_line_naming_the_key(tmp_path):
    (tmp_path / "loose" / "train").mkdir(parents=True)
    write_image_folder(tmp_path / "tmp", per_class=3, corrupt=False)
    for path in (tmp_path / "tmp").rglob("*.png"):
        path.rename(tmp_path / "loose" / "train" / f"{path.parent.name}-{path.name}")
    with pytest.raises(UserError, match=r"^eval=knn needs labelled images and eval_dataset=imagefolder has none here; "
                                        r"give eval_dataset a labelled copy \(root/train/<class>/\*\), or use eval=none$"):
        _run(smoke("trainer.epochs=0", "eval_dataset=imagefolder", f"eval_dataset.root={tmp_path / 'loose'}"),
             tmp_path / "run")


def test_weights_that_do_not_fit_the_encoder_stop_the_run_before_any_image_loads(tmp_path):
    weights = tmp_path / "backbone.pt"
    torch.save(small_cnn(channels=(8, 16)).state_dict(), weights)
    # the dataset is absent: loading it first would fail on that instead
    overrides = ["checkpoint=" + str(weights), "encoder=small_cnn", "encoder.channels=[8,32]", "eval=knn",
                 "dataset=cifar10", f"dataset.root={tmp_path / 'nowhere'}", "dataset.download=false"]
    with pytest.raises(UserError, match=f"^the weights in {weights} do not fit encoder small_cnn"):
        _run(overrides, tmp_path / "run")
