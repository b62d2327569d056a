"""Warm-up adaptation of HMC for a sampler nobody trained: dual averaging of the step size to a
target acceptance (Hoffman & Gelman 2014, §3.2) and a diagonal mass from a Welford estimate of the
warm-up draws' variance (Stan's windowed adaptation, simplified to one slow window).

Everything is batched like ``hmc``: positions ``(..., chains, dim)``. One step size and one mass
are adapted per *group* of chains — the chains of one data point share a posterior, so they share
its scale: the step size is ``(..., 1, 1)`` and the inverse mass ``(..., 1, dim)``. The adaptation
statistic of a group is the mean acceptance probability of its chains.

After the warm-up the kernel is fixed and the chains continue from where the warm-up left them:
draws are taken only after it, so the adaptation does not bias them (tests check the invariance on
a Gaussian and on the banana).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from vizvae.kernels.hmc import HMCState, LogDensityFn, hmc_init, hmc_step

__all__ = ["WarmupSettings", "WarmupResult", "DualAveraging", "Welford", "jittered", "warmup"]


@dataclass(frozen=True)
class WarmupSettings:
    """The warm-up's length and the dual-averaging constants (Stan's defaults)."""

    n_warmup: int = 100  # transitions, all discarded
    target_acceptance: float = 0.65  # δ
    gamma: float = 0.05  # γ: how hard the log step is pulled to μ
    t0: float = 10.0  # t₀: damps the first iterations
    kappa: float = 0.75  # κ: the averaged iterate's forgetting rate
    adapt_mass: bool = True
    mass_window: tuple[float, float] = (0.1, 0.45)  # share of the warm-up whose draws estimate the variance
    jitter: float = 0.2  # each transition's step is ε·U(1 − j, 1 + j) per chain, here and after the warm-up

    def __post_init__(self) -> None:
        if self.n_warmup < 1:
            raise ValueError(f"n_warmup must be at least 1, got {self.n_warmup}")
        if not 0.0 < self.target_acceptance < 1.0:
            raise ValueError(f"target_acceptance must lie in (0, 1), got {self.target_acceptance}")
        low, high = self.mass_window
        if not 0.0 <= low < high <= 1.0:
            raise ValueError(f"mass_window must satisfy 0 <= low < high <= 1, got {self.mass_window}")
        if not 0.0 <= self.jitter < 1.0:
            raise ValueError(f"jitter must lie in [0, 1), got {self.jitter}")


class DualAveraging:
    """Nesterov dual averaging of log ε towards acceptance δ, one ε per group (shape of ``step_size``):

        H̄_t = (1 − 1/(t + t₀)) H̄_{t−1} + (δ − α_t)/(t + t₀)
        log ε_t = μ − √t/γ · H̄_t,   log ε̄_t = t^{−κ} log ε_t + (1 − t^{−κ}) log ε̄_{t−1}

    with μ = log(10 ε₀). ``step_size`` is the iterate to use during the warm-up, ``final_step_size``
    the averaged one to keep after it.
    """

    def __init__(self, step_size: Tensor, settings: WarmupSettings) -> None:
        self.settings = settings
        self.restart(step_size)

    def restart(self, step_size: Tensor) -> None:
        self.mu = torch.log(10.0 * step_size)
        self.log_step = torch.log(step_size)
        self.log_step_avg = torch.zeros_like(step_size)
        self.h_bar = torch.zeros_like(step_size)
        self.t = 0

    def update(self, acceptance: Tensor) -> None:
        s = self.settings
        self.t += 1
        weight = 1.0 / (self.t + s.t0)
        self.h_bar = (1.0 - weight) * self.h_bar + weight * (s.target_acceptance - acceptance)
        self.log_step = self.mu - math.sqrt(self.t) / s.gamma * self.h_bar
        eta = self.t ** (-s.kappa)
        self.log_step_avg = eta * self.log_step + (1.0 - eta) * self.log_step_avg

    @property
    def step_size(self) -> Tensor:
        return self.log_step.exp()

    @property
    def final_step_size(self) -> Tensor:
        return self.log_step_avg.exp() if self.t else self.log_step.exp()


class Welford:
    """Running mean and variance over the chains of each group and over iterations: positions
    ``(..., chains, dim)`` -> a variance ``(..., 1, dim)``."""

    def __init__(self) -> None:
        self.count = 0
        self.mean: Tensor | None = None
        self.m2: Tensor | None = None

    def update(self, position: Tensor) -> None:
        batch_count = position.shape[-2]
        batch_mean = position.mean(-2, keepdim=True)
        batch_m2 = (position - batch_mean).square().sum(-2, keepdim=True)
        if self.mean is None:
            self.count, self.mean, self.m2 = batch_count, batch_mean, batch_m2
            return
        total = self.count + batch_count
        delta = batch_mean - self.mean
        self.mean = self.mean + delta * (batch_count / total)
        self.m2 = self.m2 + batch_m2 + delta.square() * (self.count * batch_count / total)
        self.count = total

    def regularised_variance(self) -> Tensor:
        """Stan's shrinkage towards 1e-3: (n/(n + 5)) var + 1e-3 · 5/(n + 5)."""
        assert self.m2 is not None, "no draws seen"
        n = self.count
        variance = self.m2 / max(n - 1, 1)
        return (n / (n + 5.0)) * variance + 1e-3 * (5.0 / (n + 5.0))


def jittered(step_size: Tensor, chains_shape: torch.Size, jitter: float, generator: torch.Generator | None,
             n_transitions: int | None = None) -> Tensor:
    """ε·U(1 − j, 1 + j), one draw per chain (and transition): ``(..., chains, 1)``, or
    ``(T, ..., chains, 1)`` with ``n_transitions``. With a fixed trajectory length a near-Gaussian
    posterior turns by the same angle at every transition, and acceptance as a function of ε has
    resonances (it can jump from 0.95 to 0.7 for 10 % more ε); a jittered length averages them out."""
    shape = (*chains_shape, 1) if n_transitions is None else (n_transitions, *chains_shape, 1)
    if jitter == 0.0:
        return step_size.expand(shape)
    u = torch.rand(shape, generator=generator, device=step_size.device, dtype=step_size.dtype)
    return step_size * (1.0 - jitter + 2.0 * jitter * u)


@dataclass
class WarmupResult:
    """Where the warm-up left the chains, and the kernel to keep: ``step_size`` ``(..., 1, 1)``,
    ``inverse_mass`` ``(..., 1, dim)``; ``acceptance`` ``(n_warmup, ...)`` is each group's mean
    acceptance probability per warm-up transition."""

    state: HMCState
    step_size: Tensor
    inverse_mass: Tensor
    acceptance: Tensor
    jitter: float = 0.0

    def step_sizes(self, n_transitions: int, generator: torch.Generator | None = None,
                   chains_shape: torch.Size | tuple[int, ...] | None = None) -> Tensor:
        """The adapted, jittered step sizes of ``n_transitions`` more transitions, for ``hmc_sample``:
        ``(T, ..., chains, 1)`` (``chains_shape`` defaults to the warm-up's ``(..., chains)``; another
        number of chains per group works too); pass ``inverse_mass=self.inverse_mass`` with them."""
        shape = self.state.position.shape[:-1] if chains_shape is None else torch.Size(chains_shape)
        return jittered(self.step_size, shape, self.jitter, generator, n_transitions)


@torch.no_grad()
def warmup(
    logdensity_fn: LogDensityFn,
    initial_position: Tensor,
    n_leapfrog: int = 5,
    settings: WarmupSettings = WarmupSettings(),
    initial_step_size: Tensor | float = 0.1,
    generator: torch.Generator | None = None,
    initial_inverse_mass: Tensor | None = None,
) -> WarmupResult:
    """Adapt one step size (and a diagonal inverse mass) per group of chains ``(..., chains, dim)``.

    The step size follows dual averaging throughout; with ``adapt_mass`` the draws of the
    ``mass_window`` share of the warm-up estimate each group's variance, which becomes M⁻¹, and dual
    averaging restarts from the current step size for the rest. ``initial_step_size`` broadcasts to
    ``(..., 1, 1)``; one that is far off costs only a few iterations (the updates are in log ε).
    ``initial_inverse_mass`` (broadcastable to ``(..., 1, dim)``; default 1) is the metric before the
    variance window ends — e.g. an encoder's σ², the scale the posterior is expected to have.
    """
    position = initial_position.detach()
    group_shape = (*position.shape[:-2], 1, 1)
    step = torch.as_tensor(initial_step_size, dtype=position.dtype, device=position.device).expand(group_shape)
    adaptation = DualAveraging(step.clone(), settings)
    inverse_mass = torch.ones((*position.shape[:-2], 1, position.shape[-1]), dtype=position.dtype,
                              device=position.device)
    if initial_inverse_mass is not None:
        inverse_mass = inverse_mass * initial_inverse_mass.to(inverse_mass)
    window = (int(settings.mass_window[0] * settings.n_warmup), int(settings.mass_window[1] * settings.n_warmup))
    variance = Welford()
    state = hmc_init(position, logdensity_fn)
    acceptances = []
    for t in range(settings.n_warmup):
        step_size = jittered(adaptation.step_size, position.shape[:-1], settings.jitter, generator)
        state, info = hmc_step(state, logdensity_fn, step_size, n_leapfrog, inverse_mass=inverse_mass,
                               generator=generator)
        group_acceptance = info.acceptance_prob.mean(-1, keepdim=True)[..., None]  # (..., 1, 1)
        adaptation.update(group_acceptance)
        acceptances.append(group_acceptance[..., 0, 0])
        if settings.adapt_mass and window[0] <= t < window[1]:
            variance.update(state.position)
            if t == window[1] - 1:
                inverse_mass = variance.regularised_variance()
                adaptation.restart(adaptation.step_size)  # as Stan: from the current step, in the new metric
    return WarmupResult(state, adaptation.final_step_size, inverse_mass, torch.stack(acceptances), settings.jitter)
