"""Posterior gaps and the bounds behind them, against a linear-Gaussian model with known answers;
ESS and R-hat against independent draws."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from tests.inference.linear_gaussian import (
    MASK, X, exact_encoder_model, exact_posterior, kl_diagonal, log_evidence, wrong_encoder_model,
)
from vizvae.inference.gaps import (
    IWAE_KS, GaussianProposal, best_gaussian, elbo_estimate, hmc_gaussian, importance_log_weights,
    iwae_curve, iwae_curve_se, posterior_gaps,
)
from vizvae.inference.posterior import PosteriorTarget, ess_and_rhat, posterior_grid
from vizvae.kernels.importance import kish_ess
from vizvae.models.distributions import DiagonalGaussian


@pytest.mark.parametrize("mask", [None, MASK], ids=["all observed", "feature 2 missing"])
def test_quadrature_log_evidence_matches_the_analytic_one(mask):
    target = PosteriorTarget.from_row(wrong_encoder_model(mask), X, mask)
    grid = posterior_grid(target)
    assert abs(grid.log_evidence - log_evidence(mask)) < 1e-6
    # the normalised grid density integrates to one and its marginal mean is the posterior mean
    marginal_1, marginal_2 = grid.marginals()
    assert abs(np.trapezoid(marginal_1, grid.z1) - 1.0) < 1e-6
    exact = exact_posterior(mask)
    assert abs(np.trapezoid(marginal_1 * grid.z1, grid.z1) - float(exact.mean[0])) < 1e-6
    assert abs(np.trapezoid(marginal_2 * grid.z2, grid.z2) - float(exact.mean[1])) < 1e-6


def test_quadrature_resolves_a_posterior_far_narrower_than_the_first_grid():
    """The zoom: a posterior with σ ≈ 0.005 is invisible on the first grid's 0.15 spacing."""
    from tests.inference import linear_gaussian as lg

    sharp = lg.LinearGaussianModel(torch.zeros(2, dtype=lg.DTYPE), torch.ones(2, dtype=lg.DTYPE))
    with torch.no_grad():
        sharp.weight.mul_(100.0)
    target = PosteriorTarget.from_row(sharp, X)
    x, w, b = X, 100.0 * lg.W, lg.B
    covariance = w @ w.T + lg.SIGMA**2 * torch.eye(3, dtype=lg.DTYPE)
    expected = float(torch.distributions.MultivariateNormal(b, covariance).log_prob(x))
    assert abs(posterior_grid(target).log_evidence - expected) < 1e-5


def test_gaps_of_a_gaussian_posterior_approximation_zero_amortisation_the_kl():
    """ELBO(q) = log p(x) − KL(q ‖ p(z|x)): with the posterior in the family, q* is the posterior,
    the approximation gap is 0 and the amortisation gap is KL(q_φ ‖ p(z|x))."""
    model = wrong_encoder_model()
    target = PosteriorTarget.from_row(model, X)
    exact_log_evidence = log_evidence()
    gaps = posterior_gaps(target, log_evidence_quadrature=posterior_grid(target).log_evidence, seed=0)
    posterior = exact_posterior()
    assert torch.allclose(gaps.best.mean, posterior.mean, atol=1e-3)
    assert torch.allclose(gaps.best.std, posterior.std, rtol=1e-3)
    assert gaps.log_evidence_source == "quadrature"
    assert abs(gaps.approximation_gap) < 1e-4
    expected_amortisation = kl_diagonal(target.encoder_posterior(), posterior)
    assert expected_amortisation > 0.3
    # ELBO(q_φ) is a Monte Carlo estimate over 2000 draws: compare within 4 standard errors
    encoder = target.encoder_posterior()
    noise = torch.randn(2000, 2, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    z = encoder.mean + encoder.std * noise
    standard_error = float((target.log_joint(z) - encoder.log_prob(z)).std()) / math.sqrt(2000)
    assert abs(gaps.amortisation_gap - expected_amortisation) < 4 * standard_error
    assert gaps.amortisation_gap >= 0
    assert abs(gaps.total_gap - (gaps.approximation_gap + gaps.amortisation_gap)) < 1e-12
    assert abs(gaps.log_evidence - exact_log_evidence) < 1e-6


@pytest.mark.parametrize("seed", [1, 3, 29])  # the seeds whose estimates lie furthest above zero
def test_amortisation_gap_is_zero_for_a_perfect_encoder_and_never_negative(seed):
    """The true gap is 0 and ELBO(q*) − ELBO(q_φ) = −KL(q* ‖ p(z|x)) ≤ 0, so a positive estimate is
    Monte Carlo noise of ELBO(q*) on the n noise draws: bounded by 4 standard errors of it."""
    n_elbo_samples = 2000
    target = PosteriorTarget.from_row(exact_encoder_model(MASK), X, MASK)
    gaps = posterior_gaps(target, log_evidence_quadrature=log_evidence(MASK), n_elbo_samples=n_elbo_samples,
                          n_steps=50, seed=seed)
    # at the posterior every log-weight equals log p(x): the ELBO estimate has no noise at all
    assert abs(gaps.elbo_encoder - log_evidence(MASK)) < 1e-9
    best = gaps.best  # q*, or q_φ itself when q* did not beat it (then the gap is exactly 0)
    noise = torch.randn(50_000, 2, generator=torch.Generator().manual_seed(100 + seed), dtype=torch.float64)
    z = best.mean + best.std * noise
    log_weights_minus_evidence = target.log_joint(z) - best.log_prob(z) - log_evidence(MASK)
    standard_error = float(log_weights_minus_evidence.std()) / math.sqrt(n_elbo_samples)
    assert standard_error < 1e-3  # q* stays near the posterior it started at
    assert 0.0 <= gaps.amortisation_gap <= 4 * standard_error
    quadrature_error = 1e-6  # test_quadrature_log_evidence_matches_the_analytic_one
    assert abs(gaps.approximation_gap) <= 4 * standard_error + quadrature_error


def test_elbo_estimate_is_log_evidence_minus_kl():
    model = wrong_encoder_model()
    target = PosteriorTarget.from_row(model, X)
    q = target.encoder_posterior()
    noise = torch.randn(200_000, 2, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    expected = log_evidence() - kl_diagonal(q, exact_posterior())
    assert abs(float(elbo_estimate(target, q, noise)) - expected) < 5e-3


def test_best_gaussian_converges_to_the_posterior_and_its_elbo_rises():
    target = PosteriorTarget.from_row(wrong_encoder_model(MASK), X, MASK)
    best = best_gaussian(target, n_steps=300, seed=4)
    posterior = exact_posterior(MASK)
    assert torch.allclose(best.posterior.mean, posterior.mean, atol=1e-3)
    assert torch.allclose(best.posterior.std, posterior.std, rtol=1e-3)
    assert best.elbo_history[-10:].mean() > best.elbo_history[:10].mean() + 0.3
    assert abs(best.elbo_history[-1] - log_evidence(MASK)) < 1e-4  # sticking the landing: no noise left


def test_iwae_curve_rises_from_the_elbo_towards_the_quadrature_value():
    target = PosteriorTarget.from_row(wrong_encoder_model(), X)
    exact = posterior_grid(target).log_evidence
    log_weights = importance_log_weights(target, GaussianProposal.from_diagonal(target.encoder_posterior()), 5000,
                                         seed=5)
    curve = iwae_curve(log_weights, IWAE_KS)
    assert curve.shape == (len(IWAE_KS),)
    assert (np.diff(curve) >= 0).all()  # by construction: each K divides the next
    elbo = log_evidence() - kl_diagonal(target.encoder_posterior(), exact_posterior())
    assert abs(curve[0] - elbo) < 0.02  # K = 1 averages all 5000 log-weights: the ELBO
    assert exact - 0.01 < curve[-1] < exact + 0.01
    assert exact - curve[2] > 0.05  # K = 10 is still visibly below
    # the encoder is wider than the posterior here, so the weights are bounded and many draws count
    assert float(kish_ess(log_weights, dim=0)) > 1000


def test_iwae_curve_by_hand():
    log_weights = torch.log(torch.tensor([1.0, 3.0, 2.0, 6.0], dtype=torch.float64))
    curve = iwae_curve(log_weights, (1, 2, 4))
    expected = [np.log([1, 3, 2, 6]).mean(), (np.log(2.0) + np.log(4.0)) / 2, np.log(3.0)]
    assert np.allclose(curve, expected)
    with pytest.raises(ValueError):
        iwae_curve(log_weights, (8,))


def test_iwae_standard_error_by_hand():
    log_weights = torch.log(torch.tensor([1.0, 3.0, 2.0, 6.0], dtype=torch.float64))
    se = iwae_curve_se(log_weights, (1, 2, 4))
    groups = np.array([np.log(2.0), np.log(4.0)])  # log-mean-exp of (1, 3) and (2, 6)
    assert se[0] == pytest.approx(np.log([1, 3, 2, 6]).std(ddof=1) / 2)
    assert se[1] == pytest.approx(groups.std(ddof=1) / np.sqrt(2))
    assert np.isnan(se[2])  # one group: no spread to measure


def test_iwae_standard_error_matches_the_spread_of_independent_estimates():
    """30 independent pools of 8 × 100 weights: the standard deviation of their IWAE(100) values is
    what each pool's own standard error (from its 8 groups) estimates. With 30 pools the sample sd
    is within ±13 % (1 SE) of the truth, and each SE from 8 groups within ±27 %: the mean SE and the
    observed sd agree within a factor 1.6 (about 4 SE of the ratio)."""
    target = PosteriorTarget.from_row(wrong_encoder_model(), X)
    proposal = GaussianProposal.from_diagonal(target.encoder_posterior())
    values, errors = [], []
    for seed in range(30):
        log_weights = importance_log_weights(target, proposal, 800, seed=100 + seed)
        values.append(iwae_curve(log_weights, (100,))[0])
        errors.append(iwae_curve_se(log_weights, (100,))[0])
    ratio = float(np.mean(errors)) / float(np.std(values, ddof=1))
    assert 1 / 1.6 < ratio < 1.6


def test_the_largest_k_is_averaged_over_replicates_and_carries_its_error():
    target = PosteriorTarget.from_row(wrong_encoder_model(), X)
    gaps = posterior_gaps(target, ks=(1, 10, 100), n_elbo_samples=200, n_steps=20, replicates=8)
    assert gaps.log_evidence_source == "IWAE(100)"
    assert gaps.iwae_se.shape == (3,) and np.isfinite(gaps.iwae_se).all() and (gaps.iwae_se > 0).all()
    exact = posterior_grid(target).log_evidence
    assert abs(gaps.iwae[-1] - exact) < 4 * gaps.iwae_se[-1] + 0.02  # a bound: at most its bias (< 0.02) below


def test_full_covariance_proposal_log_prob_matches_torch():
    generator = torch.Generator().manual_seed(6)
    samples = torch.randn(400, 3, generator=generator, dtype=torch.float64) @ torch.tensor(
        [[1.0, 0.5, 0.0], [0.0, 1.0, 0.3], [0.0, 0.0, 0.5]], dtype=torch.float64)
    proposal = hmc_gaussian(samples, widen=1.0, shrinkage=0.0)
    covariance = proposal.scale_tril @ proposal.scale_tril.T
    assert torch.allclose(covariance, torch.cov(samples.T), atol=1e-5)
    z = proposal.rsample(7, generator)
    reference = torch.distributions.MultivariateNormal(proposal.mean, scale_tril=proposal.scale_tril).log_prob(z)
    assert torch.allclose(proposal.log_prob(z), reference)
    diagonal = DiagonalGaussian(torch.tensor([0.5, -1.0]), torch.tensor([2.0, 0.3]))
    point = torch.tensor([[0.1, 0.2]])
    assert torch.allclose(GaussianProposal.from_diagonal(diagonal).log_prob(point), diagonal.log_prob(point))


def test_hmc_gaussian_estimate_is_a_bound_that_reaches_the_evidence():
    """Draws from the exact posterior stand in for converged HMC: a Gaussian fitted to them and
    widened ×1.25 is a proposal whose weights are bounded, so IS_K closes in on log p(x) fast."""
    posterior = exact_posterior()
    draws = posterior.rsample(200, torch.Generator().manual_seed(7))
    target = PosteriorTarget.from_row(wrong_encoder_model(), X)
    gaps = posterior_gaps(target, hmc_samples=draws, n_steps=50, seed=8)
    assert gaps.hmc_iwae is not None and (np.diff(gaps.hmc_iwae) >= 0).all()
    exact = log_evidence()
    # K = 1: the ELBO of the widened fit; KL(N(μ, 1.25²σ²) ‖ N(μ, σ²)) is 0.058 per dimension
    assert exact - 0.3 < gaps.hmc_iwae[0] < exact - 0.1
    assert exact - 0.02 < gaps.hmc_iwae[2] < exact  # K = 10
    # Kish ESS ≈ 4000 of 5000: relative weight variance ≈ 0.2, so the standard error is ≈ 0.006 nats
    assert abs(gaps.hmc_iwae[-1] - exact) < 0.02
    # without quadrature the reference is the better of the two large-K estimates
    assert gaps.log_evidence_source in ("HMC-IS(5000)", "IWAE(5000)")
    assert gaps.log_evidence == max(gaps.hmc_iwae[-1], gaps.iwae[-1])
    assert gaps.hmc_ess > 0.8 * 5000


def test_ess_and_rhat_of_independent_draws():
    draws = np.random.default_rng(0).normal(size=(4, 500, 3))  # (chains, draws, dim)
    ess, rhat = ess_and_rhat(draws)
    assert ess.shape == rhat.shape == (3,)
    assert np.all(np.abs(ess / 2000 - 1) < 0.15)
    assert np.all(np.abs(rhat - 1) < 0.01)
    # chains that disagree about the mean: R-hat flags them
    shifted = draws + np.arange(4)[:, None, None]
    _, rhat_shifted = ess_and_rhat(shifted)
    assert np.all(rhat_shifted > 1.5)
