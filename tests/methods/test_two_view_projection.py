"""What Barlow Twins and VICReg share (methods/redundancy.py): each view is projected on
its own, so BatchNorm statistics never mix the two views."""

from __future__ import annotations

import pytest
import torch

from kit import views_batch
from ssltrain.data.batch import Batch
from ssltrain.registry import ENCODERS, METHODS


@pytest.mark.parametrize("name", ["barlow_twins", "vicreg"])
def test_each_view_is_batch_normalised_on_its_own(name):
    torch.manual_seed(0)
    encoder = ENCODERS.build("small_cnn", channels=(8, 16))
    method = METHODS.build(name, context={"encoder": encoder}, proj_hidden_dim=32, proj_output_dim=16).train()
    first, second, other = views_batch([16, 16, 16], batch=6).views
    labels = torch.zeros(6, dtype=torch.long)
    z1, _ = method.project(Batch(views=[first, second], labels=labels))
    z1_again, _ = method.project(Batch(views=[first, 5 * other], labels=labels))
    torch.testing.assert_close(z1, z1_again)
