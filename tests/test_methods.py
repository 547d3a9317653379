"""Every registered method, without test code of its own: builds, steps, learns something.

A new method gets these for free; its own test file checks its loss against a hand
computation and whatever its paper specifies (stop-gradients, schedules, targets).
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from ssltrain.data.batch import Batch
from ssltrain.methods.base import SSLMethod, encode_each, encode_views
from ssltrain.optim.param_groups import default_param_groups
from ssltrain.registry import ENCODERS, METHODS

IMAGE_SIZE = 32
TINY_ENCODERS = {"cnn": ("small_cnn", {"channels": (8, 16)}), "vit": ("vit_tiny", {"depth": 2})}


def build(name: str, **options) -> SSLMethod:
    """The method with its default hyperparameters on the smallest encoder it accepts."""
    torch.manual_seed(0)
    encoder_name, encoder_options = TINY_ENCODERS[METHODS.get(name).encoder_kinds[0]]
    encoder = ENCODERS.build(encoder_name, context={"image_size": IMAGE_SIZE}, **encoder_options)
    context = {"encoder": encoder, "image_size": IMAGE_SIZE, "num_classes": 10, "mean": (0.5,) * 3, "std": (0.25,) * 3}
    return METHODS.build(name, context=context, **options)


def tiny_batch(method: SSLMethod, size: int = 8) -> Batch:
    views = max(2, method.views[0]) if method.views[1] is None else method.views[1]
    generator = torch.Generator().manual_seed(1)
    return Batch(views=[torch.randn(size, 3, IMAGE_SIZE, IMAGE_SIZE, generator=generator) for _ in range(views)],
                 labels=torch.arange(size) % 4)


def one_step(method: SSLMethod, batch: Batch, lr: float = 0.05) -> dict[str, torch.Tensor]:
    optimizer = torch.optim.SGD([g for g in default_param_groups(method) if g["params"]], lr=lr)
    method.train()
    method.on_step_start(0, 10)
    outputs = method(batch)
    optimizer.zero_grad()
    outputs["loss"].backward()
    optimizer.step()
    method.after_optimizer_step(0, 10)
    return outputs


@pytest.mark.parametrize("name", METHODS.names())
def test_one_step_gives_a_finite_loss_and_changes_the_encoder(name):
    method = build(name)
    before = [p.detach().clone() for p in method.encoder.parameters()]
    outputs = one_step(method, tiny_batch(method))
    assert outputs["loss"].ndim == 0 and torch.isfinite(outputs["loss"])
    assert all(value.ndim == 0 for value in outputs.values()), "every logged output is a scalar"
    changed = [not torch.equal(b, p) for b, p in zip(before, method.encoder.parameters())]
    assert any(changed), "the encoder did not move"


@pytest.mark.parametrize("name", METHODS.names())
def test_state_dict_round_trips_into_a_fresh_instance(name):
    method = build(name)
    one_step(method, tiny_batch(method))
    fresh = build(name)
    fresh.load_state_dict(method.state_dict())
    for key, value in fresh.state_dict().items():
        assert torch.equal(value, method.state_dict()[key]), key


@pytest.mark.parametrize("name", METHODS.names())
def test_images_are_grids_in_the_unit_range(name):
    method = build(name)
    method.eval()
    with torch.no_grad():
        grids = method.images(tiny_batch(method))
    for tag, images in grids.items():
        assert images.ndim == 4 and images.shape[1] == 3, tag
        assert images.min() >= 0 and images.max() <= 1, tag


def test_encode_views_runs_same_size_views_together_and_keeps_their_order():
    calls = []

    def network(x):
        calls.append(x.shape[0])
        return x.mean(dim=(1, 2, 3))

    views = [torch.full((2, 3, 8, 8), 1.0), torch.full((2, 3, 4, 4), 2.0), torch.full((2, 3, 8, 8), 3.0)]
    outputs = encode_views(views, network)
    assert sorted(calls) == [2, 4]
    assert [o.tolist() for o in outputs] == [[1.0, 1.0], [2.0, 2.0], [3.0, 3.0]]


def test_encode_each_gives_every_view_what_the_network_gives_it_alone():
    network = nn.BatchNorm1d(3, affine=False).train()  # normalises over whatever batch it is given
    generator = torch.Generator().manual_seed(0)
    views = [torch.randn(8, 3, generator=generator), 10 + torch.randn(8, 3, generator=generator)]
    outputs = encode_each(views, network)
    for view, output in zip(views, outputs):
        torch.testing.assert_close(output, network(view))
