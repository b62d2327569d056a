"""Toy 2-D targets: hand-computed values, normalisers by quadrature, and use as HMC targets."""

from __future__ import annotations

import math

import torch

from vizvae.kernels.hmc import hmc_sample
from vizvae.inference.targets import (
    BANANA_LOG_NORMALISER,
    TOY_TARGETS,
    banana_logdensity,
    dual_moon_logdensity,
    gaussian_logdensity,
    grid_log_normaliser,
    grid_logdensity,
    wave_logdensity,
)

DTYPE = torch.float64


def test_wave_values_by_hand():
    points = torch.tensor([[0.0, 0.0], [1.0, 1.0], [0.0, 0.4], [-1.0, -1.0], [4.0, 0.0]], dtype=DTYPE)
    # U = ½((z2 − sin(πz1/2))/0.4)² + ½(z1/4)²
    expected = torch.tensor([0.0, -1 / 32, -0.5, -1 / 32, -0.5], dtype=DTYPE)
    assert torch.allclose(wave_logdensity(points), expected, atol=1e-12)


def test_dual_moon_values_by_hand():
    points = torch.tensor([[2.0, 0.0], [0.0, 2.0], [0.0, 0.0], [-2.0, 0.0]], dtype=DTYPE)
    expected = torch.tensor(
        [
            math.log1p(math.exp(-200 / 9)),  # on the ring at a mode: only the far mode's tail
            math.log(2.0) - 50 / 9,  # on the ring between the modes
            -12.5 + math.log(2.0) - 50 / 9,  # centre: ½(2/0.4)² off the ring
            math.log1p(math.exp(-200 / 9)),  # symmetric
        ],
        dtype=DTYPE,
    )
    assert torch.allclose(dual_moon_logdensity(points), expected, atol=1e-12)


def test_targets_are_batched_over_leading_dimensions():
    points = torch.randn(3, 4, 5, 2, generator=torch.Generator().manual_seed(0), dtype=DTYPE)
    for target in TOY_TARGETS.values():
        values = target.logdensity(points)
        assert values.shape == (3, 4, 5)
        assert torch.allclose(values[1, 2], target.logdensity(points[1, 2]))


def test_wave_normaliser_by_quadrature_matches_closed_form():
    log_normaliser = grid_log_normaliser(wave_logdensity, TOY_TARGETS["wave"].limits, n_points=400)
    assert abs(float(log_normaliser) - math.log(3.2 * math.pi)) < 1e-3


def test_dual_moon_normaliser_is_finite_and_its_mass_is_inside_the_limits():
    limits = TOY_TARGETS["dual_moon"].limits
    coarse = grid_log_normaliser(dual_moon_logdensity, limits, n_points=200)
    fine = grid_log_normaliser(dual_moon_logdensity, limits, n_points=400)
    wider = grid_log_normaliser(dual_moon_logdensity, ((-8.0, 8.0), (-8.0, 8.0)), n_points=800)
    assert torch.isfinite(fine)
    assert abs(float(coarse - fine)) < 1e-4
    assert abs(float(wider - fine)) < 1e-4


def test_gaussian_target_is_normalised():
    target = gaussian_logdensity(torch.tensor([0.5, -1.0]), torch.tensor([0.5, 1.0]))
    log_normaliser = grid_log_normaliser(target, ((-4.0, 5.0), (-7.0, 5.0)), n_points=400)
    assert abs(float(log_normaliser)) < 1e-4
    value = target(torch.tensor([[0.5, -1.0]], dtype=DTYPE))
    assert torch.allclose(value, torch.tensor([-math.log(2 * math.pi * 0.5)], dtype=DTYPE))


def test_grid_orientation_rows_are_z2():
    z1, z2, values = grid_logdensity(wave_logdensity, ((-2.0, 2.0), (-1.0, 1.0)), n_points=5)
    assert values.shape == (5, 5)
    point = torch.tensor([float(z1[3]), float(z2[1])], dtype=DTYPE)
    assert torch.allclose(values[1, 3], wave_logdensity(point))


def test_hmc_on_the_wave_follows_the_sine():
    """Long chains with decent steps put z_2 within a few 0.4-widths of sin(πz_1/2)."""
    generator = torch.Generator().manual_seed(1)
    start = 0.1 * torch.randn(500, 2, generator=generator, dtype=DTYPE)
    result = hmc_sample(wave_logdensity, start, torch.tensor([[0.3, 0.1]], dtype=DTYPE).expand(40, 2),
                        n_leapfrog=5, generator=generator)
    z = result.samples
    residual = (z[:, 1] - torch.sin(0.5 * math.pi * z[:, 0])) / 0.4  # ~ N(0, 1) under the target
    assert abs(float(residual.mean())) < 0.15
    assert abs(float(residual.std()) - 1.0) < 0.1
    assert z[:, 0].std() > 1.0  # the chains travelled along the wave


def test_banana_values_by_hand():
    points = torch.tensor([[0.0, -0.78125], [0.0, 0.0], [1.25, 0.0], [-2.5, 2.34375]], dtype=DTYPE)
    # U = ½(z1/1.25)² + ½((z2 − 0.5(z1² − 1.5625))/0.5)²
    expected = torch.tensor([0.0, -0.5 * 1.5625**2, -0.5, -2.0], dtype=DTYPE)
    assert torch.allclose(banana_logdensity(points), expected, atol=1e-12)


def test_banana_normaliser_and_moments_by_quadrature_match_the_closed_form():
    """The twist has unit Jacobian: Z = 2π·1.25·0.5, E z = 0, Var z_2 = 0.5² + 2·0.5²·1.25⁴."""
    limits = TOY_TARGETS["banana"].limits
    assert abs(float(grid_log_normaliser(banana_logdensity, limits, n_points=400)) - BANANA_LOG_NORMALISER) < 1e-3
    wide = ((-9.0, 9.0), (-4.0, 42.0))
    z1, z2, values = grid_logdensity(banana_logdensity, wide, n_points=1200)
    cell = float((z1[1] - z1[0]) * (z2[1] - z2[0]))
    density = torch.exp(values - BANANA_LOG_NORMALISER) * cell
    assert abs(float(density.sum()) - 1.0) < 1e-6
    assert abs(float((density * z1[None, :]).sum())) < 1e-6
    assert abs(float((density * z2[:, None]).sum())) < 1e-6
    assert abs(float((density * z1[None, :] ** 2).sum()) - 1.25**2) < 1e-6
    assert abs(float((density * z2[:, None] ** 2).sum()) - (0.25 + 2 * 0.25 * 1.25**4)) < 1e-5


def test_every_toy_target_starts_its_tight_proposal_on_its_mass():
    for target in TOY_TARGETS.values():
        start = torch.tensor(target.start, dtype=DTYPE)
        (z1_min, z1_max), (z2_min, z2_max) = target.limits
        assert z1_min < start[0] < z1_max and z2_min < start[1] < z2_max
        _, _, values = grid_logdensity(target.logdensity, target.limits, n_points=200)
        assert target.logdensity(start) > values.max() - 1.0  # within a nat of the mode


def test_toy_setup_starts_tight_and_the_density_grid_is_normalised():
    import numpy as np

    from vizvae.inference.toy import STEP_SIZE_RANGES, toy_density, toy_samples, toy_setup

    setup = toy_setup("dual_moon", proposal_std=0.1, step_size_range=STEP_SIZE_RANGES["authors"], n_transitions=4)
    assert torch.equal(setup.proposal_mean, torch.tensor([2.0, 0.0]))
    assert setup.step_sizes.shape == (4, 2)
    assert ((setup.step_sizes >= 0.02) & (setup.step_sizes <= 0.05)).all()
    again = toy_setup("dual_moon", step_size_range=(0.02, 0.05), n_transitions=4)
    assert torch.equal(setup.step_sizes, again.step_sizes)  # seeded
    result = toy_samples(setup, n_chains=300, seed=1)
    assert result.samples.shape == (300, 2)
    # tiny steps from a tight start: the chains stay near it (the "stuck" left column of Fig. 5.7)
    assert (result.samples - setup.proposal_mean).norm(dim=-1).mean() < 1.0
    z1, z2, density = toy_density("banana", n_points=200)
    cell = (z1[1] - z1[0]) * (z2[1] - z2[0])
    assert density.shape == (200, 200) and abs(np.trapezoid(np.trapezoid(density, z1, axis=1), z2) - 1.0) < 1e-6
    assert density.sum() * cell > 0.99
