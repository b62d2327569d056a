"""``evaluate --task exactness``: quadrature moments and the pass rule, against a Gaussian posterior
whose mean and covariance are known in closed form."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vizvae.evaluation.exactness import exact_moments, row_report
from vizvae.inference.posterior import PosteriorTarget
from vizvae.models.distributions import DiagonalGaussian

MEAN = torch.tensor([0.7, -1.2])
COVARIANCE = torch.tensor([[0.30, 0.12], [0.12, 0.10]])  # a tilted ellipse: not axis-aligned


class GaussianPosterior(torch.nn.Module):
    """A stand-in model whose p(z | x) is N(MEAN, COVARIANCE) and whose encoder is a poor diagonal fit."""

    latent_dim = 2

    def __init__(self):
        super().__init__()
        self.anchor = torch.nn.Parameter(torch.zeros(()))  # gives the target a dtype and a device
        self.precision = torch.linalg.inv(COVARIANCE)

    @property
    def device(self) -> torch.device:
        return self.anchor.device

    def log_joint(self, x, mask, z):
        centred = z - MEAN
        return -0.5 * ((centred @ self.precision) * centred).sum(-1)

    def encode(self, x, mask):
        return DiagonalGaussian(MEAN.expand(len(x), 2) + 0.3, torch.full((len(x), 2), 0.2))


def test_quadrature_gives_the_gaussians_mean_and_variance():
    mean, variance = exact_moments(PosteriorTarget(GaussianPosterior(), torch.zeros(3)))
    np.testing.assert_allclose(mean, MEAN.numpy(), atol=1e-4)
    np.testing.assert_allclose(variance, torch.diagonal(COVARIANCE).numpy(), rtol=1e-3)


def test_exact_draws_pass_and_over_dispersed_draws_fail():
    generator = torch.Generator().manual_seed(0)
    chol = torch.linalg.cholesky(COVARIANCE.double())
    draws = (MEAN.double() + torch.randn(50, 40, 2, generator=generator, dtype=torch.float64) @ chol.T).numpy()
    variance = torch.diagonal(COVARIANCE).double().numpy()
    report = row_report(draws, MEAN.double().numpy(), variance, MEAN.numpy() + 0.3, np.full(2, 0.04))
    assert report["passes"], report
    assert max(report["mean_error_se"]) < 4.0 and all(0.8 <= r <= 1.25 for r in report["variance_ratio"])
    assert report["encoder_mean_error_sd"] == pytest.approx((0.3 / np.sqrt(variance)).round(2).tolist())
    wide = MEAN.double().numpy() + 1.5 * (draws - MEAN.double().numpy())  # variance × 2.25
    assert not row_report(wide, MEAN.double().numpy(), variance, MEAN.numpy(), variance)["passes"]
    shifted = draws + 0.5 * np.sqrt(variance)  # half an sd off: far beyond 3 standard errors of 2,000 draws
    assert not row_report(shifted, MEAN.double().numpy(), variance, MEAN.numpy(), variance)["passes"]
