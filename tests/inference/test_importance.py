"""Self-normalised importance sampling and SIR (vizvae/inference/importance.py): known weights."""

from __future__ import annotations

import math

import pytest
import torch

from tests.inference.factor_analysis import (
    MASK, X, FactorAnalysis, posterior,
)
from vizvae.inference.importance import importance_resample
from vizvae.kernels.importance import kish_ess

pytestmark = pytest.mark.usefixtures("one_thread")


def test_an_exact_proposal_gets_equal_weights():
    """With q(z | x) = p(z | x) the ratio p(x, z) / q(z | x) = p(x) for every draw."""
    generator = torch.Generator().manual_seed(0)
    z, log_w, index = importance_resample(FactorAnalysis(), X[None], None, 200, 30, generator)
    assert z.shape == (1, 200, 2) and log_w.shape == (1, 200) and index.shape == (1, 30)
    assert torch.allclose(log_w, torch.full_like(log_w, -math.log(200)), atol=1e-9)
    assert float(kish_ess(log_w)[0]) == pytest.approx(200.0)


def test_weights_correct_a_wrong_proposal():
    generator = torch.Generator().manual_seed(1)
    model = FactorAnalysis(gain=0.6, shift=0.3, std_scale=1.5)
    z, log_w, index = importance_resample(model, X[None], MASK[None], 20_000, 4000, generator)
    exact_mean, exact_covariance = posterior(X, MASK)
    weights = log_w.exp()[0]
    assert float(weights.sum()) == pytest.approx(1.0)
    ess = float(kish_ess(log_w)[0])
    se = (torch.diagonal(exact_covariance) / ess).sqrt()
    snis_mean = (weights[:, None] * z[0]).sum(0)
    assert ((snis_mean - exact_mean).abs() < 4 * se).all()  # the proposal's own mean is far off
    assert ((model.encode(X[None], MASK[None]).mean[0] - exact_mean).abs() > 10 * se).any()
    resampled = z[0, index[0]]  # SIR: approximately p(z | x_O)
    assert ((resampled.mean(0) - exact_mean).abs() < 4 * (torch.diagonal(exact_covariance) / 1000).sqrt()).all()


def test_draws_without_any_usable_weight_fall_back_to_equal_weights():
    class Broken(FactorAnalysis):
        def log_joint(self, x, mask, z, y=None, y_mask=None):
            return torch.full(z.shape[:-1], torch.nan, dtype=z.dtype)

    _, log_w, index = importance_resample(Broken(), X[None], MASK[None], 10, 5, torch.Generator().manual_seed(0))
    assert torch.allclose(log_w, torch.full_like(log_w, -math.log(10)))
    assert ((index >= 0) & (index < 10)).all()
