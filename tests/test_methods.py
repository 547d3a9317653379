"""Every registered method, without test code of its own: builds, steps, learns something.

A new method gets these for free; its own test file checks its loss against a hand
computation and whatever its paper specifies (stop-gradients, schedules, targets).
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from kit import TINY_ENCODERS, train_step, views_batch
from ssltrain.data.batch import Batch
from ssltrain.methods.base import SSLMethod, encode_each, encode_views
from ssltrain.registry import ENCODERS, METHODS

IMAGE_SIZE = 32
# the methods that override SSLMethod.images (anywhere in their class hierarchy)
MAKE_IMAGES = [name for name in METHODS.names() if METHODS.get(name).images is not SSLMethod.images]


def build(name: str, **options) -> SSLMethod:
    """The method with its default hyperparameters on the smallest encoder it accepts."""
    torch.manual_seed(0)
    encoder_name, encoder_options = TINY_ENCODERS[METHODS.get(name).encoder_kinds[0]]
    encoder = ENCODERS.build(encoder_name, context={"image_size": IMAGE_SIZE}, **encoder_options)
    context = {"encoder": encoder, "image_size": IMAGE_SIZE, "num_classes": 10, "mean": (0.5,) * 3, "std": (0.25,) * 3,
               "num_images": 16}
    return METHODS.build(name, context=context, **options)


def tiny_batch(method: SSLMethod) -> Batch:
    """As many views as the method trains on (two where it takes any number from one)."""
    fewest, most = method.views
    return views_batch([IMAGE_SIZE] * (max(2, fewest) if most is None else most), target=method.needs_target)


@pytest.mark.parametrize("name", METHODS.names())
def test_one_step_gives_a_finite_loss_and_changes_the_encoder(name):
    method = build(name)
    before = [p.detach().clone() for p in method.encoder.parameters()]
    outputs = train_step(method, tiny_batch(method))
    assert outputs["loss"].ndim == 0 and torch.isfinite(outputs["loss"])
    assert all(value.ndim == 0 for value in outputs.values()), "every logged output is a scalar"
    changed = [not torch.equal(b, p) for b, p in zip(before, method.encoder.parameters())]
    assert any(changed), "the encoder did not move"


def features_and_loss(method: SSLMethod, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
    """The encoder's features in eval mode (BatchNorm's running statistics) and the
    training loss in train mode, under a fixed seed."""
    method.eval()
    with torch.no_grad():
        features = method.encoder(batch.views[0])
    method.train()
    torch.manual_seed(0)
    return features, method(batch)["loss"].detach()


@pytest.mark.parametrize("name", METHODS.names())
def test_a_trained_state_dict_loaded_into_a_fresh_instance_gives_the_same_features_and_loss(name):
    trained = build(name)
    batch = tiny_batch(trained)
    train_step(trained, batch)
    reloaded, untrained = build(name), build(name)
    reloaded.load_state_dict(trained.state_dict())
    expected_features, expected_loss = features_and_loss(trained, batch)
    features, loss = features_and_loss(reloaded, batch)
    torch.testing.assert_close(features, expected_features)
    torch.testing.assert_close(loss, expected_loss)
    assert not torch.allclose(features_and_loss(untrained, batch)[0], expected_features), "the step changed nothing"


def images_of(method: SSLMethod) -> dict[str, torch.Tensor]:
    method.eval()
    with torch.no_grad():
        return method.images(tiny_batch(method))


@pytest.mark.parametrize("name", MAKE_IMAGES)
def test_a_method_that_makes_images_gives_grids_in_the_unit_range(name):
    grids = images_of(build(name))
    assert grids, "it overrides images() but made none"
    for tag, images in grids.items():
        assert images.ndim == 4 and images.shape[1] == 3, tag
        assert images.min() >= 0 and images.max() <= 1, tag


def test_the_other_methods_make_no_images():
    others = [name for name in METHODS.names() if name not in MAKE_IMAGES]
    assert others and MAKE_IMAGES
    for name in others:
        assert images_of(build(name)) == {}, name


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
