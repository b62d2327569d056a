"""Posterior gaps of one data point (Cremer, Li & Duvenaud 2018) and the bounds behind them.

    log p(x_O) − ELBO(q_φ) = [log p(x_O) − ELBO(q*)]  +  [ELBO(q*) − ELBO(q_φ)]
                              approximation gap           amortisation gap

q_φ is the encoder's Gaussian for this x; q* is the best diagonal Gaussian *for this x alone*,
found by gradient ascent on its ELBO. The approximation gap is what the Gaussian family costs,
the amortisation gap what sharing one encoder across the data set costs. log p(x_O) comes from
quadrature for a 2-D latent (``posterior.posterior_grid``), else from the largest-K importance
estimates here.

Estimators, all with explicit seeds:

* ``elbo_estimate`` — ELBO(q) = E_q[log p(x_O, z) − log q(z)] by Monte Carlo with a fixed noise
  batch, so two Gaussians compared on the same noise (common random numbers) differ by much less
  noise than either estimate has;
* ``best_gaussian`` — q* by Adam on (μ, log σ) from q_φ, reparameterised, with the
  "sticking the landing" gradient (Roeder et al. 2017): log q is evaluated with its parameters
  detached, which leaves the gradient unbiased and makes its variance vanish as q approaches a
  Gaussian posterior;
* ``iwae_curve`` — IWAE_K = E log (1/K) Σ_k p(x_O, z_k)/q(z_k) for K = 1 … 5000 from *one* pool of
  5000 log-weights split into groups of K;
* ``hmc_gaussian`` — the HMC-based estimate (see its docstring).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from vizvae.inference.posterior import PosteriorTarget
from vizvae.kernels.importance import kish_ess, log_mean_exp
from vizvae.models.distributions import DiagonalGaussian

__all__ = [
    "IWAE_KS",
    "GaussianProposal",
    "elbo_estimate",
    "BestGaussian",
    "best_gaussian",
    "importance_log_weights",
    "iwae_curve",
    "iwae_curve_se",
    "IWAE_REPLICATES",
    "hmc_gaussian",
    "PosteriorGaps",
    "posterior_gaps",
]

# log-spaced K, each dividing the next, so the pooled curve never decreases (see ``iwae_curve``)
IWAE_KS = (1, 5, 10, 50, 100, 500, 1000, 5000)
IWAE_REPLICATES = 8  # independent IWAE(Kmax) estimates averaged: their spread is the error bar


@dataclass
class GaussianProposal:
    """N(mean, L Lᵀ) over the latent (dim,), with its lower-triangular ``scale_tril`` (dim, dim):
    the encoder's diagonal Gaussian or a full-covariance fit to HMC samples, as an IS proposal."""

    mean: Tensor  # (dim,)
    scale_tril: Tensor  # (dim, dim)

    @classmethod
    def from_diagonal(cls, gaussian: DiagonalGaussian) -> "GaussianProposal":
        return cls(gaussian.mean, torch.diag_embed(gaussian.std))

    def rsample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        noise = torch.randn((n, len(self.mean)), generator=generator, device=self.mean.device, dtype=self.mean.dtype)
        return self.mean + noise @ self.scale_tril.T  # (n, dim)

    def log_prob(self, z: Tensor) -> Tensor:
        """(..., dim) -> (...)."""
        dim = self.mean.shape[-1]
        centred = (z - self.mean).unsqueeze(-1)  # (..., dim, 1)
        tril = self.scale_tril.expand(*centred.shape[:-2], dim, dim)
        solved = torch.linalg.solve_triangular(tril, centred, upper=False).squeeze(-1)
        log_det = torch.log(torch.diagonal(self.scale_tril)).sum()
        return -0.5 * solved.square().sum(-1) - log_det - 0.5 * dim * math.log(2 * math.pi)


# -- the ELBO of any Gaussian, and the best one ------------------------------------------------------------
def elbo_estimate(target: PosteriorTarget, gaussian: DiagonalGaussian, noise: Tensor) -> Tensor:
    """ELBO(q) = mean over the noise (S, dim) of log p(x_O, z) − log q(z), z = μ + σ ⊙ noise (scalar)."""
    z = gaussian.mean + gaussian.std * noise
    return (target.log_joint(z) - gaussian.log_prob(z)).mean()


@dataclass
class BestGaussian:
    """q* of one data point and its ELBO estimate per optimiser step (on that step's noise)."""

    posterior: DiagonalGaussian  # (dim,), detached
    elbo_history: np.ndarray  # (n_steps,)


def best_gaussian(target: PosteriorTarget, n_steps: int = 300, n_samples: int = 32, lr: float = 0.05,
                  seed: int = 0, start: DiagonalGaussian | None = None) -> BestGaussian:
    """The diagonal Gaussian that maximises this x's ELBO, by Adam from ``start`` (default q_φ).

    Reparameterised z = μ + σ ε with fresh ε ~ N(0, I) each step from ``seed``; the gradient
    reaches only μ and log σ (never the model). "Sticking the landing" (Roeder et al. 2017): log q
    is evaluated with detached parameters, dropping the score term whose expectation is zero, so
    the gradient's variance vanishes at a Gaussian posterior and q* settles instead of jittering.
    """
    start = target.encoder_posterior() if start is None else start
    mean = start.mean.detach().clone().requires_grad_(True)
    log_std = start.std.detach().log().clone().requires_grad_(True)
    optimiser = torch.optim.Adam([mean, log_std], lr=lr)
    generator = torch.Generator(device=target.device).manual_seed(int(seed))
    history = []
    for _ in range(n_steps):
        noise = torch.randn((n_samples, len(mean)), generator=generator, device=mean.device, dtype=mean.dtype)
        with torch.enable_grad():
            z = mean + log_std.exp() * noise
            frozen = DiagonalGaussian(mean.detach(), log_std.detach().exp())
            elbo = (target.log_joint(z) - frozen.log_prob(z)).mean()
            grads = torch.autograd.grad(-elbo, [mean, log_std])
        for parameter, grad in zip((mean, log_std), grads):
            parameter.grad = grad
        optimiser.step()
        history.append(float(elbo.detach()))
    return BestGaussian(DiagonalGaussian(mean.detach(), log_std.detach().exp()), np.asarray(history))


# -- importance sampling ----------------------------------------------------------------------------------
@torch.no_grad()
def importance_log_weights(target: PosteriorTarget, proposal: GaussianProposal, n: int, seed: int = 0,
                           chunk_size: int = 1000) -> Tensor:
    """log w_k = log p(x_O, z_k) − log q(z_k), z_k ~ q, k = 1 … n: (n,), drawn ``chunk_size`` at a time."""
    generator = torch.Generator(device=target.device).manual_seed(int(seed))
    chunks, remaining = [], n
    while remaining > 0:
        k = min(chunk_size, remaining)
        z = proposal.rsample(k, generator)
        chunks.append(target.log_joint(z) - proposal.log_prob(z))
        remaining -= k
    return torch.cat(chunks)


def iwae_curve(log_weights: Tensor, ks: tuple[int, ...] = IWAE_KS) -> np.ndarray:
    """IWAE_K for each K from one pool of N log-weights (N,): the pool is cut into ⌊N/K⌋ groups of
    K consecutive weights and the groups' log-mean-exps are averaged.

    Each K uses every weight, so small K are averaged over many groups (K = 1 is the ELBO estimate
    over all N) and only K = N rests on a single group. When each K divides the next, a group of
    the larger K is a union of groups of the smaller, and by concavity of log its log-mean-exp is
    at least the mean of theirs: the estimated curve never decreases, as the bound itself.
    """
    log_weights = log_weights.detach().double().cpu()
    values = []
    for k in ks:
        groups = len(log_weights) // k
        if groups == 0:
            raise ValueError(f"K = {k} needs at least {k} log-weights, got {len(log_weights)}")
        grouped = log_weights[: groups * k].reshape(groups, k)
        values.append(float(log_mean_exp(grouped, dim=1).mean()))
    return np.asarray(values)


def iwae_curve_se(log_weights: Tensor, ks: tuple[int, ...] = IWAE_KS) -> np.ndarray:
    """The Monte Carlo standard error of each ``iwae_curve`` value: the spread of the ⌊N/K⌋ groups'
    log-mean-exps over √(groups); NaN where there is one group (nothing to measure the spread from)."""
    log_weights = log_weights.detach().double().cpu()
    errors = []
    for k in ks:
        groups = len(log_weights) // k
        if groups < 2:
            errors.append(float("nan"))
            continue
        estimates = log_mean_exp(log_weights[: groups * k].reshape(groups, k), dim=1)
        errors.append(float(estimates.std(unbiased=True)) / math.sqrt(groups))
    return np.asarray(errors)


def _ess(log_weights: Tensor) -> float:
    # Kish's ESS: far below the number of draws means a few weights dominate and IWAE_K for K near
    # it is still noisy (single estimates can even overshoot log p(x))
    return float(kish_ess(log_weights.detach().double(), dim=0))


def hmc_gaussian(samples: Tensor, widen: float = 1.25, shrinkage: float = 0.1) -> GaussianProposal:
    """The HMC-based estimate's proposal: a full-covariance Gaussian fitted to HMC samples (n, dim).

    Why this estimate: the HMC samples come from q^(T), whose density is intractable, so they
    cannot be importance-weighted themselves; and their mean log joint E_{q^(T)} log p(x_O, z)
    (the HMC objective, eq. 5.9) is no bound on log p(x_O) — it lacks q^(T)'s entropy and can lie on
    either side of it. A Gaussian fitted to where HMC found the mass is a proposal with a density:
    importance sampling with it gives, like IWAE, a stochastic lower bound on log p(x_O) for every
    K (consistent as K grows), directly comparable with IWAE_K under the encoder. Its covariance
    is shrunk towards its diagonal by ``shrinkage`` (n may be close to dim) and its scale widened by
    ``widen``: an importance proposal should be wider than its target, not narrower.
    """
    samples = samples.detach()
    n, dim = samples.shape
    mean = samples.mean(0)
    centred = samples - mean
    covariance = centred.T @ centred / max(n - 1, 1)
    covariance = (1 - shrinkage) * covariance + shrinkage * torch.diag(torch.diagonal(covariance))
    jitter = 1e-6 * torch.diagonal(covariance).mean().clamp_min(1e-12)
    covariance = covariance + jitter * torch.eye(dim, dtype=samples.dtype, device=samples.device)
    return GaussianProposal(mean, widen * torch.linalg.cholesky(covariance))


# -- the decomposition ------------------------------------------------------------------------------------
@dataclass
class PosteriorGaps:
    """The gaps of one data point, in nats, and the curves they come from."""

    log_evidence: float  # log p(x_O): the reference
    log_evidence_source: str  # "quadrature", "IWAE(5000)" or "HMC-IS(5000)"
    elbo_encoder: float  # ELBO(q_φ)
    elbo_best: float  # ELBO(q*)
    best: DiagonalGaussian  # q*, (dim,)
    elbo_history: np.ndarray  # ELBO of q* per optimiser step
    ks: np.ndarray  # (n_k,)
    iwae: np.ndarray  # (n_k,) IWAE_K under q_φ
    hmc_iwae: np.ndarray | None  # (n_k,) IS_K under the Gaussian fitted to the HMC samples
    log_evidence_quadrature: float | None
    iwae_ess: float  # Kish ESS of the Kmax encoder weights (the mean over the replicates' groups)
    hmc_ess: float | None  # ... and of the HMC-Gaussian weights
    iwae_se: np.ndarray | None = None  # (n_k,) Monte Carlo standard error of ``iwae`` (``iwae_curve_se``)
    hmc_iwae_se: np.ndarray | None = None  # ... of ``hmc_iwae``

    @property
    def log_evidence_se(self) -> float | None:
        """The Monte Carlo standard error of ``log_evidence`` (None: exact by quadrature, or not stored)."""
        errors = {"IWAE": self.iwae_se, "HMC-IS": self.hmc_iwae_se}.get(self.log_evidence_source.split("(")[0])
        if errors is None or not np.isfinite(errors[-1]):
            return None
        return float(errors[-1])

    @property
    def approximation_gap(self) -> float:
        return self.log_evidence - self.elbo_best

    @property
    def amortisation_gap(self) -> float:
        return self.elbo_best - self.elbo_encoder

    @property
    def total_gap(self) -> float:
        return self.log_evidence - self.elbo_encoder


def posterior_gaps(target: PosteriorTarget, hmc_samples: Tensor | None = None,
                   log_evidence_quadrature: float | None = None, ks: tuple[int, ...] = IWAE_KS,
                   n_elbo_samples: int = 2000, n_steps: int = 300, seed: int = 0,
                   replicates: int = IWAE_REPLICATES) -> PosteriorGaps:
    """Approximation and amortisation gaps of one data point (see the module docstring).

    ELBO(q_φ) and ELBO(q*) are estimated on the same ``n_elbo_samples`` noise draws; q* is kept only
    if it beats q_φ there (the encoder's Gaussian is itself a candidate), so the amortisation gap is
    never negative. log p(x_O) is ``log_evidence_quadrature`` when given (2-D latents), else the
    larger of IWAE_Kmax and the HMC-based IS_Kmax — both lower bounds in expectation, so the larger
    is the tighter; then the approximation gap is itself an upper estimate only up to their noise.
    IWAE_Kmax is the mean of ``replicates`` independent estimates, and every point of the curves comes
    with its Monte Carlo standard error (a single IWAE(5000) can rest on an ESS of ~20 weights).
    """
    encoder = target.encoder_posterior()
    best = best_gaussian(target, n_steps=n_steps, seed=seed, start=encoder)
    noise_generator = torch.Generator(device=target.device).manual_seed(int(seed) + 1)
    noise = torch.randn((n_elbo_samples, target.latent_dim), generator=noise_generator, device=target.device,
                        dtype=encoder.mean.dtype)
    with torch.no_grad():
        elbo_encoder = float(elbo_estimate(target, encoder, noise))
        elbo_best = float(elbo_estimate(target, best.posterior, noise))
    best_posterior = best.posterior
    if elbo_best < elbo_encoder:
        elbo_best, best_posterior = elbo_encoder, encoder

    k_max = max(ks)
    n_pool = k_max * replicates  # IWAE(Kmax) is then the mean of ``replicates`` estimates, with an error bar
    encoder_weights = importance_log_weights(target, GaussianProposal.from_diagonal(encoder), n_pool, seed + 2)
    iwae, iwae_se = iwae_curve(encoder_weights, ks), iwae_curve_se(encoder_weights, ks)
    hmc_iwae, hmc_iwae_se, hmc_ess = None, None, None
    if hmc_samples is not None and len(hmc_samples) > 1:
        proposal = hmc_gaussian(hmc_samples.to(device=target.device, dtype=encoder.mean.dtype))
        hmc_weights = importance_log_weights(target, proposal, n_pool, seed + 3)
        hmc_iwae, hmc_iwae_se, hmc_ess = iwae_curve(hmc_weights, ks), iwae_curve_se(hmc_weights, ks), \
            _group_ess(hmc_weights, k_max)

    if log_evidence_quadrature is not None:
        log_evidence, source = float(log_evidence_quadrature), "quadrature"
    elif hmc_iwae is not None and hmc_iwae[-1] > iwae[-1]:
        log_evidence, source = float(hmc_iwae[-1]), f"HMC-IS({k_max})"
    else:
        log_evidence, source = float(iwae[-1]), f"IWAE({k_max})"
    return PosteriorGaps(
        log_evidence=log_evidence, log_evidence_source=source, elbo_encoder=elbo_encoder, elbo_best=elbo_best,
        best=best_posterior, elbo_history=best.elbo_history, ks=np.asarray(ks), iwae=iwae, hmc_iwae=hmc_iwae,
        log_evidence_quadrature=log_evidence_quadrature, iwae_ess=_group_ess(encoder_weights, k_max),
        hmc_ess=hmc_ess, iwae_se=iwae_se, hmc_iwae_se=hmc_iwae_se,
    )


def _group_ess(log_weights: Tensor, k: int) -> float:
    """Kish's ESS of each group of ``k`` weights, averaged: the ESS behind one IWAE(k) estimate."""
    groups = len(log_weights) // k
    return float(np.mean([_ess(group) for group in log_weights[: groups * k].reshape(groups, k)]))
