"""The gradient of the HMC objective (eq. 5.9) with respect to the step sizes, against known answers.

Two facts pin it down without trusting the estimator:

* at stationarity — the initial proposal *is* the target — HMC leaves the target invariant after
  every transition, so E[log p*(z_T)] does not depend on the step sizes and its gradient is exactly 0;
* elsewhere, central finite differences of E[log p*(z_T)] with common random numbers are unbiased
  (up to O(h²)) for the same derivative.

Tolerances are Monte Carlo standard errors from independent batches (4 SE). The pathwise gradient
alone (the accept/reject decisions not differentiated) fails the first check: it pushes the step
sizes down at an acceptance of ~0.93, which is why a sampler tuned by it stays at acceptance ~0.99.
"""

from __future__ import annotations

import math

import pytest
import torch

from vizvae.kernels.hmc import HMCHyperparameters
from vizvae.kernels.stein import objective_with_decisions

DIM = 2
N_LEAPFROG = 5


def standard_normal(z: torch.Tensor) -> torch.Tensor:
    return -0.5 * z.square().sum(-1)


def elongated_normal(z: torch.Tensor) -> torch.Tensor:
    """N(0, diag(1, 0.25)): a scale the step sizes must respect in the second coordinate."""
    return -0.5 * (z[..., 0].square() + z[..., 1].square() / 0.25)


def hyper(step_size: float, n_transitions: int, inflation: float) -> HMCHyperparameters:
    return HMCHyperparameters(DIM, n_transitions, N_LEAPFROG, step_sizes=torch.full((n_transitions, DIM), step_size),
                              inflation=inflation)


def directional_gradients(logdensity, step_size, n_transitions, inflation, n_batches, n_chains, seed, pathwise_only):
    """d E[log p*(z_T)] / d log φ along all step sizes at once, one estimate per independent batch."""
    estimates = []
    for batch in range(n_batches):
        h = hyper(step_size, n_transitions, inflation)
        generator = torch.Generator().manual_seed(seed + batch)
        result = h.sample(logdensity, torch.zeros(1, DIM), torch.ones(1, DIM), n_chains, generator=generator,
                          differentiable=True)
        objective = objective_with_decisions(result.state.logdensity,
                                             None if pathwise_only else result.log_decision_probs)
        (grad,) = torch.autograd.grad(objective, h.log_step_sizes)
        estimates.append(float(grad.sum()))
    return torch.tensor(estimates, dtype=torch.float64)


def mean_and_se(values: torch.Tensor) -> tuple[float, float]:
    return float(values.mean()), float(values.std() / math.sqrt(len(values)))


def test_step_size_gradient_vanishes_at_stationarity_and_the_pathwise_part_alone_does_not():
    # acceptance ≈ 0.93 at φ = 0.8, LF = 5 on N(0, I): a sampler that should be allowed to keep its steps
    args = dict(logdensity=standard_normal, step_size=0.8, n_transitions=10, inflation=1.0, n_batches=24,
                n_chains=200, seed=100)
    full_mean, full_se = mean_and_se(directional_gradients(**args, pathwise_only=False))
    assert abs(full_mean) < 4 * full_se, (full_mean, full_se)
    path_mean, path_se = mean_and_se(directional_gradients(**args, pathwise_only=True))
    assert path_mean < -4 * path_se, (path_mean, path_se)  # the bias towards smaller steps


def objective_at(logdensity, log_shift, step_size, n_transitions, inflation, n_chains, seed) -> torch.Tensor:
    """log p*(z_T) per chain with every log step size shifted by ``log_shift`` (common random numbers)."""
    h = hyper(step_size * math.exp(log_shift), n_transitions, inflation)
    with torch.no_grad():
        result = h.sample(logdensity, torch.zeros(1, DIM), torch.ones(1, DIM), n_chains,
                          generator=torch.Generator().manual_seed(seed))
    return result.state.logdensity.reshape(-1).double()


@pytest.mark.parametrize("step_size, inflation", [(0.15, 2.5), (0.45, 1.5)])
def test_step_size_gradient_matches_finite_differences(step_size, inflation):
    """An over-dispersed start on an elongated Gaussian, with few rejections (φ = 0.15) and with many
    (φ = 0.45, acceptance ≈ 0.7 in the narrow coordinate)."""
    n_transitions, n_chains, n_batches, h = 3, 2000, 16, 0.05
    fd_batches = []
    for batch in range(n_batches):
        seed = 7000 + batch
        plus = objective_at(elongated_normal, h, step_size, n_transitions, inflation, n_chains, seed)
        minus = objective_at(elongated_normal, -h, step_size, n_transitions, inflation, n_chains, seed)
        fd_batches.append(float(((plus - minus) / (2 * h)).mean()))
    fd_mean, fd_se = mean_and_se(torch.tensor(fd_batches, dtype=torch.float64))
    grads = directional_gradients(elongated_normal, step_size, n_transitions, inflation, n_batches, n_chains,
                                  seed=9000, pathwise_only=False)
    grad_mean, grad_se = mean_and_se(grads)
    assert abs(grad_mean - fd_mean) < 4 * math.hypot(grad_se, fd_se), (grad_mean, grad_se, fd_mean, fd_se)
    assert abs(fd_mean) > 4 * fd_se  # a derivative that is really there, not two zeros agreeing
