"""On CUDA, every registered method trains from the CLI with a full-size encoder: ResNet-18,
or ViT-Tiny for the ViT-only methods, with each method's own recipe (optimizer,
augmentation, heads) on synthetic data, then evaluates. Skipped without CUDA; on the GPU
machine run `pytest -m gpu`.
"""

from __future__ import annotations

import json
import math

import pytest
import torch

from conftest import run_cli, smoke
from kit import required_overrides
from ssltrain.registry import METHODS

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")]

FULL_SIZE_ENCODERS = {"cnn": "resnet18", "vit": "vit_tiny"}


@pytest.mark.parametrize("name", METHODS.names())
def test_every_method_trains_and_evaluates_on_cuda_with_a_full_size_encoder(name, tmp_path):
    encoder = FULL_SIZE_ENCODERS[METHODS.get(name).encoder_kinds[0]]
    done = run_cli(smoke(f"method={name}", f"encoder={encoder}", "trainer.device=cuda", "trainer.epochs=1",
                         "dataset.num_images=1024", "trainer.batch_size=128", "hydra.run.dir=run",
                         *required_overrides(name)), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert results["device"] == torch.cuda.get_device_name()
    assert (results["method"], results["encoder"]) == (name, encoder)
    assert math.isfinite(results["knn_top1"]) and results["images_per_second"] > 0
