"""Pseudo-Gibbs and Metropolis-within-Gibbs on factor analysis, where p(x_U | x_O) is exact:
pseudo-Gibbs is exact only when the encoder is the true posterior and biased otherwise — for good,
more sweeps do not help — while Metropolis-within-Gibbs corrects any encoder."""

from __future__ import annotations

import pytest
import torch

from tests.inference.factor_analysis import (
    MASK, N, WRONG, X, FactorAnalysis, assert_matches_exact, exact_conditional,
)
from vizvae.inference.gibbs import metropolis_within_gibbs, pseudo_gibbs
from vizvae.inference.imputers import ImputationSettings, impute

pytestmark = pytest.mark.usefixtures("one_thread")


def errors_in_standard_errors(result) -> torch.Tensor:
    mean, covariance = exact_conditional()
    return (result.mean[0, ~MASK] - mean) / (torch.diagonal(covariance) / N).sqrt()


def test_pseudo_gibbs_is_exact_when_the_encoder_is_the_posterior():
    # q(z | x) = p(z | x) for complete rows (diagonal by construction): a true Gibbs sampler
    result = impute(FactorAnalysis(), X[None], MASK[None], "pseudo_gibbs",
                    ImputationSettings(n_samples=N, n_iterations=30, seed=3))
    assert_matches_exact(result, N)


def test_pseudo_gibbs_is_biased_when_the_encoder_is_not_and_more_sweeps_do_not_help():
    model = FactorAnalysis(**WRONG)
    short = errors_in_standard_errors(impute(model, X[None], MASK[None], "pseudo_gibbs",
                                             ImputationSettings(n_samples=N, n_iterations=25, seed=3)))
    long = errors_in_standard_errors(impute(model, X[None], MASK[None], "pseudo_gibbs",
                                            ImputationSettings(n_samples=N, n_iterations=100, seed=4)))
    assert short.abs().max() > 20 and long.abs().max() > 20  # tens of standard errors off
    assert torch.allclose(short, long, atol=6.0)  # the same stationary bias, not a slow start
    # on the same model, with the same encoder, Metropolis-within-Gibbs is unbiased
    fixed = errors_in_standard_errors(impute(model, X[None], MASK[None], "mwg",
                                             ImputationSettings(n_samples=N, n_iterations=100, seed=3)))
    assert fixed.abs().max() < 4


def test_metropolis_accepts_every_proposal_of_an_exact_encoder():
    """With q(z | x_O, x̂_U) = p(z | x_O, x̂_U) the ratio ρ is 1 — Algorithm 1 is then pseudo-Gibbs."""
    exact = metropolis_within_gibbs(FactorAnalysis(), X[None], MASK[None], n_chains=50, n_iterations=10,
                                    generator=torch.Generator().manual_seed(0))
    assert exact.acceptance.shape == (10, 1, 50)
    assert torch.allclose(exact.acceptance, torch.ones_like(exact.acceptance))
    wrong = metropolis_within_gibbs(FactorAnalysis(**WRONG), X[None], MASK[None], n_chains=50, n_iterations=10,
                                    generator=torch.Generator().manual_seed(0))
    assert 0.05 < wrong.acceptance_rate < 0.9


@pytest.mark.parametrize("sampler", [pseudo_gibbs, metropolis_within_gibbs])
def test_chains_keep_the_observed_entries(sampler):
    x = torch.stack([X, 2 * X])
    mask = torch.stack([MASK, MASK.flip(0)])
    chains = sampler(FactorAnalysis(**WRONG), x, mask, n_chains=6, n_iterations=4,
                     generator=torch.Generator().manual_seed(1))
    assert chains.latents.shape == (2, 6, 2) and chains.completed.shape == (2, 6, 6)
    assert chains.likelihood.mean.shape == (2, 6, 6)
    assert (chains.completed[0][:, MASK] == X[MASK]).all()
    assert (chains.completed[1][:, MASK.flip(0)] == 2 * X[MASK.flip(0)]).all()
    # the likelihood is p(x | z_T) of the chains' final latents
    assert torch.allclose(chains.likelihood.mean, FactorAnalysis().decode(chains.latents).mean)
