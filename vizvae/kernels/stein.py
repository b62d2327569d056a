"""Sliced kernelized Stein discrepancy (SKSD) and training of the HMC hyper-parameters.

SKSD (Gong et al. 2021) measures how far samples are from a target using only the target's score
∇ log p*, so it works for the unnormalised posteriors of a VAE. Here it trains the inflation of the
initial proposal (eq. 5.10), while the step sizes are trained on the HMC objective (eq. 5.9) —
the HMC part of Algorithm 1 (§5.2.5–5.2.6).

Two things differ from a plain reading of the thesis, both measured (tests/inference/
test_hmc_objective_gradient.py): the gradient of eq. 5.9 includes the score-function term of the
accept/reject decisions (without it the estimate is biased towards smaller steps), and the overall
scale of the step sizes is steered to a target acceptance (``steer_to_acceptance``), which the
objective alone does not reach.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, NamedTuple

import torch
from torch import Tensor

from vizvae.kernels.hmc import HMCHyperparameters, HMCResult, LogDensityFn, zero_non_finite
from vizvae.progress import TrainingLog

__all__ = [
    "median_bandwidth",
    "sksd",
    "HMCTrainingLosses",
    "HMCTrainingResult",
    "HMCTrainingSettings",
    "hmc_training_losses",
    "objective_with_decisions",
    "steer_to_acceptance",
    "train_hmc_hyperparameters",
]


def median_bandwidth(u: Tensor) -> Tensor:
    """Median heuristic per 1-D slice: median of |u_i − u_j| over pairs i < j.

    ``u``: ``(..., n)`` → ``(...)``. Detached — the kernel is a choice of test functions, not
    something the samples should move to shrink the discrepancy — and floored so that collapsed
    samples (all equal) still give a finite kernel.
    """
    u = u.detach()
    n = u.shape[-1]
    rows, cols = torch.triu_indices(n, n, offset=1, device=u.device)
    distances = (u[..., rows] - u[..., cols]).abs()  # (..., n(n-1)/2)
    floor = torch.finfo(u.dtype).eps ** 0.5
    return distances.median(dim=-1).values.clamp_min(floor)


def sksd(samples: Tensor, score: Tensor, bandwidth: Tensor | None = None) -> Tensor:
    """SKSD with slice directions r = g = e_i: the sum over coordinates of a 1-D KSD.

    ``samples`` x ``(..., n, dim)`` and ``score`` s(x) = ∇ log p*(x) at them (same shape) →
    ``(...)``. For coordinate i, with u = x_i, a = s_i(x) and the RBF kernel
    k(u, u') = exp(−(u − u')²/(2h²)), the Stein kernel is

        h(x, x') = a a' k + a ∂_{u'}k + a' ∂_u k + ∂²_{u u'}k
                 = k [a a' + (a − a')(u − u')/h² + 1/h² − (u − u')²/h⁴],

    averaged over pairs x ≠ x' (U-statistic: unbiased, so ≈ 0 — possibly slightly negative —
    for samples from p, and positive when they are not). ``bandwidth`` ``(..., dim)`` defaults to
    the median heuristic per coordinate. Differentiable w.r.t. ``samples`` and ``score``.
    """
    if samples.shape != score.shape:
        raise ValueError(f"samples {tuple(samples.shape)} and score {tuple(score.shape)} differ")
    n = samples.shape[-2]
    if n < 2:
        raise ValueError("SKSD needs at least two samples per set")
    u = samples.transpose(-1, -2)  # (..., dim, n)
    a = score.transpose(-1, -2)  # (..., dim, n)
    if bandwidth is None:
        bandwidth = median_bandwidth(u)  # (..., dim)
    h2 = bandwidth.detach().square()[..., None, None]  # (..., dim, 1, 1)

    diff = u[..., :, None] - u[..., None, :]  # (..., dim, n, n)  u − u'
    kernel = torch.exp(-0.5 * diff.square() / h2)
    a_i, a_j = a[..., :, None], a[..., None, :]
    stein_kernel = kernel * (
        a_i * a_j + (a_i - a_j) * diff / h2 + 1.0 / h2 - diff.square() / h2.square()
    )
    # diagonal (x = x'): diff = 0, k = 1 → a² + 1/h²; dropped for the U-statistic
    diagonal = a.square() + 1.0 / h2[..., 0]  # (..., dim, n)
    off_diagonal = stein_kernel.sum((-1, -2)) - diagonal.sum(-1)  # (..., dim)
    return (off_diagonal / (n * (n - 1))).sum(-1)


def objective_with_decisions(logdensity: Tensor, log_decision_probs: Tensor | None) -> Tensor:
    """E[log p*(z_T)] (eq. 5.9) as a Monte Carlo mean over chains and rows, whose gradient is
    unbiased: the pathwise term through the accepted trajectories plus the score-function term of
    the T accept/reject decisions, Σ_t ∇ log P(d_t) · (f − b), with b the leave-one-out mean of the
    other chains of the same row (a baseline that adds no bias). The added term is zero in value,
    so the objective reads as before.

    ``logdensity`` ``(..., n_chains)`` is log p*(z_T); ``log_decision_probs`` ``(T, ..., n_chains)``
    from a differentiable ``hmc_sample`` (None: the pathwise term alone).
    """
    objective = logdensity.mean()
    if log_decision_probs is None or log_decision_probs.shape[0] == 0:
        return objective
    f = logdensity.detach()
    n = f.shape[-1]
    baseline = (f.sum(-1, keepdim=True) - f) / (n - 1) if n > 1 else torch.zeros_like(f)
    advantage = torch.nan_to_num(f - baseline, nan=0.0, posinf=0.0, neginf=0.0)
    log_p = log_decision_probs.sum(0)
    return objective + (advantage * (log_p - log_p.detach())).mean()


class HMCTrainingLosses(NamedTuple):
    """The two losses of one Stage-3 step, from a single differentiable HMC run."""

    hmc_objective: Tensor  # scalar, E[log p*(ε_T)] (eq. 5.9) — maximise w.r.t. step sizes (+ decoder)
    sksd: Tensor  # scalar, SKSD(q^(T), p) (eq. 5.10) — minimise w.r.t. inflation only
    result: HMCResult


def hmc_training_losses(
    hyperparameters: HMCHyperparameters,
    logdensity_fn: LogDensityFn,
    proposal_mean: Tensor,
    proposal_std: Tensor,
    n_chains: int = 30,
    inverse_mass: Tensor | float | None = None,
    generator: torch.Generator | None = None,
) -> HMCTrainingLosses:
    """Both losses of Algorithm 1's HMC part from one differentiable run of ``n_chains`` chains.

    ``proposal_mean``/``proposal_std`` ``(..., dim)`` are the encoder's μ, σ per data point. The
    final state's cached log-density and gradient are reused, so this costs no evaluations beyond
    the run's T·LF + 1.

    Each loss must reach only its own parameters (the HMC objective alone would shrink the
    proposal onto the mode; that is what the inflation guards against): differentiate with
    ``losses.hmc_objective.neg().backward(inputs=[*decoder_params, hyper.log_step_sizes],
    retain_graph=True)`` and ``losses.sksd.backward(inputs=[hyper.log_inflation])``.
    """
    result = hyperparameters.sample(
        logdensity_fn,
        proposal_mean,
        proposal_std,
        n_chains,
        inverse_mass=inverse_mass,
        generator=generator,
        differentiable=True,
    )
    final = result.state  # position (..., n_chains, dim)
    hmc_objective = objective_with_decisions(final.logdensity, result.log_decision_probs)  # eq. (5.9)
    discrepancy = sksd(final.position, final.grad).mean()  # eq. (5.10), one SKSD per data point
    return HMCTrainingLosses(hmc_objective, discrepancy, result)


@dataclass
class HMCTrainingResult:
    """Trained hyper-parameters and their per-iteration history (Figs 5.7c, 5.8)."""

    step_sizes: Tensor  # (T, dim)
    inflation: Tensor  # (L,)
    # hmc_objective, sksd, mean_acceptance, divergences: (n_iter,); inflation: (n_iter, L);
    # step_sizes: (n_iter, T, dim), after each iteration's update
    history: dict[str, Tensor]
    hyperparameters: HMCHyperparameters


@dataclass(frozen=True)
class HMCTrainingSettings:
    """How long and how fast ``train_hmc_hyperparameters`` trains; defaults follow the thesis
    (30 chains, learning rates 1e-3 for log φ and 1e-2 for log s, §5.4.1)."""

    n_iterations: int = 500
    n_chains: int = 30
    lr_step_sizes: float = 1e-3
    lr_inflation: float = 1e-2
    train_step_sizes: bool = True
    train_inflation: bool = True
    # vizvae's addition (see ``steer_to_acceptance``): None trains by eq. 5.9 alone
    target_acceptance: float | None = 0.65
    acceptance_gain: float = 0.05


HISTORY_KEYS = ("hmc_objective", "sksd", "mean_acceptance", "divergences", "inflation", "step_sizes")
CALLBACK_KEYS = ("hmc_objective", "sksd", "mean_acceptance", "divergences")


def _grad_or_zeros(loss: Tensor, parameter: Tensor, retain_graph: bool) -> Tensor:
    (grad,) = torch.autograd.grad(loss, parameter, retain_graph=retain_graph, allow_unused=True)
    if grad is None:
        return torch.zeros_like(parameter)
    return zero_non_finite(grad)  # a rejected divergent chain can still send 0 · NaN backwards


def _update(hyperparameters: HMCHyperparameters, losses: HMCTrainingLosses, settings: HMCTrainingSettings,
            step_optimizer: torch.optim.Optimizer, inflation_optimizer: torch.optim.Optimizer) -> None:
    """One Adam step on log φ (maximise eq. 5.9) and one on log s (minimise eq. 5.10), each loss
    reaching only its own parameter."""
    if settings.train_step_sizes:
        hyperparameters.log_step_sizes.grad = _grad_or_zeros(
            -losses.hmc_objective, hyperparameters.log_step_sizes, retain_graph=settings.train_inflation)
        step_optimizer.step()
    if settings.train_inflation:
        hyperparameters.log_inflation.grad = _grad_or_zeros(losses.sksd, hyperparameters.log_inflation,
                                                            retain_graph=False)
        inflation_optimizer.step()
    step_optimizer.zero_grad(set_to_none=True)
    inflation_optimizer.zero_grad(set_to_none=True)


@torch.no_grad()
def steer_to_acceptance(hyperparameters: HMCHyperparameters, acceptance: float, target: float | None,
                        gain: float) -> None:
    """One Robbins–Monro step on the overall scale of the step sizes: log φ += gain · (ᾱ − target).

    The HMC objective (eq. 5.9) shapes φ across transitions and dimensions, but its overall scale is
    poorly determined by it: E[log p*(z_T)] is flat in φ wherever q^(T) is already the target, and
    favours small steps wherever the proposal sits inside the posterior's mode (the entropy term of
    eq. 5.8 that would push back is dropped). Left alone, tuned samplers stay at acceptance ≈ 0.99
    with steps several times smaller than they can be. The thesis reports its tuned samplers at
    ≈ 0.65 (Fig. 5.8); this step keeps the learned shape and moves the scale there. It is a fixed
    point exactly when the mean acceptance ᾱ equals ``target``; ``target=None`` turns it off."""
    if target is None or not math.isfinite(acceptance):
        return
    hyperparameters.log_step_sizes.add_(gain * (acceptance - target))


def _history_tensors(history: dict[str, list], hyperparameters: HMCHyperparameters,
                     dtype: torch.dtype) -> dict[str, Tensor]:
    """The recorded lists as tensors: scalars (n_iter,), inflation (n_iter, L), step sizes (n_iter, T, dim)."""
    tensors = {key: torch.tensor(history[key], dtype=torch.long if key == "divergences" else dtype)
               for key in CALLBACK_KEYS}
    tensors["inflation"] = (torch.stack(history["inflation"]) if history["inflation"]
                            else torch.empty(0, len(hyperparameters.layer_slices)))
    tensors["step_sizes"] = (torch.stack(history["step_sizes"]) if history["step_sizes"]
                             else torch.empty(0, *hyperparameters.log_step_sizes.shape))
    return tensors


def train_hmc_hyperparameters(
    logdensity_fn: LogDensityFn,
    proposal_mean: Tensor | Callable[[], Tensor],
    proposal_std: Tensor | Callable[[], Tensor],
    hyperparameters: HMCHyperparameters,
    settings: HMCTrainingSettings = HMCTrainingSettings(),
    *,
    inverse_mass: Tensor | float | None = None,
    generator: torch.Generator | None = None,
    callback: Callable[[int, dict[str, float]], None] | None = None,
) -> HMCTrainingResult:
    """Tune the step sizes (eq. 5.9) and per-layer inflation (eq. 5.10) of ``hyperparameters``, in
    place, for a fixed target.

    Each iteration draws ``settings.n_chains`` chains per data point from N(μ, s_l·σ), runs T
    transitions of LF leapfrog steps with gradients through the leapfrog updates (not the accept
    step), then takes one Adam step on log φ to *maximise* E[log p*(ε_T)] — the entropy term of
    eq. 5.8 is dropped as intractable — and one on log s to *minimise* SKSD between the chains and
    the target.

    ``proposal_mean``/``proposal_std`` ``(..., dim)`` are tensors, or zero-argument callables
    re-evaluated each iteration (e.g. an encoder trained elsewhere); they are detached.
    ``callback(iteration, record)`` is called after every iteration with that iteration's scalars
    (hmc_objective, sksd, mean_acceptance, divergences, mean_step_size) — e.g. to drive a progress bar.
    """

    def current(value: Tensor | Callable[[], Tensor]) -> Tensor:
        return (value() if callable(value) else value).detach()

    mean0 = current(proposal_mean)
    hyperparameters.to(device=mean0.device, dtype=mean0.dtype)
    step_optimizer = torch.optim.Adam([hyperparameters.log_step_sizes], lr=settings.lr_step_sizes)
    inflation_optimizer = torch.optim.Adam([hyperparameters.log_inflation], lr=settings.lr_inflation)
    with TrainingLog(settings.n_iterations, "hmc", history_keys=HISTORY_KEYS, enabled=False) as log:
        for iteration in range(settings.n_iterations):
            losses = hmc_training_losses(hyperparameters, logdensity_fn, current(proposal_mean),
                                         current(proposal_std), n_chains=settings.n_chains,
                                         inverse_mass=inverse_mass, generator=generator)
            _update(hyperparameters, losses, settings, step_optimizer, inflation_optimizer)
            if settings.train_step_sizes:
                steer_to_acceptance(hyperparameters, losses.result.acceptance_rate(), settings.target_acceptance,
                                    settings.acceptance_gain)
            record = {"hmc_objective": float(losses.hmc_objective.detach()), "sksd": float(losses.sksd.detach()),
                      "mean_acceptance": losses.result.acceptance_rate(),
                      "divergences": losses.result.n_divergences()}
            step_sizes = hyperparameters.step_sizes.detach().cpu()
            log.record(**record, inflation=hyperparameters.inflation.detach().cpu(), step_sizes=step_sizes)
            log.advance(SKSD=log.smooth(sksd=record["sksd"])["sksd"])
            if callback is not None:
                callback(iteration, {**record, "mean_step_size": float(step_sizes.mean())})
    return HMCTrainingResult(
        step_sizes=hyperparameters.step_sizes.detach(),
        inflation=hyperparameters.inflation.detach(),
        history=_history_tensors(log.history, hyperparameters, mean0.dtype),
        hyperparameters=hyperparameters,
    )
