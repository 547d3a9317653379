"""Names of run folders, as OmegaConf resolvers that configs/config.yaml's `hydra.run.dir`
and `hydra.sweep.subdir` call. Light (no torch): Hydra resolves them before a job starts."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from omegaconf import OmegaConf

from ssltrain.runtime.run_files import CONFIG_FILE, run_folder


def _pretrained_names(checkpoint: str) -> Optional[tuple[str, str]]:
    """(method, encoder) of the run a checkpoint path (a run folder, its last.pt or its
    backbone.pt) comes from, read from that run's config.yaml; None when there is none."""
    try:
        config = OmegaConf.load(run_folder(Path(checkpoint).expanduser()) / CONFIG_FILE)
        return str(config.method.name), str(config.encoder.name)
    except Exception:  # no readable config beside it: a bare backbone file
        return None


def run_name(method: str, encoder: str, checkpoint: Optional[str]) -> str:
    """`simclr-resnet18` for a pretraining run; `eval-<method>-<encoder>` of the evaluated
    checkpoint's own run, or `eval-<encoder>` for a bare backbone.pt."""
    if not checkpoint:
        return f"{method}-{encoder}"
    names = _pretrained_names(str(checkpoint))
    return f"eval-{names[0]}-{names[1]}" if names else f"eval-{encoder}"


def job_suffix(override_dirname: str) -> str:
    """A sweep job's differing overrides (Hydra's override_dirname, limited by cli.py to the
    swept keys) as a folder-name suffix: `-optimizer.lr=0.1`."""
    return f"-{override_dirname.replace('/', '_')}" if override_dirname else ""


def register() -> None:
    OmegaConf.register_new_resolver("ssltrain.run_name", run_name, replace=True)
    OmegaConf.register_new_resolver("ssltrain.job_suffix", job_suffix, replace=True)
