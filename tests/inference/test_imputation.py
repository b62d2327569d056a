"""Imputation estimators (eq. 5.14; SNIS): known answers on a tiny model."""

import math

import torch

from vizvae.inference.imputation import missing_log_likelihood, predictive_target, resampled_draws
from vizvae.models import PartialVAE, PartialVAEConfig
from vizvae.models.base import PosteriorDraws


def tiny():
    torch.manual_seed(0)
    return PartialVAE(PartialVAEConfig(input_shape=(6,), latent_dims=(2,), hidden_dims=(8,), predictor_hidden_dims=(4,),
                                       n_classes=3))


def test_missing_log_likelihood_is_log_mean_of_p_x_u_over_draws():
    model = tiny()
    g = torch.Generator().manual_seed(1)
    x = (torch.rand(2, 6, generator=g) > 0.5).float()
    mask = torch.tensor([[True, False, True, False, True, True], [False, False, True, True, True, False]])
    draws = torch.randn(2, 4, 2, generator=g)  # (batch, k, latent)
    estimate = missing_log_likelihood(model, x, mask, draws)
    for row in range(2):
        with torch.no_grad():
            p = torch.sigmoid(model.decoder.body(draws[row]))  # (k, 6)
        per_draw = torch.where(x[row] == 1, p, 1 - p)[:, ~mask[row]].prod(-1)  # p(x_U | ε_i)
        assert math.isclose(float(estimate[row]), math.log(float(per_draw.mean())), rel_tol=1e-5)
    # with weights: log Σ w_i p(x_U | ε_i); all weight on draw 2 picks that draw alone
    log_w = torch.full((2, 4), -1e9)
    log_w[:, 2] = 0.0
    single = missing_log_likelihood(model, x, mask, draws[:, 2:3])
    torch.testing.assert_close(missing_log_likelihood(model, x, mask, draws, log_w), single)


def test_predictive_target_is_the_weighted_mixture_of_per_draw_predictions():
    model = tiny()
    g = torch.Generator().manual_seed(2)
    x = (torch.rand(3, 6, generator=g) > 0.5).float()
    mask = torch.rand(3, 6, generator=g) > 0.5
    draws = torch.randn(3, 5, 2, generator=g)
    probs = predictive_target(model, x, mask, draws)
    per_draw = model.predict_y(x.unsqueeze(1), mask.unsqueeze(1), draws)  # (3, 5, 3)
    torch.testing.assert_close(probs, per_draw.mean(1))
    torch.testing.assert_close(probs.sum(-1), torch.ones(3))
    weights = torch.softmax(torch.randn(3, 5, generator=g), -1)
    torch.testing.assert_close(predictive_target(model, x, mask, draws, weights.log()),
                               (weights.unsqueeze(-1) * per_draw).sum(1))


def test_resampled_draws_follow_the_importance_weights():
    samples = torch.arange(2 * 4 * 1, dtype=torch.float32).reshape(2, 4, 1)  # (batch, k, latent)
    assert resampled_draws(PosteriorDraws(samples)) is samples  # equal weights pass through
    log_w = torch.full((2, 4), -math.inf)
    log_w[0, 2] = 0.0  # row 0: all weight on draw 2
    log_w[1] = torch.log(torch.tensor([0.5, 0.5, 0.0, 0.0]))  # row 1: draws 0 and 1 only
    out = resampled_draws(PosteriorDraws(samples, log_w), torch.Generator().manual_seed(0))
    assert out.shape == samples.shape
    assert torch.all(out[0] == samples[0, 2])
    assert set(out[1, :, 0].tolist()) <= {samples[1, 0, 0].item(), samples[1, 1, 0].item()}
