"""The `ssltrain` command end to end, in subprocesses, on small synthetic data."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from conftest import run_cli, smoke


def run_dirs(cwd: Path, root: str = "outputs") -> list[Path]:
    return sorted(path.parent for path in (cwd / root).glob("**/.hydra"))


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    cwd = tmp_path_factory.mktemp("cli")
    result = run_cli(smoke("trainer.epochs=2", "eval=linear", "eval.epochs=3", "trainer.knn_every=1"), cwd)
    assert result.returncode == 0, result.stderr
    [run_dir] = run_dirs(cwd)
    return run_dir


def test_a_run_writes_results_with_every_promised_field(finished_run):
    results = json.loads((finished_run / "results.json").read_text())
    for key in ("method", "encoder", "dataset", "epochs", "pretrain_seconds", "images_per_second", "val_split",
                "knn_top1", "linear_top1", "linear_top5"):
        assert results[key] is not None, key
    assert (results["method"], results["encoder"], results["dataset"], results["epochs"]) == (
        "simclr", "small_cnn", "synthetic", 2)
    assert results["val_split"] == "test" and 0.0 <= results["linear_top1"] <= 1.0


def test_a_run_keeps_its_checkpoint_backbone_and_resolved_config(finished_run):
    checkpoint = torch.load(finished_run / "checkpoints" / "last.pt", weights_only=True)
    assert checkpoint["progress"]["finished"] and checkpoint["progress"]["epoch"] == 2
    backbone = torch.load(finished_run / "backbone.pt", weights_only=True)
    encoder_keys = {k[len("encoder."):] for k in checkpoint["method"] if k.startswith("encoder.")}
    assert set(backbone) == encoder_keys
    assert "encoder:\n  name: small_cnn" in (finished_run / "config.yaml").read_text()


def test_a_run_logs_scalars_the_views_grid_and_hparams_to_tensorboard(finished_run):
    events = EventAccumulator(str(finished_run / "tensorboard")).Reload()
    assert {"train/loss", "train/lr", "train/images_per_second"} <= set(events.Tags()["scalars"])
    assert "train/views" in events.Tags()["images"]
    assert [event.step for event in events.Scalars("eval/knn_top1")] == [8, 16], "kNN monitor every epoch"
    assert list((finished_run / "tensorboard" / "hparams").glob("events.*"))


def test_a_run_logs_its_effective_schedule_at_start(finished_run):
    log = (finished_run / "ssltrain.log").read_text()
    # simclr's recipe warms up for 10 epochs; a 2-epoch run gets at most a tenth of its length
    assert "warm-up 0.2 epochs (the recipe's 10, capped at 10% of the run)" in log


def test_cfg_job_shows_the_chosen_optimizers_own_settings(tmp_path):
    result = run_cli(["method=byol", "optimizer=adamw", "--cfg", "job"], tmp_path)
    assert result.returncode == 0, result.stderr
    optimizer = yaml.safe_load(result.stdout)["optimizer"]
    assert (optimizer["name"], optimizer["lr"], optimizer["weight_decay"]) == ("adamw", 1.0e-3, 0.05)
    assert "trust_coefficient" not in optimizer and "momentum" not in optimizer


def test_a_bad_method_argument_fails_before_any_work_in_one_line(tmp_path):
    result = run_cli(["method=inpainting", "method.block=40", "dataset=synthetic"], tmp_path)
    assert result.returncode == 2
    [line] = result.stderr.strip().splitlines()
    assert line == "ssltrain: error: method.block=40 must be between 1 and the image size 32"
    assert not (tmp_path / "outputs").exists()


def test_a_bad_override_prints_one_line_and_exits_2(tmp_path):
    result = run_cli(["method=simclrr"], tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [result.stderr.strip()]
    assert result.stderr.startswith("ssltrain: error: unknown method 'simclrr'; valid choices: ")
    assert not (tmp_path / "outputs").exists()


def test_a_missing_dataset_says_how_to_point_at_a_local_copy(tmp_path):
    result = run_cli(["dataset=cifar10", f"dataset.root={tmp_path / 'nothing'}", "dataset.download=false"], tmp_path)
    assert result.returncode == 2
    [line] = result.stderr.strip().splitlines()
    assert "CIFAR-10 is not under" in line and "set dataset.root=DIR" in line


def test_evaluating_a_checkpoint_skips_pretraining_and_reports_its_method(finished_run, tmp_path):
    result = run_cli(smoke("method=byol", f"checkpoint={finished_run}", "encoder=resnet18", "dataset.num_images=128"),
                     tmp_path)
    assert result.returncode == 0, result.stderr
    [run_dir] = run_dirs(tmp_path)
    results = json.loads((run_dir / "results.json").read_text())
    # the method and encoder come from the checkpoint's own run, whatever the command line says
    assert run_dir.name.endswith("-eval-simclr-small_cnn")
    assert (results["method"], results["encoder"], results["epochs"]) == ("simclr", "small_cnn", 2)
    assert (results["train_images"], results["eval_train_images"]) == (256, 128)


def test_a_backbone_file_evaluates_with_the_configured_encoder(finished_run, tmp_path):
    result = run_cli(smoke(f"checkpoint={finished_run / 'backbone.pt'}"), tmp_path)
    assert result.returncode == 0, result.stderr
    result = run_cli(smoke(f"checkpoint={finished_run / 'backbone.pt'}", "encoder=resnet18"), tmp_path)
    assert result.returncode == 2 and "do not fit encoder resnet18" in result.stderr


def test_fine_tuning_evaluation_reports_its_accuracy(finished_run, tmp_path):
    result = run_cli(smoke(f"checkpoint={finished_run / 'checkpoints' / 'last.pt'}", "eval=finetune", "eval.epochs=1",
                           "eval.freeze_stages=1"), tmp_path)
    assert result.returncode == 0, result.stderr
    results = json.loads(next(tmp_path.glob("outputs/**/results.json")).read_text())
    assert 0.0 <= results["finetune_top1"] <= 1.0 and "knn_top1" in results


def test_resume_from_a_path_continues_that_checkpoint_in_a_new_run(finished_run, tmp_path):
    checkpoint = finished_run / "checkpoints" / "last.pt"
    result = run_cli(smoke("trainer.epochs=3", f"trainer.resume={checkpoint}"), tmp_path)
    assert result.returncode == 0, result.stderr
    assert "resumed at epoch 2" in result.stdout
    assert json.loads(next(tmp_path.glob("outputs/**/results.json")).read_text())["epochs"] == 3


def test_zero_epochs_evaluates_the_randomly_initialised_encoder_with_its_batchnorm_statistics_estimated(tmp_path):
    result = run_cli(smoke("trainer.epochs=0"), tmp_path)
    assert result.returncode == 0, result.stderr
    results = json.loads((run_dirs(tmp_path)[0] / "results.json").read_text())
    assert results["epochs"] == 0 and results["images_per_second"] is None and "knn_top1" in results
    assert "BatchNorm statistics estimated on 256 training images" in result.stdout


def test_a_multirun_sweep_runs_every_combination(tmp_path):
    result = run_cli(["-m", *smoke("trainer.epochs=0", "trainer.seed=0,1", "eval=knn,none")], tmp_path)
    assert result.returncode == 0, result.stderr
    results = [json.loads((d / "results.json").read_text()) for d in run_dirs(tmp_path, "multirun")]
    assert sorted((r["seed"], r["eval"]) for r in results) == [(0, "knn"), (0, "none"), (1, "knn"), (1, "none")]
    names = sorted(d.name.split("-", 1)[1] for d in run_dirs(tmp_path, "multirun"))
    assert names[0] == "simclr-small_cnn-eval=knn,trainer.seed=0", "a job's folder names the overrides its jobs vary"


def test_a_bad_sweep_value_fails_before_any_job_runs(tmp_path):
    result = run_cli(["-m", *smoke("trainer.epochs=0", "trainer.seed=0,x")], tmp_path)
    assert result.returncode == 2 and "'trainer.seed'" in result.stderr
    assert not (tmp_path / "multirun").exists()


def test_resume_never_starts_afresh_beside_an_unfinished_run(tmp_path):
    checkpoint_dir = tmp_path / "outputs" / "old" / "checkpoints"
    checkpoint_dir.mkdir(parents=True)
    (checkpoint_dir / "last.json").write_text(json.dumps({"identity": "whatever", "epoch": 1}))
    result = run_cli(smoke("trainer.epochs=1", "trainer.resume=never"), tmp_path)
    assert result.returncode == 0, result.stderr
    assert "resuming" not in result.stdout + result.stderr and "resumed at" not in result.stdout + result.stderr
