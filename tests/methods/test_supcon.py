"""SupCon: L_out against a loop over anchors and positives, its reduction to SimCLR's
NT-Xent, the labels it requires (its learning check: tests/learning_checks.yaml)."""

from __future__ import annotations

import math

import pytest
import torch
from PIL import Image

from ssltrain.compose import compose_settings
from ssltrain.errors import UserError
from ssltrain.losses.nt_xent import nt_xent
from ssltrain.losses.supcon import supcon_loss
from ssltrain.run import run


def naive_supcon(z: torch.Tensor, labels: torch.Tensor, temperature: float) -> float:
    """Eq. (2) of the paper with loops: every (image, view) is an anchor once."""
    batch, views, _ = z.shape
    unit = z / z.norm(dim=-1, keepdim=True)
    items = [(b, v) for b in range(batch) for v in range(views)]
    total = 0.0
    for i in items:
        others = [a for a in items if a != i]
        similarity = {a: float(unit[i] @ unit[a]) / temperature for a in others}
        log_denominator = math.log(sum(math.exp(s) for s in similarity.values()))
        positives = [p for p in others if labels[p[0]] == labels[i[0]]]
        total += -sum(similarity[p] - log_denominator for p in positives) / len(positives)
    return total / len(items)


def test_loss_matches_a_hand_computation_over_anchors_and_positives():
    generator = torch.Generator().manual_seed(0)
    z = torch.randn(5, 3, 4, generator=generator, dtype=torch.float64)  # 5 images, 3 views
    labels = torch.tensor([0, 1, 0, 2, 1])
    assert supcon_loss(z, labels, 0.5).item() == pytest.approx(naive_supcon(z, labels, 0.5), rel=1e-10)


def test_with_every_label_distinct_and_two_views_it_is_simclrs_nt_xent():
    generator = torch.Generator().manual_seed(1)
    z1, z2 = torch.randn(2, 7, 6, generator=generator, dtype=torch.float64)
    supcon = supcon_loss(torch.stack([z1, z2], dim=1), torch.arange(7), 0.2)
    assert supcon.item() == pytest.approx(nt_xent(z1, z2, 0.2).item(), rel=1e-10)


def test_collapsed_embeddings_cost_the_log_of_the_number_of_other_views():
    # every similarity equal: each positive gets probability 1 / (N*V - 1)
    z = torch.ones(4, 3, 5, dtype=torch.float64)  # 4 images, 3 views, all the same vector
    labels = torch.tensor([0, 1, 0, 1])
    assert supcon_loss(z, labels, 0.1).item() == pytest.approx(math.log(4 * 3 - 1), rel=1e-10)


def test_same_class_views_lower_the_loss_when_they_are_close():
    close = torch.tensor([[[1.0, 0.0], [1.0, 0.1]], [[1.0, 0.05], [0.9, 0.0]], [[0.0, 1.0], [0.1, 1.0]]])  # [3, 2, 2]
    same_class, other_class = torch.tensor([0, 0, 1]), torch.tensor([0, 1, 2])
    assert supcon_loss(close, same_class, 0.1) < supcon_loss(close, other_class, 0.1)


def test_supcon_on_an_unlabelled_image_folder_fails_with_one_line_asking_for_labels(tmp_path):
    (tmp_path / "train").mkdir()
    for index in range(4):
        Image.new("RGB", (32, 32), (60 * index, 80, 120)).save(tmp_path / "train" / f"{index}.png")
    settings = compose_settings(["method=supcon", "encoder=small_cnn", "dataset=imagefolder", "eval=none",
                                 f"dataset.root={tmp_path}", "dataset.image_size=32", "dataset.cache=false",
                                 "trainer.batch_size=2", "trainer.device=cpu"])
    with pytest.raises(UserError) as error:
        run(settings, tmp_path / "run", search_roots=[])
    assert str(error.value) == "method supcon needs labelled images; imagefolder has none"
