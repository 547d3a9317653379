"""Every method's recipe composes with every optimizer and trains, through the run's own
builders: the optimizer values come from the chosen optimizer (and the method's recipe
for it), never from another optimizer."""

from __future__ import annotations

import pytest
import torch

from kit import required_overrides, tiny_encoder_overrides, train_step, views_batch
from ssltrain.build import build_method, build_optimizer
from ssltrain.compose import compose_settings
from ssltrain.registry import METHODS, OPTIMIZERS



@pytest.mark.parametrize("optimizer", OPTIMIZERS.names())
@pytest.mark.parametrize("method", METHODS.names())
def test_every_method_trains_a_step_with_every_optimizer(method, optimizer):
    encoder = tiny_encoder_overrides(METHODS.get(method).encoder_kinds[0])
    settings = compose_settings([f"method={method}", f"optimizer={optimizer}", *encoder, "trainer.epochs=1",
                                 *required_overrides(method)])
    torch.manual_seed(0)
    model = build_method(settings, image_size=32, num_classes=4)  # views_batch's labels: 4 classes
    built, schedule = build_optimizer(settings, model, steps_per_epoch=1)
    before = [p.detach().clone() for p in model.encoder.parameters() if p.requires_grad]
    batch = views_batch(settings.augmentation.view_sizes(32), target=model.needs_target)
    outputs = train_step(model, batch, built, schedule)
    assert torch.isfinite(outputs["loss"])
    after = [p for p in model.encoder.parameters() if p.requires_grad]
    assert any(not torch.equal(b, a) for b, a in zip(before, after)), "the encoder did not move"
