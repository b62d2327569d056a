"""How well a model's trained HMC is tuned: ``python -m vizvae evaluate MODEL --task hmc --json
[-o rows=200] [-o chains=30] [-o rounds=4] [-o mask=protocol|none] [-o seed=0]``.

On a fixed, seeded subset of the test split (under the §5.4 test masks, as the sampler is used for
Table 5.3, or with everything observed), the model's own sampler runs as it samples — T transitions
from the inflated encoder Gaussian — and then ``rounds − 1`` more rounds of the same T step sizes,
which give long enough chains for an ESS. Reported:

* ``acceptance`` — mean acceptance probability of the first T transitions (the sampler as used);
  ``acceptance_continued`` that of the later rounds;
* ``step_size_growth`` — the geometric mean of trained ÷ initial step sizes (the initial ones are
  re-drawn exactly from the model's ``hmc_seed``), and per latent layer;
* ``inflation`` — s_l per layer; ``divergences`` — over every transition and chain;
* ``ess_per_grad`` — bulk ESS of the later rounds' draws (per row, mean over dimensions) divided by
  the gradient evaluations that made them, averaged over rows; ``rhat_max`` the largest split R-hat;
* ``under_tuned`` — acceptance above 0.95 with step sizes within 1.5× of their start: the chains creep.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from vizvae.data import protocol_masks
from vizvae.inference.posterior import ess_and_rhat
from vizvae.kernels.hmc import hmc_sample, step_size_growth, under_tuned
from vizvae.models.capabilities import TunedHMCModel

ESS_ROWS = 50  # rows whose ESS is computed (ArviZ per row is the slow part)


def _ess_per_grad(chain: torch.Tensor, n_leapfrog: int, rows: int) -> tuple[float, float]:
    """chain (draws, batch, chains, dim) -> (mean over rows of ESS / gradient evaluations, max R-hat)."""
    draws, _, chains, _ = chain.shape
    ratios, rhats = [], []
    for row in range(min(rows, chain.shape[1])):
        ess, rhat = ess_and_rhat(chain[:, row].double().cpu().numpy().transpose(1, 0, 2))  # (chains, draws, dim)
        ratios.append(float(np.mean(ess)) / (chains * draws * n_leapfrog))
        rhats.append(float(np.max(rhat)))
    return float(np.mean(ratios)), float(np.max(rhats))


@torch.no_grad()
def hmc_diagnostics(model: Any, x: torch.Tensor, mask: torch.Tensor | None, n_chains: int = 30, rounds: int = 4,
                    seed: int = 0) -> dict[str, Any]:
    """The figures of the module docstring for rows ``x`` under ``mask`` (None: all observed)."""
    hyper = model.hmc
    generator = torch.Generator(device=x.device).manual_seed(int(seed))
    first = model.posterior_samples(x, mask, n_chains=n_chains, generator=generator)
    logdensity = model.posterior_logdensity(x, mask)
    state, later = first.state, []
    for _ in range(max(rounds - 1, 0)):
        run = hmc_sample(logdensity, state, hyper.step_sizes.detach(), hyper.n_leapfrog, generator=generator,
                         record_chain=True)
        state = run.state
        later.append(run)
    trained, initial = hyper.step_sizes.detach(), model.initial_step_sizes().to(hyper.step_sizes)
    growth = step_size_growth(trained, initial)
    acceptance = first.acceptance_rate()
    result: dict[str, Any] = {
        "acceptance": round(acceptance, 4),
        "acceptance_continued": round(float(np.mean([r.acceptance_rate() for r in later])), 4) if later else None,
        "step_size_growth": round(growth, 4),
        "step_size_growth_per_layer": [round(step_size_growth(trained[:, s], initial[:, s]), 4)
                                       for s in hyper.layer_slices],
        "mean_step_size": round(float(trained.mean()), 5),
        "initial_mean_step_size": round(float(initial.mean()), 5),
        "inflation": [round(v, 4) for v in hyper.inflation.tolist()],
        "divergences": first.n_divergences() + sum(r.n_divergences() for r in later),
        "under_tuned": under_tuned(acceptance, growth),
        "transitions": hyper.n_transitions, "leapfrog": hyper.n_leapfrog, "chains": n_chains, "rounds": rounds,
    }
    if later:
        chain = torch.cat([r.chain[1:] for r in later])  # (draws, batch, chains, dim)
        result["ess_per_grad"], result["rhat_max"] = (round(v, 5) for v in _ess_per_grad(chain, hyper.n_leapfrog,
                                                                                       ESS_ROWS))
    return result


def hmc_task(checkpoint, options: dict[str, Any]) -> dict[str, Any]:
    from vizvae.errors import VizvaeError
    from vizvae.evaluation.imputation import checkpoint_test_rows

    model = checkpoint.model
    if not isinstance(model, TunedHMCModel):
        raise VizvaeError(f"{checkpoint.name} has no trained HMC hyper-parameters; the hmc task needs an "
                          "HMC model (hmcvae, hhvae, hmcvaem, hhvaem)")
    dataset, x = checkpoint_test_rows(checkpoint, int(options.get("rows") or 200))
    how = str(options.get("mask") or "protocol")
    if how not in ("protocol", "none"):
        raise VizvaeError(f"mask must be 'protocol' or 'none', got {how!r}")
    mask = None
    if how == "protocol":
        mask, _ = protocol_masks(len(x), x.shape[1], "test", torch.Generator(device=model.device).manual_seed(0),
                                 model.device)
    figures = hmc_diagnostics(model, x, mask, n_chains=int(options.get("chains") or 30),
                              rounds=int(options.get("rounds") or 4), seed=int(options.get("seed") or 0))
    if not math.isfinite(figures["acceptance"]):
        raise VizvaeError(f"{checkpoint.name}: the sampler's acceptance is not finite")
    return {"model": checkpoint.name, "dataset": dataset.name, "rows": len(x), "mask": how, **figures}
