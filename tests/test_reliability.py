"""Runs cannot clobber each other, ordinary failures are one line, and checkpoints by time resume exactly."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from conftest import REPO, run_cli, smoke
from ssltrain.errors import UserError
from ssltrain.runtime import checkpoint as checkpoint_module
from ssltrain.runtime.checkpoint import Checkpointer, CheckpointInterval, Progress, run_identity
from ssltrain.runtime.run_dir import RunLock, claim, remove_stale_temporaries

IDENTITY = "same-config"


def unfinished_run(root: Path, name: str, identity: str = IDENTITY, finished: bool = False, age: float = 0) -> Path:
    """A run folder as an interrupted (or, with finished, a completed) run leaves it."""
    run_dir = root / name
    (run_dir / "checkpoints").mkdir(parents=True)
    summary = run_dir / "checkpoints" / "last.json"
    summary.write_text(json.dumps({"identity": identity, "epoch": 1, "step": 8}))
    if finished:
        (run_dir / "results.json").write_text("{}")
    stamp = time.time() - age
    os.utime(summary, (stamp, stamp))
    return run_dir


def test_a_run_folder_is_locked_by_one_process_and_the_second_is_told_the_owners_pid(tmp_path):
    with RunLock(tmp_path).acquire():
        assert RunLock(tmp_path).try_acquire() == os.getpid()
        with pytest.raises(UserError, match=f"in use by another ssltrain process \\(pid {os.getpid()}\\)"):
            RunLock(tmp_path).acquire()
    assert RunLock(tmp_path).try_acquire() is None, "released on exit"


def _hold_lock(run_dir: Path) -> subprocess.Popen:
    """Another process that owns `run_dir` (as a run does) until killed."""
    owner = subprocess.Popen([sys.executable, "-c", "import sys, time; from pathlib import Path; "
                              "from ssltrain.runtime.run_dir import RunLock; RunLock(Path(sys.argv[1])).acquire(); "
                              "print('locked', flush=True); time.sleep(120)", str(run_dir)],
                             stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert owner.stdout.readline().strip() == "locked"
    return owner


def test_a_killed_owner_leaves_no_stale_lock(tmp_path):
    owner = _hold_lock(tmp_path)
    assert RunLock(tmp_path).try_acquire() == owner.pid
    owner.send_signal(signal.SIGKILL)
    owner.wait()
    assert RunLock(tmp_path).try_acquire() is None


def test_resume_continues_the_newest_unfinished_run_of_the_same_config_and_names_it(tmp_path, caplog):
    outputs = tmp_path / "outputs"
    unfinished_run(outputs, "old", age=100)
    newest = unfinished_run(outputs, "newest", age=10)
    unfinished_run(outputs, "other-config", identity="another", age=1)
    with caplog.at_level(logging.INFO):
        claimed = claim(outputs / "fresh", [outputs], IDENTITY, resume_auto=True)
    claimed.lock.release()
    assert claimed.run_dir == newest and claimed.resumes
    assert f"resuming the unfinished run in {newest}" in caplog.text
    assert not (outputs / "fresh").exists(), "the folder made for this start is removed"


def test_an_unfinished_run_older_than_a_finished_one_of_the_same_config_is_not_resumed(tmp_path):
    outputs = tmp_path / "outputs"
    unfinished_run(outputs, "abandoned", age=100)
    unfinished_run(outputs, "finished-later", finished=True, age=10)
    claimed = claim(outputs / "fresh", [outputs], IDENTITY, resume_auto=True)
    claimed.lock.release()
    assert claimed.run_dir == outputs / "fresh" and not claimed.resumes


def test_a_second_process_cannot_resume_a_run_another_is_resuming(tmp_path):
    outputs = tmp_path / "outputs"
    interrupted = unfinished_run(outputs, "interrupted")
    with RunLock(interrupted).acquire():
        with pytest.raises(UserError, match="holds the newest unfinished run of this config"):
            claim(outputs / "second", [outputs], IDENTITY, resume_auto=True)


def test_a_resumed_run_keeps_its_whole_log_in_its_own_folder(tmp_path):
    outputs = tmp_path / "outputs"
    interrupted = unfinished_run(outputs, "interrupted")
    (interrupted / "ssltrain.log").write_text("first session\n")
    fresh = outputs / "fresh"
    fresh.mkdir()
    handler = logging.FileHandler(fresh / "ssltrain.log")
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        logging.getLogger("ssltrain").warning("second session starts")
        claim(fresh, [outputs], IDENTITY, resume_auto=True).lock.release()
        logging.getLogger("ssltrain").warning("second session trains")
    finally:
        root.removeHandler(handler)
        handler.close()
    log = (interrupted / "ssltrain.log").read_text()
    assert log.index("first session") < log.index("second session starts") < log.index("second session trains")
    assert not fresh.exists()


def test_a_folder_holding_a_run_of_another_config_is_refused(tmp_path):
    unfinished_run(tmp_path, "taken", identity="lr-0.1")
    with pytest.raises(UserError, match="already holds another run"):
        claim(tmp_path / "taken", [], "lr-0.3", resume_auto=True)


def test_a_start_removes_the_temporary_files_a_killed_write_left(tmp_path):
    run_dir = unfinished_run(tmp_path, "run")
    leftover = run_dir / "checkpoints" / ".last.pt.k2j3.tmp"
    leftover.write_bytes(b"half a checkpoint")
    claim(run_dir, [], IDENTITY, resume_auto=True).lock.release()
    assert not leftover.exists() and (run_dir / "checkpoints" / "last.json").exists()


def test_a_write_killed_midway_leaves_the_previous_checkpoint_whole_and_the_next_start_removes_its_leftover(tmp_path):
    target = tmp_path / "checkpoints" / "last.pt"
    writer = subprocess.Popen([sys.executable, "-c", "import sys, torch; from ssltrain.runtime.atomic import atomic_save; "
                               "atomic_save({'step': 1}, sys.argv[1]); "
                               "atomic_save({'step': 2, 'weights': torch.ones(100_000_000)}, sys.argv[1])", str(target)],
                              env={**os.environ, "PYTHONPATH": str(REPO)})
    deadline = time.time() + 60
    while not (target.exists() and list(target.parent.glob(".last.pt.*.tmp"))) and time.time() < deadline:
        time.sleep(0.005)  # the first write done, the second under way
    writer.send_signal(signal.SIGKILL)
    writer.wait()
    assert list(target.parent.glob(".last.pt.*.tmp")), "killed while writing"
    assert torch.load(target, weights_only=True) == {"step": 1}
    remove_stale_temporaries(tmp_path)  # what a start does (test_a_start_removes_the_temporary_files_a_killed_write_left)
    assert not list(target.parent.glob(".last.pt.*.tmp"))


def test_a_checkpoint_that_cannot_be_written_goes_to_the_rescue_folder_and_the_run_goes_on(tmp_path, monkeypatch):
    monkeypatch.setattr(checkpoint_module, "RETRY_SECONDS", 0)
    monkeypatch.setattr(checkpoint_module.tempfile, "gettempdir", lambda: str(tmp_path / "tmp"))
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "checkpoints").write_text("a file where the folder should be")
    model = torch.nn.Linear(2, 2)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    checkpointer = Checkpointer(run_dir, {"trainer": {"seed": 0}})
    written = checkpointer.save(model, optimizer, torch.amp.GradScaler("cpu", enabled=False), Progress(step=3))
    assert written == checkpointer.rescue_path and written.is_relative_to(tmp_path / "tmp")
    assert torch.load(written, weights_only=True)["progress"]["step"] == 3


@pytest.mark.parametrize("text, steps, seconds", [("500", 500, None), ("30s", None, 30.0), ("5min", None, 300.0),
                                                  ("2h", None, 7200.0), ("epoch", None, None)])
def test_checkpoint_every_reads_steps_a_wall_time_or_epoch(text, steps, seconds):
    assert CheckpointInterval.parse(text) == CheckpointInterval(steps, seconds)


def test_checkpoint_every_refuses_other_values_with_the_valid_forms():
    with pytest.raises(UserError, match=r"give steps \(500\), a time \(30s, 5min, 2h\) or epoch"):
        CheckpointInterval.parse("5 minutes")


RESUMABLE = smoke("trainer.epochs=3", "dataset.num_images=640", "trainer.resume=auto", "eval=none",
                  "trainer.log_every=3")  # 20 steps per epoch


def _finished(cwd: Path) -> tuple[dict, dict]:
    """The backbone and last.json of the one finished run under `cwd`."""
    [run_dir] = [path.parent for path in cwd.glob("outputs/**/results.json")]
    return (torch.load(run_dir / "backbone.pt", weights_only=True),
            json.loads((run_dir / "checkpoints" / "last.json").read_text()))


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> tuple[dict, dict]:
    cwd = tmp_path_factory.mktemp("uninterrupted")
    assert run_cli(RESUMABLE, cwd).returncode == 0
    return _finished(cwd)


def _start(cwd: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "ssltrain", *RESUMABLE, *extra], cwd=cwd, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(REPO)})


def _wait_for_checkpoint(cwd: Path, mid_epoch: bool) -> dict:
    deadline, summary = time.time() + 120, {}
    while time.time() < deadline and not (summary and (summary.get("step_in_epoch") or not mid_epoch)):
        for path in cwd.glob("outputs/**/checkpoints/last.json"):
            try:
                summary = json.loads(path.read_text())
            except ValueError:
                pass
        time.sleep(0.02)
    return summary


def _resume_and_compare(cwd: Path, uninterrupted: tuple[dict, dict]) -> None:
    resumed = run_cli(RESUMABLE, cwd)
    assert resumed.returncode == 0, resumed.stderr
    assert "resumed at epoch" in resumed.stdout  # Hydra logs to stdout
    (expected, expected_progress), (actual, actual_progress) = uninterrupted, _finished(cwd)
    for key in expected:
        assert torch.equal(expected[key], actual[key]), key
    assert actual_progress["images_seen"] == expected_progress["images_seen"] == 3 * 20 * 32
    assert actual_progress["step"] == expected_progress["step"]


def test_ctrl_c_saves_a_checkpoint_and_the_same_command_ends_as_if_never_stopped(tmp_path, uninterrupted):
    process = _start(tmp_path)
    _wait_for_checkpoint(tmp_path, mid_epoch=False)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 2, stderr
    assert "rerun the same command to resume" in stderr.strip().splitlines()[-1]
    summary = json.loads(next(tmp_path.glob("outputs/**/checkpoints/last.json")).read_text())
    assert not summary["finished"] and 0 < summary["step"] < 3 * 20
    _resume_and_compare(tmp_path, uninterrupted)


def test_a_run_killed_mid_epoch_resumes_from_its_timed_checkpoint_and_ends_bit_identical(tmp_path, uninterrupted):
    process = _start(tmp_path, "trainer.checkpoint_every=0.1s")
    summary = _wait_for_checkpoint(tmp_path, mid_epoch=True)
    process.send_signal(signal.SIGKILL)
    process.communicate()
    assert summary.get("step_in_epoch") and not summary["finished"], "killed after a mid-epoch checkpoint"
    _resume_and_compare(tmp_path, uninterrupted)


def test_an_output_folder_that_cannot_be_written_is_one_line(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    result = run_cli(smoke(f"hydra.run.dir={blocker / 'run'}"), tmp_path)
    assert result.returncode == 2
    [line] = result.stderr.strip().splitlines()
    assert line.startswith(f"ssltrain: error: cannot write the output folder {blocker / 'run'}")


def test_a_second_process_on_a_run_folder_stops_with_one_line_naming_the_owner(tmp_path):
    run_dir = tmp_path / "shared"
    owner = _hold_lock(run_dir)
    try:
        second = run_cli(smoke("trainer.epochs=1", f"hydra.run.dir={run_dir}"), tmp_path)
    finally:
        owner.kill()
        owner.wait()
    assert second.returncode == 2
    [line] = second.stderr.strip().splitlines()
    assert f"is in use by another ssltrain process (pid {owner.pid})" in line
    assert not (run_dir / "config.yaml").exists() and (run_dir / "ssltrain.log").exists(), "nothing written, nothing removed"


def _cli_with(failure: str, tmp_path: Path) -> subprocess.CompletedProcess:
    """The command line with run.run replaced by one that raises `failure`."""
    script = ("import sys, ssltrain.run as run\n"
              f"def fail(*args, **kwargs):\n    raise {failure}\n"
              "run.run = fail\n"
              "from ssltrain.cli import main\n"
              "sys.argv = ['ssltrain', *sys.argv[1:]]\n"
              "main()\n")
    return subprocess.run([sys.executable, "-c", script, *smoke("trainer.epochs=1")], cwd=tmp_path, text=True,
                          capture_output=True, timeout=120, env={**os.environ, "PYTHONPATH": str(REPO)})


def test_an_unexpected_error_is_one_line_with_the_traceback_in_the_runs_log(tmp_path):
    result = _cli_with("RuntimeError('disk controller on fire')", tmp_path)
    assert result.returncode == 1
    [line] = result.stderr.strip().splitlines()
    assert "unexpected error: RuntimeError: disk controller on fire" in line
    [log] = tmp_path.glob("outputs/**/ssltrain.log")
    assert str(log) in line and "Traceback" in log.read_text()


def test_ctrl_c_outside_training_is_one_line_and_leaves_no_empty_folder(tmp_path):
    result = _cli_with("KeyboardInterrupt", tmp_path)
    assert result.returncode == 130
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("ssltrain: stopped by Ctrl-C; rerun the same command")
    assert not list(tmp_path.glob("outputs/*/*"))


def test_help_version_and_mistyped_names_answer_without_importing_torch(tmp_path):
    from ssltrain import compose, schema_cache

    compose.store_code_defaults()  # what any command with the registries loaded does: leaves the schema cache
    assert schema_cache.load() is not None

    script = ("import sys\nfrom ssltrain.cli import main\n"
              "for args in (['--help'], ['--version'], ['method=simclrr'], ['method=byol', 'method.tau=0.9']):\n"
              "    sys.argv = ['ssltrain', *args]\n"
              "    try:\n        main()\n    except SystemExit:\n        pass\n"
              "print('torch imported:', 'torch' in sys.modules)\n")
    result = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, text=True, capture_output=True, timeout=60,
                            env={**os.environ, "PYTHONPATH": str(REPO)})
    assert "usage: ssltrain" in result.stdout and "ssltrain 0.1.0" in result.stdout
    assert "unknown method 'simclrr'" in result.stderr
    assert "unknown key 'method.tau'; valid keys in method: name, proj_hidden_dim" in result.stderr
    assert result.stdout.strip().endswith("torch imported: False")


def test_the_run_identity_ignores_settings_that_may_change_on_resume():
    config = {"trainer": {"seed": 0, "num_workers": 2, "checkpoint_every": "5min", "objective": None},
              "encoder": {"name": "vit_tiny", "checkpointing": False}, "optimizer": {"lr": 0.1}}
    assert run_identity(config) == run_identity({**config, "trainer": {"seed": 0, "num_workers": 8,
                                                                        "checkpoint_every": "1h", "objective": "knn_top1"},
                                                 "encoder": {"name": "vit_tiny", "checkpointing": True}})
    assert run_identity(config) != run_identity({**config, "optimizer": {"lr": 0.3}})
