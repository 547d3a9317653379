"""VAE: reparameterisation, the negative ELBO, the KL warmup and the prior samples."""

from __future__ import annotations

import pytest
import torch

from kit import views_batch
from ssltrain.encoders.small import small_cnn
from ssltrain.losses.gaussian_kl import gaussian_kl
from ssltrain.methods.vae import VAE, reparameterize

from pretext_testing import assert_picture_grids


def build(**options) -> VAE:
    torch.manual_seed(0)
    return VAE(small_cnn(channels=(8, 16)), image_size=16, **options)


def test_reparameterised_samples_have_the_posterior_mean_and_deviation():
    mean, log_var = torch.full((20000, 1), 1.5), torch.full((20000, 1), 2 * torch.log(torch.tensor(0.5)))
    z = reparameterize(mean, log_var)
    assert z.mean().item() == pytest.approx(1.5, abs=0.02) and z.std().item() == pytest.approx(0.5, abs=0.02)


def test_reparameterisation_passes_gradients_to_mean_and_log_variance():
    mean, log_var = torch.zeros(4, 3, requires_grad=True), torch.zeros(4, 3, requires_grad=True)
    reparameterize(mean, log_var).pow(2).sum().backward()
    assert mean.grad.abs().sum() > 0 and log_var.grad.abs().sum() > 0


def test_the_loss_is_half_the_summed_squared_error_plus_beta_times_kl():
    method = build(beta=0.5, latent_dim=8)
    batch = views_batch([16], batch=3)
    images = batch.views[0]
    torch.manual_seed(7)
    out = method.training_step(batch)
    torch.manual_seed(7)
    mean, log_var = method.posterior(images)
    outputs = method.generate(reparameterize(mean, log_var))
    reconstruction = sum(0.5 * ((outputs[i] - images[i]) ** 2).sum() for i in range(3)) / 3
    kl = gaussian_kl(mean, log_var)
    assert out["reconstruction"].item() == pytest.approx(reconstruction.item(), rel=1e-4)
    assert out["loss"].item() == pytest.approx((reconstruction + 0.5 * kl).item(), rel=1e-4)


def test_the_kl_weight_ramps_linearly_over_the_warmup_then_stays_at_beta():
    method = build(beta=2.0, kl_warmup=0.5)
    weights = []
    for step in (0, 25, 50, 99):
        method.on_step_start(step, 100)
        weights.append(method.kl_weight)
    assert weights == pytest.approx([0.0, 1.0, 2.0, 2.0])


def test_without_warmup_the_kl_weight_is_beta_from_the_start():
    method = build(beta=0.3)
    method.on_step_start(0, 100)
    assert method.kl_weight == 0.3


def test_images_show_inputs_reconstructions_and_the_same_prior_samples_each_time():
    method = build().eval()
    batch = views_batch([16], batch=4)
    with torch.no_grad():
        first, second = method.images(batch), method.images(batch)
    assert set(first) == {"inputs", "outputs", "samples"}
    assert torch.equal(first["samples"], second["samples"])
    assert_picture_grids(first, (4, 3, 16, 16))
