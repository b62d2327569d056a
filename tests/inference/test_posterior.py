"""One data point's posterior: HMC chains with trained or default hyper-parameters, diagnostics,
and 2-D views — against a linear-Gaussian model whose posterior is known."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.inference.linear_gaussian import MASK, X, exact_encoder_model, exact_posterior
from vizvae.inference.posterior import (
    PosteriorTarget, chain_diagnostics, coordinate_axes, gaussian_in_view, plane_limits, posterior_chains,
    principal_axes,
)
from vizvae.models import HMCVAE, HMCVAEConfig


def test_hmc_from_the_exact_posterior_stays_there():
    """Started at the posterior (a perfect encoder), HMC leaves it invariant: moments match."""
    target = PosteriorTarget.from_row(exact_encoder_model(MASK), X, MASK)
    chains = posterior_chains(target, n_chains=2000, seed=0)
    posterior = exact_posterior(MASK)
    samples = chains.samples
    assert samples.shape == (2000, 2) and chains.chain.shape == (11, 2000, 2)
    standard_error = posterior.std / np.sqrt(2000)
    assert ((samples.mean(0) - posterior.mean).abs() < 4 * standard_error).all()
    assert torch.allclose(samples.std(0), posterior.std, rtol=0.08)
    assert (samples - chains.chain[0]).abs().mean() > 0.05  # the chains did move
    assert not chains.trained and chains.n_leapfrog == 5
    # adapted by a warm-up: per-dimension steps ε/√M_d of the order of the posterior's σ (not the creeping
    # 0.02–0.05), jittered per transition within U(0.5, 1.5); no inflation: the proposal is the encoder
    ratio = chains.step_sizes / posterior.std
    assert ((ratio > 0.3) & (ratio < 3.0)).all()
    assert torch.allclose(chains.step_sizes / chains.step_sizes[:1], (chains.step_sizes / chains.step_sizes[:1])[:, :1])
    assert 0.5 < float(chains.result.acceptance_probs.mean()) < 0.95
    assert torch.equal(chains.proposal.std, chains.encoder.std)


def test_same_seed_same_chains_and_other_seed_other_chains():
    target = PosteriorTarget.from_row(exact_encoder_model(), X)
    first, again = posterior_chains(target, 20, seed=1), posterior_chains(target, 20, seed=1)
    other = posterior_chains(target, 20, seed=2)
    assert torch.equal(first.chain, again.chain)
    assert not torch.equal(first.chain, other.chain)


def _hmc_vae_2d() -> HMCVAE:
    torch.manual_seed(0)
    model = HMCVAE(HMCVAEConfig(input_shape=(12,), latent_dims=(2,), hidden_dims=(16,), predictor_hidden_dims=(8,),
                                n_classes=3, n_transitions=4, n_leapfrog=3))
    with torch.no_grad():  # "trained" values, unlike the initial ones
        model.hmc.log_step_sizes.copy_(torch.full((4, 2), -2.0))
        model.hmc.log_inflation.fill_(np.log(1.5))
    return model.eval()


def test_a_model_with_trained_hmc_uses_its_own_step_sizes_and_inflation():
    model = _hmc_vae_2d()
    x = (torch.rand(12, generator=torch.Generator().manual_seed(0)) > 0.5).float()
    target = PosteriorTarget.from_row(model, x)
    chains = posterior_chains(target, n_chains=7, seed=3)
    assert chains.trained and chains.n_leapfrog == 3
    assert chains.chain.shape == (5, 7, 2) and chains.result.acceptance_probs.shape == (4, 7)
    assert torch.allclose(chains.step_sizes, model.hmc.step_sizes)
    assert torch.allclose(chains.proposal.std, 1.5 * chains.encoder.std)
    # the model's own sampler, with the same seed, gives the same chains
    reference = model.posterior_samples(x[None], None, n_chains=7, generator=torch.Generator().manual_seed(3),
                                        record_chain=True)
    assert torch.equal(chains.chain, reference.chain[:, 0])
    # rescaled: same trained inflation, step sizes times the factor
    scaled = posterior_chains(target, n_chains=7, seed=3, step_size_scale=2.0)
    assert scaled.trained and torch.allclose(scaled.step_sizes, 2 * model.hmc.step_sizes)
    assert torch.allclose(scaled.proposal.std, 1.5 * scaled.encoder.std)


def test_chain_diagnostics_shapes_and_the_hmc_objective():
    target = PosteriorTarget.from_row(exact_encoder_model(), X)
    # adapted steps of the order of the posterior's σ with LF = 5: successive states are close to independent
    chains = posterior_chains(target, n_chains=40, seed=0)
    diagnostics = chain_diagnostics(chains.result)
    assert diagnostics.acceptance.shape == (10, 40) and diagnostics.divergences.shape == (10, 40)
    assert diagnostics.mean_acceptance.shape == (10,)
    assert diagnostics.ess.shape == diagnostics.rhat.shape == (2,)
    assert diagnostics.n_draws == 400 and diagnostics.n_divergences == 0
    # chains started at the posterior: nearly independent draws, and no gross memory of the start (split
    # R-hat over 10 draws a chain is noisy, ~1.1–1.3 here, and an adapted kernel's moves are partly
    # antithetic; the moments themselves are checked on 2000 chains above)
    assert (diagnostics.ess > 0.5 * 400).all() and (diagnostics.rhat < 1.5).all()
    assert np.isclose(diagnostics.mean_log_joint, float(target.log_joint(chains.samples).mean()))


def test_principal_axes_find_the_long_direction():
    generator = np.random.default_rng(0)
    direction = np.array([3.0, 4.0, 0.0]) / 5.0
    samples = generator.normal(size=(4000, 1)) * 3.0 * direction + generator.normal(size=(4000, 3)) * 0.3 + 1.0
    view, explained = principal_axes(samples)
    assert abs(abs(view.axes[0] @ direction) - 1) < 1e-3
    assert np.allclose(view.axes @ view.axes.T, np.eye(2), atol=1e-10)
    expected = (9.0 + 0.09) / (9.0 + 3 * 0.09)  # the noise adds 0.3² along every direction
    assert abs(explained[0] - expected) < 0.01
    assert view.axes[0][np.abs(view.axes[0]).argmax()] > 0  # sign fixed
    projected = view.project(samples)
    assert projected.shape == (4000, 2) and np.allclose(projected.mean(0), 0.0, atol=1e-9)


def test_a_diagonal_gaussian_in_a_view():
    view = coordinate_axes(4, 2, 0)
    mean, covariance = gaussian_in_view(view, np.array([1.0, 2.0, 3.0, 4.0]), np.array([0.1, 0.2, 0.3, 0.4]))
    assert np.allclose(mean, [3.0, 1.0]) and np.allclose(covariance, np.diag([0.09, 0.01]))
    assert view.titles == ("z2", "z0")
    rotated = principal_axes(np.random.default_rng(1).normal(size=(500, 4)))[0]
    _, covariance = gaussian_in_view(rotated, np.zeros(4), np.ones(4))
    assert np.allclose(covariance, np.eye(2))  # an isotropic Gaussian looks isotropic from any plane


def test_plane_limits_hold_points_and_ellipses():
    limits = plane_limits(np.array([[0.0, 0.0], [1.0, 2.0]]), [(np.array([5.0, 0.0]), np.diag([1.0, 4.0]))],
                          radius=2.0, pad=0.0)
    assert limits == ((0.0, 7.0), (-4.0, 4.0))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_posterior_estimators_run_on_cuda():
    from vizvae.inference.gaps import posterior_gaps
    from vizvae.inference.posterior import posterior_grid

    from tests.inference.linear_gaussian import log_evidence, wrong_encoder_model

    model = wrong_encoder_model().to("cuda")
    target = PosteriorTarget.from_row(model, X)
    assert target.x.device.type == "cuda"
    chains = posterior_chains(target, n_chains=30, seed=0)
    assert chains.chain.device.type == "cuda"
    grid = posterior_grid(target)
    assert abs(grid.log_evidence - log_evidence()) < 1e-6
    gaps = posterior_gaps(target, hmc_samples=chains.samples, log_evidence_quadrature=grid.log_evidence, n_steps=50)
    assert gaps.amortisation_gap >= 0
    assert np.isfinite(chain_diagnostics(chains.result).rhat).all()


def _bimodal_grid():
    """An exact grid of an equal mixture of N((−3, 0), 0.5²I) and N((3, 0), 0.5²I)."""
    from vizvae.inference.posterior import PosteriorGrid

    z1, z2 = np.linspace(-8, 8, 321), np.linspace(-8, 8, 321)
    g1, g2 = np.meshgrid(z1, z2)

    def log_normal(m1):
        return -((g1 - m1) ** 2 + g2 ** 2) / (2 * 0.25) - np.log(2 * np.pi * 0.25)

    log_joint = np.logaddexp(log_normal(-3.0), log_normal(3.0)) + np.log(0.5)
    return PosteriorGrid(z1=z1, z2=z2, log_joint=log_joint, log_evidence=0.0, limits=((-8, 8), (-8, 8)))


def test_unvisited_mass_finds_the_mode_the_chains_never_reached():
    from vizvae.inference.posterior import unvisited_mass

    grid = _bimodal_grid()
    rng = np.random.default_rng(0)
    left = rng.normal((-3.0, 0.0), 0.5, (2000, 2))
    right = rng.normal((3.0, 0.0), 0.5, (2000, 2))
    assert unvisited_mass(grid, left) == pytest.approx(0.5, abs=0.03)  # the right mode: half the mass
    both = unvisited_mass(grid, np.concatenate([left, right]))
    assert both < 0.01  # exact draws from both modes leave only the far tails of the box's cells
    assert unvisited_mass(grid, np.empty((0, 2))) == pytest.approx(1.0, abs=1e-3)  # the grid's mass is 1
