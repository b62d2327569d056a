"""The Posterior page's results in the checkpoint cache: HMC chains, their diagnostics, the exact
grid of a 2-D latent and the gaps of one test image, as plain arrays (``.npz``, no pickle).

The page and ``python -m vizvae precompute`` both go through ``cached_*`` here with the same
settings (``posterior_params``), so what the builder ships for the default view is exactly what
the page would compute, and any other view (or a user's checkpoint) is computed once and stored
in the user cache.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from vizvae.errors import VizvaeError
from vizvae.inference import cache
from vizvae.inference.gaps import PosteriorGaps
from vizvae.inference.posterior import ChainDiagnostics, PosteriorChains, PosteriorGrid, PosteriorTarget
from vizvae.kernels.hmc import HMCResult, HMCState
from vizvae.models.distributions import DiagonalGaussian

MaskSpec = tuple  # (kind, hidden half or "", missing rate or 0.0)
# the page's first view: test image 0, all pixels observed, seed 0, 50 chains, trained step sizes
DEFAULT_VIEW: dict[str, Any] = {"image": 0, "mask_spec": ("none", "", 0.0), "seed": 0, "n_chains": 50, "scale": 1.0}


UNTRAINED_SAMPLER = "warmup-dual-averaging, jitter U(0.5, 1.5)"  # posterior.adapted_step_sizes; older stored chains used U(0.02, 0.05)


def posterior_params(image: int | str, mask_spec: MaskSpec, seed: int = 0, n_chains: int | None = None,
                     scale: float | None = None) -> dict[str, Any]:
    """The settings a stored result is keyed by (the grid depends on the image and mask only).
    ``image``: a test row, or ``"<atlas source>:<item>"`` for an item of the Latent atlas."""
    kind, half, rate = mask_spec
    params: dict[str, Any] = {"image": image if isinstance(image, str) else int(image),
                              "mask": [str(kind), str(half), float(rate)], "seed": int(seed)}
    if n_chains is not None:  # the chains: "sampler" names how a model without trained HMC is tuned
        params.update(chains=int(n_chains), scale=float(scale), sampler=UNTRAINED_SAMPLER)
    return params


def posterior_row(checkpoint: Any, image: int | str) -> tuple[np.ndarray, int]:
    """(the image's features, the seed its random mask is drawn from): test row ``image``, or the
    atlas item ``"<source>:<item>"`` (``inference.atlas.atlas_item``; a source the server does not
    offer this model is refused there)."""
    from vizvae.checkpoint import checkpoint_dataset

    dataset = checkpoint_dataset(checkpoint.config)
    if not isinstance(image, str):
        return np.asarray(dataset.x_test[int(image)], dtype=np.float32), int(image)
    from vizvae.inference.atlas import atlas_item, server_files
    from vizvae.server import data_dirs

    key, _, item = image.rpartition(":")
    if not item.isdigit():
        raise VizvaeError(f"not an atlas item: {image!r}")
    x = atlas_item(key, int(item), dataset.name, tuple(dataset.image_shape), server_files(data_dirs()))
    return x, int(item)


def posterior_target(checkpoint: Any, image: int | str, mask_spec: MaskSpec) -> PosteriorTarget:
    """Image ``image`` (``posterior_row``) of the checkpoint's data under the mask ``mask_spec``."""
    from vizvae.checkpoint import checkpoint_dataset
    from vizvae.data.masks import image_mask

    dataset = checkpoint_dataset(checkpoint.config)
    x, mask_seed = posterior_row(checkpoint, image)
    kind, half, rate = mask_spec
    mask = image_mask(kind, tuple(dataset.image_shape[1:]), seed=mask_seed, hidden_half=half, missing_rate=rate)
    return PosteriorTarget.from_row(checkpoint.model, x, mask)


def _np(tensor: torch.Tensor) -> np.ndarray:
    return tensor.detach().cpu().numpy()


def chains_to_arrays(chains: PosteriorChains) -> dict[str, np.ndarray]:
    result = chains.result
    arrays = {f"state_{name}": _np(value) for name, value in result.state._asdict().items()}
    arrays.update({name: _np(getattr(result, name)) for name in
                   ("acceptance_probs", "is_accepted", "divergences", "energies", "energy_errors", "chain")})
    arrays.update(encoder_mean=_np(chains.encoder.mean), encoder_std=_np(chains.encoder.std),
                  proposal_mean=_np(chains.proposal.mean), proposal_std=_np(chains.proposal.std),
                  step_sizes=_np(chains.step_sizes), trained=np.array(chains.trained),
                  n_leapfrog=np.array(chains.n_leapfrog))
    return arrays


def chains_from_arrays(arrays: dict[str, np.ndarray]) -> PosteriorChains:
    t = {name: torch.from_numpy(np.asarray(value)) for name, value in arrays.items()}
    state = HMCState(t["state_position"], t["state_logdensity"], t["state_grad"])
    result = HMCResult(state, t["acceptance_probs"], t["is_accepted"], t["divergences"], t["energies"],
                       t["energy_errors"], t["chain"])
    return PosteriorChains(result, DiagonalGaussian(t["encoder_mean"], t["encoder_std"]),
                           DiagonalGaussian(t["proposal_mean"], t["proposal_std"]), t["step_sizes"],
                           bool(arrays["trained"]), int(arrays["n_leapfrog"]))


def grid_to_arrays(grid: PosteriorGrid) -> dict[str, np.ndarray]:
    return {"z1": grid.z1, "z2": grid.z2, "log_joint": grid.log_joint, "log_evidence": np.array(grid.log_evidence),
            "limits": np.asarray(grid.limits, dtype=np.float64)}


def grid_from_arrays(arrays: dict[str, np.ndarray]) -> PosteriorGrid:
    (a, b), (c, d) = arrays["limits"].tolist()
    return PosteriorGrid(arrays["z1"], arrays["z2"], arrays["log_joint"], float(arrays["log_evidence"]),
                         ((a, b), (c, d)))


def diagnostics_to_arrays(diagnostics: ChainDiagnostics) -> dict[str, np.ndarray]:
    return {"acceptance": diagnostics.acceptance, "divergences": diagnostics.divergences, "ess": diagnostics.ess,
            "rhat": diagnostics.rhat, "n_draws": np.array(diagnostics.n_draws),
            "mean_log_joint": np.array(diagnostics.mean_log_joint)}


def diagnostics_from_arrays(arrays: dict[str, np.ndarray]) -> ChainDiagnostics:
    return ChainDiagnostics(arrays["acceptance"], arrays["divergences"], arrays["ess"], arrays["rhat"],
                            int(arrays["n_draws"]), float(arrays["mean_log_joint"]))


_GAP_FLOATS = ("log_evidence", "elbo_encoder", "elbo_best", "iwae_ess")
_GAP_OPTIONAL = ("hmc_iwae", "log_evidence_quadrature", "hmc_ess", "iwae_se", "hmc_iwae_se")  # when not None


def gaps_to_arrays(gaps: PosteriorGaps) -> dict[str, np.ndarray]:
    arrays = {name: np.array(getattr(gaps, name)) for name in _GAP_FLOATS}
    arrays.update(log_evidence_source=np.array(gaps.log_evidence_source), best_mean=_np(gaps.best.mean),
                  best_std=_np(gaps.best.std), elbo_history=np.asarray(gaps.elbo_history), ks=np.asarray(gaps.ks),
                  iwae=np.asarray(gaps.iwae))
    arrays.update({name: np.asarray(getattr(gaps, name)) for name in _GAP_OPTIONAL if getattr(gaps, name) is not None})
    return arrays


def gaps_from_arrays(arrays: dict[str, np.ndarray]) -> PosteriorGaps:
    optional = {name: arrays.get(name) for name in _GAP_OPTIONAL}
    for name in ("log_evidence_quadrature", "hmc_ess"):
        optional[name] = None if optional[name] is None else float(optional[name])
    return PosteriorGaps(
        **{name: float(arrays[name]) for name in _GAP_FLOATS}, log_evidence_source=str(arrays["log_evidence_source"]),
        best=DiagonalGaussian(torch.from_numpy(arrays["best_mean"]), torch.from_numpy(arrays["best_std"])),
        elbo_history=arrays["elbo_history"], ks=arrays["ks"], iwae=arrays["iwae"], **optional)


# -- read, else compute and store ---------------------------------------------------------------------------------
_KINDS = {  # name in the cache -> (to arrays, from arrays)
    "posterior-chains": (chains_to_arrays, chains_from_arrays),
    "posterior-diagnostics": (diagnostics_to_arrays, diagnostics_from_arrays),
    "posterior-grid": (grid_to_arrays, grid_from_arrays),
    "posterior-gaps": (gaps_to_arrays, gaps_from_arrays),
}


def cached_posterior_result(kind: str, folder: str | Path | None, params: dict[str, Any], compute: Callable[[], Any],
                            precomputed: bool = False) -> tuple[Any, bool]:
    """(result, read from a file?) for ``kind`` in ``_KINDS``: stored, else ``compute()`` and stored."""
    to_arrays, from_arrays = _KINDS[kind]
    computed: list[Any] = []

    def compute_arrays() -> dict[str, np.ndarray]:
        computed.append(compute())
        return to_arrays(computed[0])

    arrays, from_cache = cache.cached_arrays(folder, kind, params, compute_arrays, precomputed=precomputed)
    return (computed[0] if computed else from_arrays(arrays)), from_cache


def store_default_posterior(checkpoint: Any, image: int, mask_spec: MaskSpec, seed: int, n_chains: int,
                            scale: float) -> list[Path]:
    """The builder's copy of one Posterior view: chains, diagnostics, grid (2-D) and gaps."""
    from vizvae.inference.gaps import posterior_gaps
    from vizvae.inference.posterior import chain_diagnostics, posterior_chains, posterior_grid

    folder = checkpoint.path
    target = posterior_target(checkpoint, image, mask_spec)
    view = posterior_params(image, mask_spec, seed, n_chains, scale)
    chains, _ = cached_posterior_result("posterior-chains", folder, view, lambda: posterior_chains(
        target, n_chains=n_chains, seed=seed, step_size_scale=scale), precomputed=True)
    cached_posterior_result("posterior-diagnostics", folder, view, lambda: chain_diagnostics(chains.result),
                            precomputed=True)
    written = [("posterior-chains", view), ("posterior-diagnostics", view)]
    quadrature = None
    if target.latent_dim == 2:
        grid_params = posterior_params(image, mask_spec)
        grid, _ = cached_posterior_result("posterior-grid", folder, grid_params, lambda: posterior_grid(target),
                                          precomputed=True)
        quadrature = grid.log_evidence
        written.append(("posterior-grid", grid_params))
    cached_posterior_result("posterior-gaps", folder, view, lambda: posterior_gaps(
        target, hmc_samples=chains.samples, log_evidence_quadrature=quadrature, seed=seed), precomputed=True)
    written.append(("posterior-gaps", view))
    return [cache.stored_result(folder, name, params) for name, params in written]
