"""Is the learned sampler exact? ``python -m vizvae evaluate MODEL --task exactness --json
[-o rows=20] [-o chains=100] [-o rounds=20] [-o seed=0]`` for a model with a 2-D latent.

For each of ``rows`` seeded test images (everything observed) the exact posterior p(z | x) comes
from quadrature (``inference.posterior.posterior_grid``): its mean and variance per dimension. The
model's own sampler then runs as it samples — T transitions with the learned step sizes from the
learned inflation of the encoder Gaussian — and ``rounds − 1`` more rounds of the same T steps; the
first half of all rounds is discarded as warm-up, the rest are the draws. Per image and dimension:

* ``mean_error_se`` — |mean of the draws − exact mean| in Monte Carlo standard errors
  (√(var / ESS), ESS the bulk ESS of the draws over all chains, by ArviZ);
* ``variance_ratio`` — variance of the draws ÷ exact variance;
* the same two for the encoder's Gaussian: its mean error in exact posterior sds, its variance
  ratio (σ²_q ÷ exact variance).

``passes`` holds where every mean error is under 3 standard errors and every variance ratio is in
[0.8, 1.25]; a model with no trained HMC is sampled with the warm-up's adapted step sizes instead.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from vizvae.inference.posterior import PosteriorTarget, adapted_step_sizes, ess_and_rhat, posterior_grid
from vizvae.kernels.hmc import HMCHyperparameters, hmc_sample
from vizvae.models.capabilities import TunedHMCModel

MEAN_ERROR_LIMIT = 3.0  # standard errors
VARIANCE_RATIO_RANGE = (0.8, 1.25)


def exact_moments(target: PosteriorTarget) -> tuple[np.ndarray, np.ndarray]:
    """(mean (2,), variance (2,)) of p(z | x_O) by quadrature on the posterior's grid."""
    grid = posterior_grid(target)
    weights = np.exp(grid.log_posterior)
    weights = weights / weights.sum()  # the grid is regular: cell weights ∝ density
    z1, z2 = np.meshgrid(grid.z1, grid.z2)  # rows z_2, as the grid
    points = np.stack([z1, z2], axis=-1)  # (n, n, 2)
    mean = (weights[..., None] * points).sum((0, 1))
    variance = (weights[..., None] * (points - mean) ** 2).sum((0, 1))
    return mean, variance


def _continue(logdensity, state, hyper: HMCHyperparameters, rounds: int, generator: torch.Generator) -> torch.Tensor:
    """``rounds − 1`` more rounds of the sampler's T steps from ``state``; the draws after warm-up
    (the second half): (draws, rows, chains, 2)."""
    chain = []
    for _ in range(max(rounds - 1, 1)):
        run = hmc_sample(logdensity, state, hyper.step_sizes.detach(), hyper.n_leapfrog, generator=generator,
                         record_chain=True)
        state = run.state
        chain.append(run.chain[1:])
    draws = torch.cat(chain)
    return draws[len(draws) // 2:]


@torch.no_grad()
def sample_rows(model: Any, x: torch.Tensor, n_chains: int, rounds: int, seed: int) -> tuple[torch.Tensor, str]:
    """Draws after warm-up (draws, rows, chains, 2) of the model's sampler on the rows of ``x``: its
    learned sampler for all rows at once, or for a model without one, each row's warm-up adapted
    step sizes (``adapted_step_sizes``) from its encoder Gaussian."""
    generator = torch.Generator(device=x.device).manual_seed(int(seed))
    if isinstance(model, TunedHMCModel):
        state = model.posterior_samples(x, None, n_chains=n_chains, generator=generator).state
        draws = _continue(model.posterior_logdensity(x, None), state, model.hmc, rounds, generator)
        return draws, "learned step sizes and inflation"
    per_row = []
    for row in x:
        target = PosteriorTarget(model, row)
        steps = adapted_step_sizes(target, 10, 5, seed)
        hyper = HMCHyperparameters(2, steps.shape[0], 5, step_sizes=steps).to(device=x.device, dtype=x.dtype)
        encoder = target.encoder_posterior()
        logdensity = lambda z, r=row: model.log_joint(r, None, z)  # noqa: E731 — (1, chains, 2) -> (1, chains)
        state = hyper.sample(logdensity, encoder.mean[None], encoder.std[None], n_chains, generator=generator).state
        per_row.append(_continue(logdensity, state, hyper, rounds, generator))
    return torch.cat(per_row, dim=1), "warm-up adapted step sizes"


def row_report(draws: np.ndarray, exact_mean: np.ndarray, exact_var: np.ndarray, encoder_mean: np.ndarray,
               encoder_var: np.ndarray) -> dict[str, Any]:
    """One image's figures from its draws (draws, chains, 2)."""
    ess, rhat = ess_and_rhat(draws.transpose(1, 0, 2))
    flat = draws.reshape(-1, 2)
    mean, var = flat.mean(0), flat.var(0)
    standard_error = np.sqrt(var / np.maximum(ess, 1.0))
    error_se = np.abs(mean - exact_mean) / standard_error
    ratio = var / exact_var
    return {"mean_error_se": error_se.round(2).tolist(), "variance_ratio": ratio.round(3).tolist(),
            "ess": np.round(ess, 1).tolist(), "rhat": np.round(rhat, 3).tolist(),
            "encoder_mean_error_sd": (np.abs(encoder_mean - exact_mean) / np.sqrt(exact_var)).round(2).tolist(),
            "encoder_variance_ratio": (encoder_var / exact_var).round(3).tolist(),
            "passes": bool((error_se < MEAN_ERROR_LIMIT).all() and (ratio >= VARIANCE_RATIO_RANGE[0]).all()
                           and (ratio <= VARIANCE_RATIO_RANGE[1]).all())}


def exactness(model: Any, x: torch.Tensor, n_chains: int = 100, rounds: int = 20, seed: int = 0) -> dict[str, Any]:
    """The module docstring's figures for the images ``x`` (rows, features)."""
    if int(model.latent_dim) != 2:
        raise ValueError(f"exactness needs a 2-D latent (quadrature), this model has {model.latent_dim}")
    draws, how = sample_rows(model, x, n_chains, rounds, seed)
    draws_np = draws.double().cpu().numpy()
    encoder = model.encode(x, None)
    rows = []
    for i in range(len(x)):
        exact_mean, exact_var = exact_moments(PosteriorTarget(model, x[i]))
        rows.append(row_report(draws_np[:, i], exact_mean, exact_var, encoder.mean[i].double().cpu().numpy(),
                               encoder.std[i].double().square().cpu().numpy()))
    return {"sampler": how, "chains": n_chains, "rounds": rounds, "draws_per_chain": int(draws.shape[0]),
            "rows_passing": sum(r["passes"] for r in rows), "rows": rows,
            "max_mean_error_se": max(max(r["mean_error_se"]) for r in rows),
            "variance_ratio_range": [min(min(r["variance_ratio"]) for r in rows),
                                     max(max(r["variance_ratio"]) for r in rows)],
            "encoder_max_mean_error_sd": max(max(r["encoder_mean_error_sd"]) for r in rows),
            "encoder_variance_ratio_range": [min(min(r["encoder_variance_ratio"]) for r in rows),
                                             max(max(r["encoder_variance_ratio"]) for r in rows)]}


def exactness_task(checkpoint, options: dict[str, Any]) -> dict[str, Any]:
    from vizvae.errors import VizvaeError
    from vizvae.evaluation.imputation import checkpoint_test_rows

    model = checkpoint.model
    if int(model.latent_dim) != 2:
        raise VizvaeError(f"{checkpoint.name} has a {model.latent_dim}-D latent; the exactness task compares "
                          "with a quadrature posterior and needs a 2-D one")
    dataset, x = checkpoint_test_rows(checkpoint, int(options.get("rows") or 20))
    figures = exactness(model, x, n_chains=int(options.get("chains") or 100), rounds=int(options.get("rounds") or 20),
                        seed=int(options.get("seed") or 0))
    return {"model": checkpoint.name, "dataset": dataset.name, "n_rows": len(x), **figures}
