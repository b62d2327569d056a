"""HMC on the toy 2-D targets from a deliberately tight proposal, before and after training its
hyper-parameters (thesis Figs 5.7–5.8): what the HMC lab shows.

A ``ToySetup`` fixes the target, the tight initial proposal N(start, σ²) and the initial step sizes
φ ∈ R^{T×2}; ``toy_samples`` runs HMC with any hyper-parameters from it, and ``train_toy`` tunes
step sizes (HMC objective, eq. 5.9) and the inflation (SKSD, eq. 5.10) with
``stein.train_hmc_hyperparameters``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
from torch import Tensor

from vizvae.kernels.hmc import HMCHyperparameters, HMCResult, init_step_sizes
from vizvae.kernels.stein import HMCTrainingResult, HMCTrainingSettings, train_hmc_hyperparameters
from vizvae.inference.targets import TOY_TARGETS, grid_logdensity, trapezoid_log_integral

__all__ = ["STEP_SIZE_RANGES", "ToySetup", "toy_setup", "toy_samples", "train_toy", "toy_density"]

# initial φ ~ U(low, high): the authors' code, the thesis text (§5.4.6), and beyond the dual moon's
# stable limit (≈ 0.67), where most transitions are rejected
STEP_SIZE_RANGES = {"authors": (0.02, 0.05), "thesis": (0.05, 0.2), "too_large": (0.6, 0.9)}


@dataclass
class ToySetup:
    """Where Fig. 5.7 starts: a target, a tight Gaussian proposal on its mass, initial step sizes."""

    target: str  # a key of TOY_TARGETS
    proposal_mean: Tensor  # (2,)
    proposal_std: Tensor  # (2,)
    step_sizes: Tensor  # (T, 2)
    n_leapfrog: int

    @property
    def logdensity(self) -> Callable[[Tensor], Tensor]:
        return TOY_TARGETS[self.target].logdensity

    def initial_hyperparameters(self) -> HMCHyperparameters:
        """Untrained: the initial step sizes and inflation 1 (the proposal as it is)."""
        return HMCHyperparameters(2, self.step_sizes.shape[0], self.n_leapfrog, step_sizes=self.step_sizes.clone())


def toy_setup(target: str, proposal_std: float = 0.1, step_size_range: tuple[float, float] = (0.05, 0.2),
              n_transitions: int = 10, n_leapfrog: int = 5, seed: int = 0) -> ToySetup:
    """A tight N(start, ``proposal_std``²) at the target's ``start`` and φ ~ U(range), drawn from ``seed``."""
    if target not in TOY_TARGETS:
        raise ValueError(f"unknown toy target {target!r}; choose from {sorted(TOY_TARGETS)}")
    low, high = step_size_range
    step_sizes = init_step_sizes(n_transitions, 2, low, high, generator=torch.Generator().manual_seed(int(seed)))
    mean = torch.tensor(TOY_TARGETS[target].start)
    return ToySetup(target, mean, torch.full((2,), float(proposal_std)), step_sizes, n_leapfrog)


def toy_samples(setup: ToySetup, hyperparameters: HMCHyperparameters | None = None, n_chains: int = 500,
                seed: int = 0) -> HMCResult:
    """``n_chains`` independent HMC runs from the (inflated) proposal; ``result.samples`` (n_chains, 2)."""
    hyper = setup.initial_hyperparameters() if hyperparameters is None else hyperparameters
    generator = torch.Generator().manual_seed(int(seed))
    return hyper.sample(setup.logdensity, setup.proposal_mean, setup.proposal_std, n_chains, generator=generator)


def train_toy(setup: ToySetup, n_iterations: int = 100, lr_step_sizes: float = 0.05, lr_inflation: float = 0.05,
              n_chains: int = 30, seed: int = 0,
              callback: Callable[[int, dict[str, float]], None] | None = None,
              per_dimension: bool = False, acceptance_gain: float = 0.15) -> HMCTrainingResult:
    """Train φ and the inflation from the setup's initial values (Algorithm 1's HMC part on a fixed
    target). One inflation for both dimensions, as a model has one per latent layer; with
    ``per_dimension`` one each, as in Fig. 5.7b — though with coordinate slices the SKSD gradient
    of the wave is dominated by its narrow z_2, which then inflates instead of z_1 in short runs.
    The thesis' learning rates (1e-3 / 1e-2) are for 10⁴ steps; a live demo of ~100 steps needs
    larger ones, hence the defaults — the gain that steers the step sizes' scale to acceptance 0.65
    (``stein.steer_to_acceptance``) included."""
    step_sizes = setup.step_sizes.clone()
    hyperparameters = HMCHyperparameters(2, len(step_sizes), setup.n_leapfrog, step_sizes=step_sizes,
                                         layer_slices=None if not per_dimension else [slice(0, 1), slice(1, 2)])
    settings = HMCTrainingSettings(n_iterations=n_iterations, n_chains=n_chains, lr_step_sizes=lr_step_sizes,
                                   lr_inflation=lr_inflation, acceptance_gain=acceptance_gain)
    return train_hmc_hyperparameters(setup.logdensity, setup.proposal_mean, setup.proposal_std, hyperparameters,
                                     settings, generator=torch.Generator().manual_seed(int(seed)), callback=callback)


def toy_density(target: str, n_points: int = 150) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The normalised density p(z) of a toy target on its plotting box: (z1 (n,), z2 (n,), density (n, n)),
    rows z_2, normalised by quadrature on the same grid."""
    toy = TOY_TARGETS[target]
    z1, z2, values = grid_logdensity(toy.logdensity, toy.limits, n_points)
    log_normaliser = trapezoid_log_integral(z1, z2, values)
    return z1.numpy(), z2.numpy(), torch.exp(values - log_normaliser).numpy()
