"""HMC kernel: invariance of a known Gaussian, convergence, energy error, divergences, cost, gradients."""

from __future__ import annotations

import math

import pytest
import torch

from vizvae.kernels.hmc import (
    HMCHyperparameters,
    HMCState,
    LogDensityCounter,
    hmc_init,
    hmc_sample,
    hmc_step,
    init_step_sizes,
    layer_slices_from_sizes,
)
from vizvae.inference.targets import gaussian_logdensity

DTYPE = torch.float64
MEAN = torch.tensor([1.0, -2.0, 0.5], dtype=DTYPE)
STD = torch.tensor([0.5, 1.0, 3.0], dtype=DTYPE)


def _exact_gaussian_samples(n: int, generator: torch.Generator) -> torch.Tensor:
    return MEAN + STD * torch.randn(n, 3, generator=generator, dtype=DTYPE)  # (chains, dim)


def _assert_gaussian_moments(samples: torch.Tensor, n_se: float = 4.0) -> None:
    """Sample mean and variance of independent chains within ``n_se`` Monte Carlo standard errors."""
    n = samples.shape[0]
    mean_se = STD / math.sqrt(n)
    var_se = STD.square() * math.sqrt(2.0 / (n - 1))
    assert ((samples.mean(0) - MEAN).abs() < n_se * mean_se).all(), samples.mean(0)
    assert ((samples.var(0) - STD.square()).abs() < n_se * var_se).all(), samples.var(0)


@pytest.mark.parametrize("inverse_mass", [None, torch.tensor([4.0, 1.0, 0.1], dtype=DTYPE)])
def test_hmc_leaves_gaussian_invariant(inverse_mass):
    generator = torch.Generator().manual_seed(0)
    target = gaussian_logdensity(MEAN, STD)
    start = _exact_gaussian_samples(2000, generator)
    step_sizes = torch.full((20, 3), 0.3, dtype=DTYPE)  # 20 transitions
    result = hmc_sample(target, start, step_sizes, n_leapfrog=5, inverse_mass=inverse_mass,
                        generator=generator, record_chain=True)
    _assert_gaussian_moments(result.samples)
    assert result.chain.shape == (21, 2000, 3)
    assert torch.equal(result.chain[0], start)
    assert torch.equal(result.chain[-1], result.samples)
    assert result.acceptance_probs.shape == (20, 2000)
    assert result.mean_acceptance().shape == (20,)
    assert result.n_divergences() == 0
    # the chains moved: the invariance is not the trivial "nothing accepted"
    assert result.is_accepted.float().mean() > 0.8
    assert (result.samples - start).abs().mean() > 0.1


def test_hmc_converges_from_a_bad_start():
    generator = torch.Generator().manual_seed(1)
    target = gaussian_logdensity(MEAN, STD)
    start = torch.full((2000, 3), 5.0, dtype=DTYPE)
    step_sizes = (0.4 * STD).expand(100, 3)  # (T, dim): steps proportional to the scales
    result = hmc_sample(target, start, step_sizes, n_leapfrog=5, generator=generator)
    _assert_gaussian_moments(result.samples, n_se=5.0)


def test_acceptance_tends_to_one_as_step_size_shrinks():
    generator = torch.Generator().manual_seed(2)
    target = gaussian_logdensity(MEAN, STD)
    start = _exact_gaussian_samples(500, generator)
    rates, max_errors = [], []
    for step_size in [0.8, 0.1, 0.01, 0.001]:
        result = hmc_sample(target, start, torch.full((5, 3), step_size, dtype=DTYPE), generator=generator)
        rates.append(result.acceptance_rate())
        max_errors.append(float(result.energy_errors.abs().max()))
    assert rates == sorted(rates)
    assert rates[-1] > 0.9999
    # leapfrog is second order: the energy error shrinks like step_size²
    assert max_errors[-1] < 1e-5
    assert max_errors[-2] / max_errors[-1] > 50


def test_info_energy_is_hamiltonian_of_returned_state():
    generator = torch.Generator().manual_seed(3)
    target = gaussian_logdensity(MEAN, STD)
    state = hmc_init(_exact_gaussian_samples(300, generator), target)
    new_state, info = hmc_step(state, target, 1.2, 5, generator=generator)
    assert info.is_accepted.any() and (~info.is_accepted).any()
    # rejected chains keep their state and their cached values
    rejected = ~info.is_accepted
    assert torch.equal(new_state.position[rejected], state.position[rejected])
    assert torch.equal(new_state.logdensity[rejected], state.logdensity[rejected])
    # the cached log-density and gradient are those of the returned position
    assert torch.allclose(new_state.logdensity, target(new_state.position))
    assert torch.allclose(new_state.grad, -(new_state.position - MEAN) / STD.square())
    # energy ≥ potential energy, since the kinetic energy is non-negative
    assert (info.energy >= -new_state.logdensity - 1e-12).all()
    accepted = info.is_accepted
    assert torch.allclose(
        info.acceptance_prob[accepted], torch.exp(-info.energy_error[accepted]).clamp(max=1.0)
    )


def _log_density_undefined_beyond_one(z: torch.Tensor) -> torch.Tensor:
    """N(0, I) restricted to z_1 < 1; log of a negative number makes it NaN beyond (value and gradient)."""
    return -0.5 * z.square().sum(-1) + torch.log(1.0 - z[..., 0])


def test_nan_log_density_gives_rejected_divergences_and_finite_state():
    generator = torch.Generator().manual_seed(4)
    start = 0.3 * torch.randn(500, 2, generator=generator, dtype=DTYPE)
    counter = LogDensityCounter(_log_density_undefined_beyond_one)
    result = hmc_sample(counter, start, torch.full((10, 2), 0.8, dtype=DTYPE), generator=generator,
                        record_chain=True)
    assert result.n_divergences() > 0
    assert not (result.is_accepted & result.divergences).any()
    assert (result.acceptance_probs[result.divergences] == 0).all()
    assert torch.isfinite(result.chain).all()
    assert torch.isfinite(result.state.logdensity).all() and torch.isfinite(result.state.grad).all()
    assert (result.chain[..., 0] < 1).all()
    assert counter.n_calls == 10 * 5 + 1  # frozen divergent trajectories cost no extra calls


def test_huge_energy_error_is_a_divergence():
    generator = torch.Generator().manual_seed(5)
    target = gaussian_logdensity(torch.zeros(2, dtype=DTYPE), torch.full((2,), 0.01, dtype=DTYPE))
    start = 0.01 * torch.randn(200, 2, generator=generator, dtype=DTYPE)
    state, info = hmc_step(hmc_init(start, target), target, 5.0, 5, generator=generator)
    assert info.is_divergent.all()
    assert not info.is_accepted.any()
    assert torch.equal(state.position, start)


@pytest.mark.parametrize("n_transitions,n_leapfrog", [(10, 5), (3, 1), (4, 7)])
def test_gradient_evaluations_are_T_times_LF_plus_one(n_transitions, n_leapfrog):
    generator = torch.Generator().manual_seed(6)
    counter = LogDensityCounter(gaussian_logdensity(MEAN, STD))
    start = torch.randn(4, 30, 3, generator=generator, dtype=DTYPE)  # (batch, chains, dim)
    step_sizes = init_step_sizes(n_transitions, 3, generator=generator, dtype=DTYPE)
    result = hmc_sample(counter, start, step_sizes, n_leapfrog=n_leapfrog, generator=generator)
    assert counter.n_calls == n_transitions * n_leapfrog + 1
    assert result.samples.shape == (4, 30, 3)
    assert result.divergences.shape == (n_transitions, 4, 30)


def test_continuing_from_a_state_costs_no_init():
    generator = torch.Generator().manual_seed(7)
    counter = LogDensityCounter(gaussian_logdensity(MEAN, STD))
    state = hmc_init(_exact_gaussian_samples(10, generator), counter)
    hmc_sample(counter, state, torch.full((2, 3), 0.1, dtype=DTYPE), n_leapfrog=3, generator=generator)
    assert counter.n_calls == 1 + 2 * 3


def test_same_generator_seed_gives_same_chain():
    target = gaussian_logdensity(MEAN, STD)
    start = _exact_gaussian_samples(50, torch.Generator().manual_seed(8))
    runs = [
        hmc_sample(target, start, torch.full((3, 3), 0.5, dtype=DTYPE),
                   generator=torch.Generator().manual_seed(9)).samples
        for _ in range(2)
    ]
    assert torch.equal(runs[0], runs[1])


def _final_objective(step_sizes: torch.Tensor, start: torch.Tensor) -> tuple[torch.Tensor, object]:
    target = gaussian_logdensity(torch.zeros(2, dtype=DTYPE), torch.tensor([1.0, 2.0], dtype=DTYPE))
    result = hmc_sample(target, start, step_sizes, n_leapfrog=5,
                        generator=torch.Generator().manual_seed(10), differentiable=True)
    return result.state.logdensity.mean(), result  # eq. (5.9) for a fixed target


def test_step_size_gradient_flows_through_leapfrog_and_matches_finite_differences():
    start = torch.randn(50, 2, generator=torch.Generator().manual_seed(11), dtype=DTYPE)
    step_sizes = torch.full((4, 2), 0.2, dtype=DTYPE, requires_grad=True)
    objective, result = _final_objective(step_sizes, start)
    objective.backward()
    assert step_sizes.grad is not None
    assert torch.isfinite(step_sizes.grad).all() and (step_sizes.grad != 0).any()
    # the accept/reject decision is not differentiated
    assert result.acceptance_probs.grad_fn is None and not result.acceptance_probs.requires_grad
    assert result.is_accepted.dtype == torch.bool
    # with the random stream fixed the decisions are locally constant, so the derivative of the
    # objective is the pathwise (leapfrog-only) gradient: compare with central differences
    direction = torch.randn(4, 2, generator=torch.Generator().manual_seed(12), dtype=DTYPE)
    delta = 1e-6
    plus, _ = _final_objective(step_sizes.detach() + delta * direction, start)
    minus, _ = _final_objective(step_sizes.detach() - delta * direction, start)
    finite_difference = (plus - minus) / (2 * delta)
    assert torch.allclose(finite_difference, (step_sizes.grad * direction).sum(), rtol=1e-5, atol=1e-8)


def test_non_differentiable_run_is_detached():
    start = torch.randn(20, 2, generator=torch.Generator().manual_seed(13), dtype=DTYPE)
    step_sizes = torch.full((3, 2), 0.2, dtype=DTYPE, requires_grad=True)
    target = gaussian_logdensity(torch.zeros(2, dtype=DTYPE), torch.ones(2, dtype=DTYPE))
    result = hmc_sample(target, start, step_sizes, generator=torch.Generator().manual_seed(14))
    assert all(not t.requires_grad for t in result.state)


def test_initial_proposal_is_inflated_encoder_gaussian():
    slices = layer_slices_from_sizes([2, 1])
    assert slices == [slice(0, 2), slice(2, 3)]
    hyper = HMCHyperparameters(3, n_transitions=2, layer_slices=slices,
                               inflation=torch.tensor([2.0, 5.0])).double()
    mean = torch.tensor([[0.0, 1.0, -1.0]], dtype=DTYPE)  # (batch, dim)
    std = torch.tensor([[0.1, 0.2, 0.3]], dtype=DTYPE)
    samples = hyper.initial_proposal_sample(mean, std, 20000, torch.Generator().manual_seed(15))
    assert samples.shape == (1, 20000, 3)  # (batch, chains, dim)
    expected_std = torch.tensor([0.2, 0.4, 1.5], dtype=DTYPE)
    assert torch.allclose(samples.std(1)[0], expected_std, rtol=0.03)
    assert torch.allclose(samples.mean(1)[0], mean[0], atol=4 * 1.5 / math.sqrt(20000))
    assert hyper.step_sizes.shape == (2, 3) and (hyper.step_sizes > 0).all()
    assert ((hyper.step_sizes >= 0.02) & (hyper.step_sizes <= 0.05)).all()


def test_hmc_state_is_a_named_tuple_with_cached_gradient():
    target = gaussian_logdensity(MEAN, STD)
    position = _exact_gaussian_samples(5, torch.Generator().manual_seed(16))
    state = hmc_init(position, target)
    assert isinstance(state, HMCState)
    assert torch.allclose(state.grad, -(position - MEAN) / STD.square())
    assert state.logdensity.shape == (5,)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_hmc_runs_on_cuda():
    device = torch.device("cuda")
    generator = torch.Generator(device=device).manual_seed(17)
    target = gaussian_logdensity(MEAN.to(device), STD.to(device))
    start = MEAN.to(device) + STD.to(device) * torch.randn(2000, 3, generator=generator, device=device,
                                                         dtype=DTYPE)
    result = hmc_sample(target, start, torch.full((10, 3), 0.3, dtype=DTYPE, device=device),
                        generator=generator, record_chain=True)
    assert result.samples.device.type == "cuda" and result.chain.device.type == "cuda"
    _assert_gaussian_moments(result.samples.cpu())


def _stiff_quartic(z: torch.Tensor) -> torch.Tensor:
    """N(0, I) times exp(−z_1⁴): leapfrog with a large step blows up where |z_1| is large."""
    return -0.5 * z.square().sum(-1) - z[..., 0].pow(4)


def _step_size_gradient(start: torch.Tensor, chains: torch.Tensor) -> tuple[torch.Tensor, object]:
    step_sizes = torch.full((2, 2), 0.5, requires_grad=True)  # float32, as the models run
    result = hmc_sample(_stiff_quartic, start, step_sizes, n_leapfrog=5,
                        generator=torch.Generator().manual_seed(1), differentiable=True)
    result.state.logdensity[chains].sum().backward()
    return step_sizes.grad, result


def test_an_overflowing_chain_does_not_poison_the_step_size_gradient_of_the_others():
    """Chains are independent, so the gradient of the healthy chains' objective must not depend on
    what the divergent ones did. Known answer: the same run with the divergent chains started
    somewhere harmless instead (same random stream: same shapes) gives the same gradient."""
    start = torch.randn(40, 2, generator=torch.Generator().manual_seed(0))
    probe = hmc_sample(_stiff_quartic, start, torch.full((2, 2), 0.5), n_leapfrog=5,
                       generator=torch.Generator().manual_seed(1))
    divergent = probe.divergences.any(0)
    assert divergent.sum() >= 5
    gradient, result = _step_size_gradient(start, ~divergent)
    assert not torch.isfinite(result.energy_errors).all()  # some trajectories did overflow
    assert torch.isfinite(gradient).all() and (gradient != 0).all()
    calm_start = torch.where(divergent[:, None], 0.0, start)
    reference, _ = _step_size_gradient(calm_start, ~divergent)
    assert torch.allclose(gradient, reference, rtol=1e-5)


def test_too_large_step_sizes_give_counted_rejected_divergences_and_finite_output():
    """Dual moon at φ = 1.5 (its stable limit is ≈ 0.67): most transitions diverge; every one is
    counted, rejected with acceptance probability 0, and nothing non-finite reaches the output."""
    from vizvae.inference.targets import dual_moon_logdensity

    generator = torch.Generator().manual_seed(18)
    start = torch.tensor([2.0, 0.0]) + 0.1 * torch.randn(200, 2, generator=generator)
    result = hmc_sample(dual_moon_logdensity, start, torch.full((10, 2), 1.5), n_leapfrog=5, generator=generator,
                        record_chain=True)
    assert result.n_divergences() > 0.5 * 10 * 200
    assert not (result.is_accepted & result.divergences).any()
    assert (result.acceptance_probs[result.divergences] == 0).all()
    for tensor in (result.chain, result.acceptance_probs, result.energies, *result.state):
        assert torch.isfinite(tensor).all()


def test_functional_gradients_and_summary_diagnostics_give_the_same_chain():
    """``logdensity_and_grad_fn`` (torch.func) replaces autograd without changing a single draw, and
    ``diagnostics="summary"`` keeps (T,) means whose overall figures equal the full run's."""
    from vizvae.kernels.hmc import functional_logdensity_and_grad

    generator_seed, target = 3, gaussian_logdensity(MEAN, STD)
    start = _exact_gaussian_samples(500, torch.Generator().manual_seed(0))
    step_sizes = torch.full((15, 3), 0.6, dtype=DTYPE)
    full = hmc_sample(target, start, step_sizes, 5, generator=torch.Generator().manual_seed(generator_seed))
    functional = functional_logdensity_and_grad(target)
    lean = hmc_sample(target, start, step_sizes, 5, generator=torch.Generator().manual_seed(generator_seed),
                      logdensity_and_grad_fn=functional, diagnostics="summary")
    assert torch.allclose(lean.samples, full.samples, atol=1e-10)
    assert lean.summary and lean.acceptance_probs.shape == (15,) and lean.divergences.shape == (15,)
    assert lean.acceptance_rate() == pytest.approx(full.acceptance_rate(), abs=1e-12)
    assert lean.n_divergences() == full.n_divergences()
    assert torch.allclose(lean.mean_acceptance(), full.mean_acceptance(), atol=1e-12)
    assert torch.allclose(lean.is_accepted, full.is_accepted.to(DTYPE).mean(-1))
    _assert_gaussian_moments(lean.samples)  # still exact: the Gaussian stays invariant
    values, grads = functional(start)
    assert torch.allclose(grads, -(start - MEAN) / STD.square()) and values.shape == (500,)
    with pytest.raises(ValueError, match="differentiable"):
        hmc_sample(target, start, step_sizes, 5, differentiable=True, logdensity_and_grad_fn=functional)
    with pytest.raises(ValueError, match="diagnostics"):
        hmc_sample(target, start, step_sizes, 5, diagnostics="none")
