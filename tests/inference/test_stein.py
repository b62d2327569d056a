"""SKSD against its closed form for Gaussians, and training of the HMC hyper-parameters."""

from __future__ import annotations

import math

import pytest
import torch

from vizvae.kernels.hmc import HMCHyperparameters
from vizvae.kernels.stein import (
    HMCTrainingSettings,
    hmc_training_losses,
    median_bandwidth,
    sksd,
    train_hmc_hyperparameters,
)
from vizvae.inference.targets import gaussian_logdensity, wave_logdensity

DTYPE = torch.float64
MEAN = torch.tensor([0.5, -1.0], dtype=DTYPE)
STD = torch.tensor([1.0, 2.0], dtype=DTYPE)


def _gaussian_score(x: torch.Tensor) -> torch.Tensor:
    return -(x - MEAN) / STD.square()


def _sksd_of_shifted_gaussian(shift: float, bandwidth: torch.Tensor) -> torch.Tensor:
    """Closed form for samples from N(m + shift, σ²) against N(m, σ²), fixed bandwidth h.

    E[h_p(x, x')] = E[δ(x) δ(x') k(u, u')] with δ = s_p − s_q = −shift/σ² per coordinate, and
    E[k] = h/√(h² + 2σ²) since u − u' ~ N(0, 2σ²).
    """
    delta = shift / STD.square()
    return (delta.square() * bandwidth / torch.sqrt(bandwidth.square() + 2 * STD.square())).sum()


@pytest.mark.parametrize("shift", [0.0, 0.5, 1.0])
def test_sksd_matches_closed_form_for_shifted_gaussian(shift):
    generator = torch.Generator().manual_seed(0)
    n_sets = 200
    samples = MEAN + shift + STD * torch.randn(n_sets, 100, 2, generator=generator, dtype=DTYPE)
    bandwidth = torch.tensor([1.0, 1.5], dtype=DTYPE)
    values = sksd(samples, _gaussian_score(samples), bandwidth=bandwidth.expand(n_sets, 2))
    assert values.shape == (n_sets,)
    standard_error = values.std() / math.sqrt(n_sets)
    expected = _sksd_of_shifted_gaussian(shift, bandwidth)
    assert abs(values.mean() - expected) < 4 * standard_error + 1e-12


def test_sksd_is_near_zero_for_exact_samples_and_grows_with_the_shift():
    generator = torch.Generator().manual_seed(1)
    exact = MEAN + STD * torch.randn(600, 2, generator=generator, dtype=DTYPE)
    at_exact = sksd(exact, _gaussian_score(exact))
    shifted = []
    for shift in [0.25, 0.5, 1.0, 2.0]:
        moved = exact + shift * STD
        shifted.append(float(sksd(moved, _gaussian_score(moved))))
    assert abs(float(at_exact)) < 0.01
    assert shifted == sorted(shifted)
    assert shifted[0] > 5 * abs(float(at_exact))
    too_narrow = MEAN + 0.3 * (exact - MEAN)
    assert sksd(too_narrow, _gaussian_score(too_narrow)) > 1.0


def test_sksd_stein_kernel_matches_autograd_derivatives_of_the_rbf_kernel():
    """Reference: the four terms of h(x, x') with kernel derivatives taken by autograd, pair by pair."""
    generator = torch.Generator().manual_seed(2)
    samples = torch.randn(6, 3, generator=generator, dtype=DTYPE)
    score = torch.randn(6, 3, generator=generator, dtype=DTYPE)
    bandwidth = torch.tensor([0.7, 1.0, 1.3], dtype=DTYPE)

    def rbf(u, v, h):
        return torch.exp(-((u - v) ** 2) / (2 * h**2))

    total = torch.zeros((), dtype=DTYPE)
    for coordinate in range(3):
        h = bandwidth[coordinate]
        for i in range(6):
            for j in range(6):
                if i == j:
                    continue
                u = samples[i, coordinate].clone().requires_grad_(True)
                v = samples[j, coordinate].clone().requires_grad_(True)
                k = rbf(u, v, h)
                (dk_du,) = torch.autograd.grad(k, u, create_graph=True)
                (dk_dv,) = torch.autograd.grad(k, v, retain_graph=True)
                (d2k,) = torch.autograd.grad(dk_du, v)
                a, a_prime = score[i, coordinate], score[j, coordinate]
                total = total + a * a_prime * k.detach() + a * dk_dv + a_prime * dk_du.detach() + d2k
    reference = total / (6 * 5)
    assert torch.allclose(sksd(samples, score, bandwidth=bandwidth), reference, rtol=1e-10)


def test_sksd_is_batched_and_differentiable():
    generator = torch.Generator().manual_seed(3)
    samples = torch.randn(4, 5, 30, 2, generator=generator, dtype=DTYPE).requires_grad_(True)
    values = sksd(samples, _gaussian_score(samples))
    assert values.shape == (4, 5)
    single = sksd(samples[2, 3], _gaussian_score(samples[2, 3]))
    assert torch.allclose(values[2, 3], single)
    values.sum().backward()
    assert torch.isfinite(samples.grad).all() and (samples.grad != 0).any()


def test_median_bandwidth():
    u = torch.tensor([[0.0, 1.0, 3.0]], dtype=DTYPE)  # pair distances 1, 3, 2
    assert torch.allclose(median_bandwidth(u), torch.tensor([2.0], dtype=DTYPE))
    collapsed = torch.zeros(1, 5, dtype=DTYPE)
    assert (median_bandwidth(collapsed) > 0).all()


def test_sksd_gradient_pushes_a_tight_proposal_wider():
    target = gaussian_logdensity(MEAN, STD)
    hyper = HMCHyperparameters(2, n_transitions=3, n_leapfrog=3,
                               step_sizes=torch.full((3, 2), 0.03, dtype=DTYPE)).double()
    losses = hmc_training_losses(hyper, target, MEAN, torch.full((2,), 0.1, dtype=DTYPE),
                                 n_chains=30, generator=torch.Generator().manual_seed(4))
    losses.sksd.backward(inputs=[hyper.log_inflation])
    assert hyper.log_inflation.grad.item() < 0  # more inflation, less discrepancy
    assert hyper.log_step_sizes.grad is None  # only the parameters asked for receive gradients


def _evaluate(hyper: HMCHyperparameters, target, mean, std) -> tuple[float, torch.Tensor]:
    result = hyper.sample(target, mean, std, n_chains=500, generator=torch.Generator().manual_seed(99))
    return float(sksd(result.samples, result.state.grad)), result.samples.std(0)


def test_training_inflates_a_tight_proposal_per_dimension_on_a_gaussian():
    """Target N(0, diag(1.5², 0.5²)), proposal N(0, 0.1²): the ideal inflations are 15 and 5."""
    target_std = torch.tensor([1.5, 0.5], dtype=DTYPE)
    target = gaussian_logdensity(torch.zeros(2, dtype=DTYPE), target_std)
    mean, std = torch.zeros(2, dtype=DTYPE), torch.full((2,), 0.1, dtype=DTYPE)
    per_dimension = [slice(0, 1), slice(1, 2)]
    initial_step_sizes = torch.full((3, 2), 0.03, dtype=DTYPE)
    before = HMCHyperparameters(2, n_transitions=3, n_leapfrog=3, layer_slices=per_dimension,
                                step_sizes=initial_step_sizes)
    sksd_before, spread_before = _evaluate(before, target, mean, std)

    hyperparameters = HMCHyperparameters(2, n_transitions=3, n_leapfrog=3, layer_slices=per_dimension,
                                         step_sizes=initial_step_sizes)
    trained = train_hmc_hyperparameters(
        target, mean, std, hyperparameters,
        HMCTrainingSettings(n_iterations=40, n_chains=30, lr_inflation=0.1, lr_step_sizes=1e-2),
        generator=torch.Generator().manual_seed(5),
    )
    assert trained.hyperparameters is hyperparameters  # trained in place
    sksd_after, spread_after = _evaluate(trained.hyperparameters, target, mean, std)

    assert (trained.inflation > 3.0).all()
    assert trained.inflation[0] > 2.0 * trained.inflation[1]  # wider where the target is wider
    assert (spread_after > 2.0 * spread_before).all()
    assert sksd_after < 0.1 * sksd_before
    assert (trained.step_sizes > 0).all()
    history = trained.history
    assert history["sksd"].shape == history["hmc_objective"].shape == (40,)
    assert history["inflation"].shape == (40, 2)
    assert history["sksd"][-5:].mean() < 0.2 * history["sksd"][:5].mean()
    assert ((history["mean_acceptance"] >= 0) & (history["mean_acceptance"] <= 1)).all()


def test_training_on_the_wave_target_spreads_the_chains():
    """Fig. 5.7 (top row), scaled down: a tight start on the wave, T = 5."""
    mean, std = torch.zeros(2), torch.full((2,), 0.1)
    generator = torch.Generator().manual_seed(6)
    trained = train_hmc_hyperparameters(
        wave_logdensity, mean, std, HMCHyperparameters(2, n_transitions=5, n_leapfrog=3, generator=generator),
        HMCTrainingSettings(n_iterations=30, n_chains=30, lr_inflation=0.1, lr_step_sizes=1e-2), generator=generator,
    )
    assert trained.inflation.shape == (1,)
    assert trained.inflation.item() > 2.0
    assert trained.history["sksd"][-5:].mean() < 0.5 * trained.history["sksd"][:5].mean()
    assert trained.history["divergences"].sum() == 0


DUAL_MOON_START = (torch.tensor([2.0, 0.0]), torch.full((2,), 0.1))  # a tight proposal at the right-hand mode


def dual_moon_training(seed: int, callback=None):
    """Fig. 5.7 (bottom row) and Fig. 5.8a, scaled down: a tight proposal at the right-hand mode with
    step sizes beyond the target's stable limit (≈ 0.67), so most transitions are rejected and the
    chains hardly move; then 60 iterations of Stage-3 training. Returns the step sizes it started
    from, the training result, and (acceptance, total spread) of 1000 chains before and after."""
    from vizvae.inference.targets import dual_moon_logdensity
    from vizvae.kernels.hmc import init_step_sizes

    mean, std = DUAL_MOON_START
    generator = torch.Generator().manual_seed(seed)
    too_large = init_step_sizes(10, 2, low=0.6, high=0.9, generator=generator)

    def evaluate(hyper: HMCHyperparameters) -> tuple[float, float]:
        result = hyper.sample(dual_moon_logdensity, mean, std, n_chains=1000,
                              generator=torch.Generator().manual_seed(99))
        return result.acceptance_rate(), float(result.samples.var(0).sum().sqrt())

    before = evaluate(HMCHyperparameters(2, 10, 5, step_sizes=too_large))
    trained = train_hmc_hyperparameters(
        dual_moon_logdensity, mean, std, HMCHyperparameters(2, 10, 5, step_sizes=too_large),
        HMCTrainingSettings(n_iterations=60, n_chains=20, lr_step_sizes=0.08, lr_inflation=0.05), generator=generator,
        callback=callback,
    )
    return too_large, trained, before, evaluate(trained.hyperparameters)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_training_on_the_dual_moon_raises_acceptance_and_widens_the_samples(seed):
    """From step sizes so large that most transitions are rejected, training lets the chains move:
    acceptance rises by more than 0.1 (its Monte Carlo error over 1000 chains × 10 transitions is
    under 0.005) and the samples spread out by more than 10 %. Also checks the history that the HMC
    lab plots (Fig. 5.8b: step sizes)."""
    iterations = []
    _, trained, (acceptance_before, spread_before), (acceptance_after, spread_after) = dual_moon_training(
        seed, callback=lambda i, record: iterations.append((i, record)))

    assert acceptance_before < 0.3
    assert acceptance_after > acceptance_before + 0.1
    assert spread_after > 1.1 * spread_before
    history = trained.history
    assert history["step_sizes"].shape == (60, 10, 2)
    assert torch.equal(history["step_sizes"][-1], trained.step_sizes)
    assert [i for i, _ in iterations] == list(range(60))
    assert set(iterations[-1][1]) == {"hmc_objective", "sksd", "mean_acceptance", "divergences", "mean_step_size"}
    assert iterations[-1][1]["mean_acceptance"] == history["mean_acceptance"][-1].item()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_training_on_the_dual_moon_brings_acceptance_into_the_band_of_fig_5_8(seed):
    """The thesis' claim, from step sizes beyond the stable limit: training shrinks them and acceptance
    lands in [0.5, 0.9] around the optimal 0.65, and the chains spread over the moon. (Acceptance over
    1000 chains × 10 transitions has a Monte Carlo error under 0.005.) Once the chains move, q^(T) is
    close to the target whatever the inflation, so SKSD no longer needs to widen the proposal much.
    """
    too_large, trained, (_, spread_before), (acceptance_after, spread_after) = dual_moon_training(seed)
    assert 0.5 <= acceptance_after <= 0.9
    assert trained.step_sizes.mean() < too_large.mean()
    assert spread_after > 1.1 * spread_before
    assert 0.5 <= trained.history["mean_acceptance"][-10:].mean() <= 0.9


@pytest.mark.parametrize("seed", [0, 1])
def test_training_from_small_steps_grows_them_into_the_band_of_fig_5_8(seed):
    """Fig. 5.8 from the other side, as the HMC lab starts: φ ~ U(0.02, 0.05), acceptance ≈ 1 and the
    chains creep. 100 iterations grow the steps more than 3× and bring acceptance into [0.5, 0.9]; the
    samples spread out."""
    from vizvae.inference.toy import STEP_SIZE_RANGES, toy_samples, toy_setup, train_toy

    setup = toy_setup("dual_moon", step_size_range=STEP_SIZE_RANGES["authors"], seed=seed)
    before = toy_samples(setup, n_chains=1000, seed=99)
    trained = train_toy(setup, n_iterations=100, seed=seed)
    after = toy_samples(setup, trained.hyperparameters, n_chains=1000, seed=99)
    assert before.acceptance_rate() > 0.97
    assert float((trained.step_sizes / setup.step_sizes).log().mean().exp()) > 3.0
    assert 0.5 <= after.acceptance_rate() <= 0.9
    assert after.samples.var(0).sum() > 2.0 * before.samples.var(0).sum()
