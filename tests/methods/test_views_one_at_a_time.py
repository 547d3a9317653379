"""BYOL, SimSiam, MoCo v2, MoCo v3 and NNCLR run each view through their online and
momentum networks on its own, as their reference code does, so every BatchNorm layer
normalises (and keeps running statistics of) one view's batch at a time."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from siamese_kit import SMALL_HEADS, tiny_cnn, two_views

from ssltrain.methods.byol import BYOL
from ssltrain.methods.moco import MoCo
from ssltrain.methods.mocov3 import MoCoV3
from ssltrain.methods.nnclr import NNCLR
from ssltrain.methods.simsiam import SimSiam

BUILDERS = {
    "byol": lambda: BYOL(tiny_cnn(), pred_hidden_dim=32, **SMALL_HEADS),
    "simsiam": lambda: SimSiam(tiny_cnn(), pred_hidden_dim=32, **SMALL_HEADS),
    "moco": lambda: MoCo(tiny_cnn(), queue_size=64, **SMALL_HEADS),
    "mocov3": lambda: MoCoV3(tiny_cnn(), pred_hidden_dim=32, **SMALL_HEADS),
    "nnclr": lambda: NNCLR(tiny_cnn(), pred_hidden_dim=32, queue_size=64, **SMALL_HEADS),
}


@pytest.mark.parametrize("name", BUILDERS)
def test_every_batchnorm_layer_sees_one_views_batch_at_a_time(name):
    method, batch = BUILDERS[name](), two_views(size=8)
    batch_sizes = []
    for module in method.modules():
        if isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)):
            module.register_forward_pre_hook(lambda _, inputs: batch_sizes.append(len(inputs[0])))
    method.train()
    with torch.no_grad():
        method(batch)
    assert batch_sizes and set(batch_sizes) == {8}
