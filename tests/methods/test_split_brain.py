"""Split-brain: the L bin targets, the halves (half the small CNN's channels each) and what
evaluation sees (the concatenated features of the L and ab halves)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from conftest import smoke
from kit import train_step, views_batch
from ssltrain.compose import compose_settings
from ssltrain.encoders.small import small_cnn
from ssltrain.features import load_feature_encoder
from ssltrain.methods.split_brain import SplitBrain, SplitBrainEncoder, lightness_bins
from ssltrain.pretext.color import rgb_to_lab
from ssltrain.run import run
from ssltrain.runtime.run_files import BACKBONE_FILE

MEAN, STD = (0.5, 0.4, 0.3), (0.25, 0.2, 0.3)


def _method(**options) -> SplitBrain:
    torch.manual_seed(0)
    return SplitBrain(small_cnn(channels=(8, 16)), image_size=16, mean=MEAN, std=STD, grid=20.0, sigma=10.0, **options)


def test_lightness_falls_in_equal_bins_of_0_to_100():
    lightness = torch.tensor([0.0, 0.5, 0.99, 1.0, 42.3, 99.99, 100.0]).view(1, 1, 1, 7)
    assert lightness_bins(lightness, 100).flatten().tolist() == [0, 0, 0, 1, 42, 99, 99]
    assert lightness_bins(lightness, 4).flatten().tolist() == [0, 0, 0, 0, 1, 3, 3]


def test_each_half_has_half_the_channels_and_the_encoder_gives_both_features():
    method = _method()
    assert [block[0].out_channels for block in method.encoder.lightness.blocks] == [4, 8]
    assert method.encoder.out_dim == 16
    images = (torch.rand(3, 3, 16, 16) - torch.tensor(MEAN).view(1, 3, 1, 1)) / torch.tensor(STD).view(1, 3, 1, 1)
    method.eval()
    with torch.no_grad():
        features = method.encoder(images)
        grey, colour, _ = method.encoder.inputs(images)
        assert torch.equal(features, torch.cat([method.encoder.lightness(grey), method.encoder.colour(colour)], dim=1))


def test_the_halves_see_only_their_channels():
    method = _method()
    pixels = torch.rand(2, 3, 8, 8)
    images = (pixels - torch.tensor(MEAN).view(1, 3, 1, 1)) / torch.tensor(STD).view(1, 3, 1, 1)
    grey, colour, lab = method.encoder.inputs(images)
    grey_lab = rgb_to_lab(grey * torch.tensor(STD).view(1, 3, 1, 1) + torch.tensor(MEAN).view(1, 3, 1, 1))
    torch.testing.assert_close(grey_lab[:, 0], lab[:, 0], atol=0.05, rtol=0)  # same L, no colour
    assert grey_lab[:, 1:].abs().max() < 0.05
    colour_lab = rgb_to_lab(colour * torch.tensor(STD).view(1, 3, 1, 1) + torch.tensor(MEAN).view(1, 3, 1, 1))
    assert (colour_lab[:, 0] - 50).abs().max() < 20, "a fixed lightness (up to the gamut clamp)"


def test_each_half_is_trained_by_its_own_prediction_only():
    method = _method()
    batch = views_batch([16], batch=4)
    method.train()
    grey, _, lab = method.encoder.inputs(batch.views[0])
    ab_logits = method.ab_decoder(method.encoder.lightness.forward_features(grey))
    method.ab.loss(ab_logits, lab[:, 1:]).backward()
    assert all(p.grad is None for p in method.encoder.colour.parameters())
    assert any(p.grad is not None for p in method.encoder.lightness.parameters())
    assert torch.isfinite(train_step(_method(), batch)["loss"])


@pytest.fixture(scope="module")
def split_brain_run(tmp_path_factory) -> Path:
    """A finished one-epoch split_brain run's folder (in this process)."""
    folder = tmp_path_factory.mktemp("split-brain-run")
    run(compose_settings(smoke("method=split_brain", "method.grid=40", "trainer.epochs=1", "dataset.num_images=64",
                             "eval=none")),
        folder, search_roots=[])
    return folder


def test_a_split_brain_checkpoint_is_evaluated_with_both_halves(split_brain_run, tmp_path):
    results = run(compose_settings(smoke(f"checkpoint={split_brain_run}", "dataset.num_images=64")), tmp_path,
                  search_roots=[])
    assert results["method"] == "split_brain" and 0.0 <= results["knn_top1"] <= 1.0


def test_ssltrain_extract_loads_a_split_brain_backbone_as_the_pair_of_halves(split_brain_run):
    encoder = load_feature_encoder(split_brain_run / BACKBONE_FILE, None, None)
    saved = torch.load(split_brain_run / BACKBONE_FILE, weights_only=True)
    assert isinstance(encoder.module, SplitBrainEncoder)
    assert all(torch.equal(encoder.module.state_dict()[name], value) for name, value in saved.items())
