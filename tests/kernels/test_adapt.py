"""Warm-up adaptation: dual averaging reaches its target acceptance, the adapted kernel leaves the
target invariant, Welford's variance is the variance, and each group of chains gets its own scale."""

from __future__ import annotations

import math

import pytest
import torch

from vizvae.inference.targets import BANANA_CURVATURE, BANANA_WIDTH, BANANA_Z1_SCALE, banana_logdensity
from vizvae.kernels.adapt import Welford, WarmupSettings, warmup
from vizvae.kernels.hmc import hmc_sample

SCALES = torch.logspace(-1, 0, 10)  # a 10-D Gaussian whose scales span a factor 10


def gaussian_logdensity(z: torch.Tensor) -> torch.Tensor:
    return -0.5 * (z / SCALES).square().sum(-1)


def gaussian_draws(shape: tuple[int, ...], generator: torch.Generator) -> torch.Tensor:
    return SCALES * torch.randn(*shape, 10, generator=generator)


def banana_draws(shape: tuple[int, ...], generator: torch.Generator) -> torch.Tensor:
    z1 = BANANA_Z1_SCALE * torch.randn(shape, generator=generator)
    z2 = BANANA_CURVATURE * (z1.square() - BANANA_Z1_SCALE ** 2) + BANANA_WIDTH * torch.randn(shape, generator=generator)
    return torch.stack([z1, z2], -1)


TARGETS = {"gaussian": (gaussian_logdensity, gaussian_draws), "banana": (banana_logdensity, banana_draws)}


def adapted(name: str, seed: int, groups: int = 4, chains: int = 200):
    logdensity, draws = TARGETS[name]
    generator = torch.Generator().manual_seed(seed)
    start = 2.0 * draws((groups, chains), generator)  # over-dispersed: the warm-up has work to do
    return warmup(logdensity, start, n_leapfrog=5, settings=WarmupSettings(n_warmup=200), generator=generator)


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_dual_averaging_reaches_the_target_acceptance(name):
    logdensity, _ = TARGETS[name]
    result = adapted(name, seed=3)
    generator = torch.Generator().manual_seed(4)
    run = hmc_sample(logdensity, result.state, result.step_sizes(100, generator), n_leapfrog=5,
                     inverse_mass=result.inverse_mass, generator=generator)
    per_group = run.acceptance_probs.mean((0, 2))  # (groups,)
    assert torch.all((per_group - 0.65).abs() <= 0.05), per_group


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_the_adapted_kernel_leaves_the_target_invariant(name):
    """Exact draws in, 20 adapted transitions, and still the target's moments: mean within 4 standard
    errors, variance within 4 standard errors of the sample variance (from the draws' 4th moment)."""
    logdensity, draws = TARGETS[name]
    kernel = adapted(name, seed=5, groups=1)
    generator = torch.Generator().manual_seed(6)
    exact = draws((1, 4000), generator)
    run = hmc_sample(logdensity, exact, kernel.step_sizes(20, generator, exact.shape[:-1]), n_leapfrog=5,
                     inverse_mass=kernel.inverse_mass, generator=generator)
    assert run.acceptance_rate() < 0.95  # the kernel really moves the chains
    after = run.samples[0].double()
    reference = draws((200_000,), torch.Generator().manual_seed(7)).double()  # the moments, to ±0.3 % or better
    n = len(after)
    centred = reference - reference.mean(0)
    variance = centred.square().mean(0)
    fourth = centred.pow(4).mean(0)
    mean_se = (variance / n).sqrt()
    variance_se = ((fourth - variance.square()) / n).sqrt()
    assert torch.all((after.mean(0) - reference.mean(0)).abs() < 4 * mean_se), (after.mean(0), mean_se)
    assert torch.all((after.var(0) - variance).abs() < 4 * variance_se), (after.var(0), variance, variance_se)


def test_each_group_of_chains_gets_its_own_step_size():
    """Two rows whose posteriors differ in scale by 10, without a mass: their step sizes differ by ~10."""
    scale = torch.tensor([1.0, 0.1])[:, None, None]  # (groups, 1, 1)

    def logdensity(z):
        return -0.5 * (z / scale).square().sum(-1)

    generator = torch.Generator().manual_seed(0)
    start = scale * torch.randn(2, 100, 3, generator=generator)
    result = warmup(logdensity, start, settings=WarmupSettings(n_warmup=150, adapt_mass=False), generator=generator)
    ratio = float(result.step_size[0, 0, 0] / result.step_size[1, 0, 0])
    assert 7.0 < ratio < 14.0, ratio
    assert torch.equal(result.inverse_mass, torch.ones(2, 1, 3))


def test_welford_matches_the_variance_of_all_draws():
    generator = torch.Generator().manual_seed(1)
    batches = [torch.randn(3, 7, 4, generator=generator) * (i + 1) + i for i in range(5)]
    running = Welford()
    for batch in batches:
        running.update(batch)
    everything = torch.cat(batches, dim=-2)  # (3, 35, 4)
    n = everything.shape[-2]
    expected = everything.var(-2, keepdim=True)
    shrunk = (n / (n + 5.0)) * expected + 1e-3 * 5.0 / (n + 5.0)
    torch.testing.assert_close(running.regularised_variance(), shrunk, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("bad", [dict(n_warmup=0), dict(target_acceptance=1.0), dict(mass_window=(0.5, 0.2)),
                                 dict(jitter=1.0)])
def test_settings_refuse_values_that_cannot_work(bad):
    with pytest.raises(ValueError):
        WarmupSettings(**bad)
