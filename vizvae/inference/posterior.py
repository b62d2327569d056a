"""The posterior of one data point, p(z | x_O) ∝ p(x_O, z), three ways (thesis Fig. 5.1b, §5.1.3):
the encoder Gaussian q_φ(z | x_O), HMC chains started at its inflated version, and — for 2-D
latents — the exact density on a grid, normalised by quadrature.

* ``PosteriorTarget``: one image (and its mask) bound to a model: ``log_joint(z)`` is the
  unnormalised log posterior, batched over any leading dimensions of z, and the HMC target;
* ``posterior_chains``: HMC with the model's own trained step sizes and inflation (HMC-VAE,
  HH-VAE), or — for a model trained without HMC — the default initial step sizes
  U(0.02, 0.05) (authors' code) from the plain encoder Gaussian, optionally rescaled;
* ``posterior_grid``: log p(x_O, z) on a 2-D grid that zooms in on the mass, and log p(x_O) by the
  trapezoidal rule — exact up to quadrature error, the reference the bounds of ``gaps`` are
  measured against;
* ``chain_diagnostics``: acceptance and divergences per transition, and ESS and R-hat across the
  chains by ArviZ;
* ``principal_axes`` / ``coordinate_axes`` / ``project``: 2-D views of a higher-dimensional
  posterior (chains and Gaussians), for plotting.

Everything returns tensors or NumPy arrays; figures live in ``vizvae.viz.posterior``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from vizvae.inference.targets import grid_logdensity, trapezoid_log_integral
from vizvae.kernels.adapt import WarmupSettings, warmup
from vizvae.kernels.hmc import HMCHyperparameters, HMCResult
from vizvae.kernels.pca import principal_components
from vizvae.models.capabilities import TunedHMCModel
from vizvae.models.distributions import DiagonalGaussian

Limits = tuple[tuple[float, float], tuple[float, float]]

__all__ = [
    "PosteriorTarget",
    "PosteriorChains",
    "posterior_chains",
    "trained_hmc",
    "PosteriorGrid",
    "unvisited_mass",
    "grid_log_joint",
    "posterior_grid",
    "ChainDiagnostics",
    "chain_diagnostics",
    "ess_and_rhat",
    "PlaneView",
    "principal_axes",
    "coordinate_axes",
    "gaussian_in_view",
    "plane_limits",
]


# -- one data point's posterior --------------------------------------------------------------------------
@dataclass
class PosteriorTarget:
    """p(z | x_O) of one row: ``x`` (features,), ``mask`` (features,) bool (True = observed) or None.

    ``log_joint`` works for every model of the shared interface: the model's ``log_joint`` broadcasts
    a single row against latents of any leading shape, ``(..., latent) -> (...)``.
    """

    model: Any  # LatentVariableModel
    x: Tensor
    mask: Tensor | None = None

    @classmethod
    def from_row(cls, model: Any, x: np.ndarray | Tensor, mask: np.ndarray | Tensor | None = None) -> "PosteriorTarget":
        device, dtype = model.device, next(model.parameters()).dtype
        x_t = torch.as_tensor(np.asarray(x), device=device, dtype=dtype)
        mask_t = None if mask is None else torch.as_tensor(np.asarray(mask, dtype=bool), device=device)
        return cls(model, x_t, mask_t)

    @property
    def latent_dim(self) -> int:
        return int(self.model.latent_dim)

    @property
    def device(self) -> torch.device:
        return self.x.device

    def _rows(self) -> tuple[Tensor, Tensor | None]:
        return self.x[None], None if self.mask is None else self.mask[None]

    @torch.no_grad()
    def encoder_posterior(self) -> DiagonalGaussian:
        """q_φ(z | x_O): mean and std of shape (latent,)."""
        x, mask = self._rows()
        posterior = self.model.encode(x, mask)
        return DiagonalGaussian(posterior.mean[0], posterior.std[0])

    def log_joint(self, z: Tensor) -> Tensor:
        """log p(x_O, z) = log p(x_O | z) + log p(z): ``(..., latent) -> (...)`` (differentiable in z)."""
        return self.model.log_joint(self.x, self.mask, z)

    @torch.no_grad()
    def decoded_means(self, z: Tensor) -> Tensor:
        """Decoder means of latents ``(..., latent)`` -> ``(..., features)``."""
        return self.model.decode(z).mean


# -- HMC --------------------------------------------------------------------------------------------------
def trained_hmc(model: Any) -> HMCHyperparameters | None:
    """The model's own trained HMC hyper-parameters (HMC-VAE, HH-VAE), or None."""
    return model.hmc if isinstance(model, TunedHMCModel) else None


@dataclass
class PosteriorChains:
    """HMC chains on one row's posterior; ``result`` has no batch dimension: chain (T+1, chains,
    latent), acceptance_probs / divergences (T, chains)."""

    result: HMCResult
    encoder: DiagonalGaussian  # q_φ(z | x_O), (latent,)
    proposal: DiagonalGaussian  # the initial proposal N(μ, s·σ), (latent,)
    step_sizes: Tensor  # (T, latent), as used
    trained: bool  # the model's own trained step sizes and inflation (before any rescaling)
    n_leapfrog: int

    @property
    def samples(self) -> Tensor:
        return self.result.samples  # (chains, latent), draws from q^(T)

    @property
    def chain(self) -> Tensor:
        assert self.result.chain is not None
        return self.result.chain  # (T+1, chains, latent)


def _first_row(result: HMCResult) -> HMCResult:
    """Drop the batch dimension of a one-row run: (..., 1, chains, ·) -> (..., chains, ·)."""
    state = type(result.state)(*(t[0] for t in result.state))
    return HMCResult(
        state=state,
        acceptance_probs=result.acceptance_probs[:, 0],
        is_accepted=result.is_accepted[:, 0],
        divergences=result.divergences[:, 0],
        energies=result.energies[:, 0],
        energy_errors=result.energy_errors[:, 0],
        chain=None if result.chain is None else result.chain[:, 0],
    )


WARMUP_CHAINS = 50


def adapted_step_sizes(target: PosteriorTarget, n_transitions: int, n_leapfrog: int, seed: int) -> Tensor:
    """Step sizes (T, latent) for a model nobody tuned: ``WARMUP_CHAINS`` chains from the encoder
    Gaussian run a warm-up (``kernels.adapt``: dual averaging to acceptance 0.65, a Welford diagonal
    mass started at the encoder's σ²) that is then discarded. A step ε with mass M moves the positions
    exactly as per-dimension steps ε/√M_d with a unit mass, so the kernel is returned in that form,
    jittered by U(0.5, 1.5) per transition (shared by the chains, so that the shown chains step
    together): at the adapted ε, LF steps of a near-Gaussian posterior span close to a whole period,
    and a fixed length would return every chain near its start. Reproducible from ``seed``."""
    generator = torch.Generator(device=target.device).manual_seed(int(seed) + 7919)
    encoder = target.encoder_posterior()
    noise = torch.randn((1, WARMUP_CHAINS, target.latent_dim), generator=generator, device=target.device,
                        dtype=encoder.mean.dtype)
    start = encoder.mean + encoder.std * noise  # (1, chains, latent)
    warm = warmup(target.log_joint, start, n_leapfrog, WarmupSettings(), initial_step_size=0.5,
                  generator=generator, initial_inverse_mass=encoder.std.square())
    per_dimension = (warm.step_size * warm.inverse_mass.sqrt()).reshape(1, target.latent_dim)
    jitter = 0.5 + torch.rand((n_transitions, 1), generator=generator, device=target.device, dtype=per_dimension.dtype)
    return per_dimension * jitter


def posterior_chains(
    target: PosteriorTarget,
    n_chains: int = 50,
    seed: int = 0,
    step_size_scale: float = 1.0,
    n_transitions: int = 10,
    n_leapfrog: int = 5,
) -> PosteriorChains:
    """``n_chains`` HMC chains on p(z | x_O), every state recorded, reproducible from ``seed``.

    A model with trained HMC (it owns ``hmc``) uses its step sizes φ (T, latent), its inflation and
    its T and LF, through its own ``posterior_samples`` (§5.2.5). Any other model is adapted first
    (``adapted_step_sizes``: a discarded warm-up of dual averaging and a diagonal mass), and the
    chains shown start again at the encoder Gaussian itself (inflation 1) with those step sizes, for
    ``n_transitions`` × ``n_leapfrog``. ``step_size_scale`` multiplies φ either way, to see what too
    small or too large steps do (acceptance, divergences).
    """
    model = target.model
    generator = torch.Generator(device=target.device).manual_seed(int(seed))
    encoder = target.encoder_posterior()
    hyper = trained_hmc(model)
    x, mask = target._rows()
    if hyper is not None and step_size_scale == 1.0:
        result = _first_row(model.posterior_samples(x, mask, n_chains=n_chains, generator=generator,
                                                    record_chain=True))
        step_sizes = hyper.step_sizes.detach()
        inflation = hyper.inflation_per_dim().detach()
        return PosteriorChains(result, encoder, DiagonalGaussian(encoder.mean, encoder.std * inflation), step_sizes,
                               True, hyper.n_leapfrog)
    if hyper is not None:
        base_steps = hyper.step_sizes.detach()
        layers, inflation, n_leapfrog = hyper.layer_slices, hyper.inflation.detach(), hyper.n_leapfrog
    else:
        base_steps = adapted_step_sizes(target, n_transitions, n_leapfrog, seed)
        layers, inflation = None, 1.0
    sampler = HMCHyperparameters(target.latent_dim, base_steps.shape[0], n_leapfrog, layer_slices=layers,
                                 step_sizes=(base_steps * step_size_scale).to(target.device), inflation=inflation)
    sampler.to(device=target.device, dtype=encoder.mean.dtype)
    with torch.no_grad():
        proposal_std = encoder.std * sampler.inflation_per_dim()
    result = sampler.sample(target.log_joint, encoder.mean[None], encoder.std[None], n_chains, generator=generator,
                            record_chain=True)
    return PosteriorChains(_first_row(result), encoder, DiagonalGaussian(encoder.mean, proposal_std),
                           sampler.step_sizes.detach(), hyper is not None, n_leapfrog)


# -- the exact posterior of a 2-D latent ----------------------------------------------------------------------
@torch.no_grad()
def grid_log_joint(target: PosteriorTarget, limits: Limits, n_points: int = 81,
                   chunk: int = 4096) -> tuple[Tensor, Tensor, Tensor]:
    """log p(x_O, z) on an n×n grid of a 2-D latent: ``(z1 (n,), z2 (n,), values (n, n))`` float64,
    rows z_2 (as ``targets.grid_logdensity``). Evaluated in the model's dtype, ``chunk`` points at a time."""
    if target.latent_dim != 2:
        raise ValueError(f"a grid needs a 2-D latent, this model has {target.latent_dim}")
    dtype = target.x.dtype

    def logdensity(points: Tensor) -> Tensor:  # (n, n, 2) float64 -> (n, n) float64
        flat = points.reshape(-1, 2).to(device=target.device, dtype=dtype)
        values = torch.cat([target.log_joint(flat[i:i + chunk]) for i in range(0, len(flat), chunk)])
        return values.to(device="cpu", dtype=torch.float64).reshape(points.shape[:-1])

    return grid_logdensity(logdensity, limits, n_points)


@dataclass
class PosteriorGrid:
    """log p(x_O, z) on a grid and log p(x_O) = log ∫ p(x_O, z) dz by quadrature."""

    z1: np.ndarray  # (n,)
    z2: np.ndarray  # (n,)
    log_joint: np.ndarray  # (n, n), rows z_2
    log_evidence: float  # log p(x_O)
    limits: Limits

    @property
    def log_posterior(self) -> np.ndarray:
        """log p(z | x_O) on the grid, normalised: (n, n)."""
        return self.log_joint - self.log_evidence

    def mass_limits(self, depth: float = 6.0) -> Limits:
        """The box of grid cells within ``depth`` nats of the posterior's maximum (6 nats ≈ 3.5σ for
        a Gaussian): what a figure should show of it."""
        return _mass_box(torch.from_numpy(self.z1), torch.from_numpy(self.z2), torch.from_numpy(self.log_joint), depth)

    def marginals(self) -> tuple[np.ndarray, np.ndarray]:
        """p(z_1 | x_O) on ``z1`` and p(z_2 | x_O) on ``z2`` (densities, trapezoidal sums)."""
        density = np.exp(self.log_posterior)
        dz1, dz2 = self.z1[1] - self.z1[0], self.z2[1] - self.z2[0]
        return density.sum(0) * dz2, density.sum(1) * dz1


def unvisited_mass(grid: PosteriorGrid, states: np.ndarray, bins: int = 8) -> float:
    """The exact posterior mass (0..1) in the parts of a 2-D posterior no chain state visited: the box
    of ``grid.mass_limits()`` is cut into ``bins`` × ``bins`` cells, and the grid's posterior mass of
    every cell that holds none of ``states`` (n, 2) is summed (mass outside the box counts as
    visited: it is below e^{−6} of the peak). A mode the chains never reached shows as its mass here."""
    (low1, high1), (low2, high2) = grid.mass_limits()
    edges1, edges2 = np.linspace(low1, high1, bins + 1), np.linspace(low2, high2, bins + 1)
    states = np.asarray(states, dtype=float).reshape(-1, 2)
    visits, _, _ = np.histogram2d(states[:, 0], states[:, 1], bins=(edges1, edges2))
    dz1, dz2 = grid.z1[1] - grid.z1[0], grid.z2[1] - grid.z2[0]
    mass = np.exp(grid.log_posterior) * dz1 * dz2  # (n2, n1): rows z_2
    g1, g2 = np.meshgrid(grid.z1, grid.z2)  # (n2, n1) each
    inside = (g1 >= low1) & (g1 < high1) & (g2 >= low2) & (g2 < high2)
    cell1 = np.clip(np.searchsorted(edges1, g1, side="right") - 1, 0, bins - 1)
    cell2 = np.clip(np.searchsorted(edges2, g2, side="right") - 1, 0, bins - 1)
    unvisited = inside & (visits[cell1, cell2] == 0)
    return float(min(1.0, mass[unvisited].sum()))


def _mass_box(z1: Tensor, z2: Tensor, values: Tensor, depth: float) -> Limits:
    """The box around the grid cells within ``depth`` nats of the maximum, padded by one cell."""
    rows, cols = torch.nonzero(values >= values.max() - depth, as_tuple=True)
    d1, d2 = float(z1[1] - z1[0]), float(z2[1] - z2[0])
    return ((float(z1[cols.min()]) - d1, float(z1[cols.max()]) + d1),
            (float(z2[rows.min()]) - d2, float(z2[rows.max()]) + d2))


def posterior_grid(target: PosteriorTarget, n_points: int = 81, rounds: int = 3, depth: float = 30.0,
                   limits: Limits | None = None, n_coarse: int = 41) -> PosteriorGrid:
    """The exact posterior of a 2-D latent: log p(x_O, z) on a grid, log p(x_O) by quadrature.

    The first grid covers the prior's [−6, 6]² and the encoder's ±8σ (``limits`` overrides it);
    each further round re-grids the box of cells within ``depth`` nats of the maximum (plus one
    cell), so a posterior far narrower than the first grid's spacing is still resolved: e^{−30} of
    the peak is below any mass that matters. The rounds that only find the box use ``n_coarse``
    points a side; the last uses ``n_points`` over that box. For a round posterior this is several
    points on each standard deviation, where the trapezoidal rule is exact to ~1e-5 nats; a ridge
    (a posterior much narrower across than along) gets fewer across it — 0.84 points per sd was
    seen, with log p(x_O) off by up to 0.011 nats — so raise ``n_points`` where that matters.
    """
    if limits is None:
        encoder = target.encoder_posterior()
        mean, std = encoder.mean.double().cpu(), encoder.std.double().cpu()
        low = torch.minimum(mean - 8 * std, torch.full_like(mean, -6.0))
        high = torch.maximum(mean + 8 * std, torch.full_like(mean, 6.0))
        limits = ((float(low[0]), float(high[0])), (float(low[1]), float(high[1])))
    box = limits
    z1, z2, values = grid_log_joint(target, box, n_coarse if rounds > 1 else n_points)
    for round_ in range(1, rounds):
        box = _mass_box(z1, z2, values, depth)
        z1, z2, values = grid_log_joint(target, box, n_points if round_ == rounds - 1 else n_coarse)
    log_evidence = float(trapezoid_log_integral(z1, z2, values))
    return PosteriorGrid(z1.numpy(), z2.numpy(), values.numpy(), log_evidence, box)


# -- chain diagnostics -------------------------------------------------------------------------------------
def ess_and_rhat(draws: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Bulk ESS and rank-normalised split R-hat (Vehtari et al. 2021) per dimension, by ArviZ.

    ``draws``: (chains, draws, dim). ArviZ is imported here, not at module level: it takes seconds
    to import and only this diagnostic needs it.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ArviZ announces its refactor with a FutureWarning on import
        import arviz

        dataset = arviz.convert_to_dataset({"z": np.asarray(draws, dtype=np.float64)})
        ess = np.asarray(arviz.ess(dataset, method="bulk")["z"], dtype=np.float64)
        rhat = np.asarray(arviz.rhat(dataset)["z"], dtype=np.float64)
    return ess, rhat


@dataclass
class ChainDiagnostics:
    """What a person diagnosing the chains wants (all NumPy)."""

    acceptance: np.ndarray  # (T, chains) acceptance probability of each transition
    divergences: np.ndarray  # (T, chains) bool
    ess: np.ndarray  # (dim,) bulk ESS over chains × T draws
    rhat: np.ndarray  # (dim,)
    n_draws: int  # chains × T: the ESS of independent draws
    mean_log_joint: float  # E_{q^(T)} log p(x_O, z_T): the HMC objective (eq. 5.9) at the final states

    @property
    def mean_acceptance(self) -> np.ndarray:
        return self.acceptance.mean(1)  # (T,)

    @property
    def n_divergences(self) -> int:
        return int(self.divergences.sum())


def chain_diagnostics(result: HMCResult) -> ChainDiagnostics:
    """Per-transition acceptance and divergences, and ESS / R-hat of the states after each of the
    T transitions (the start, a draw from the proposal, is left out) across the chains.

    The chains are short (T ≈ 10) and start from the proposal, not the posterior, so R-hat well
    above 1 says the chains still remember where they started — the proposal is not yet the
    posterior — rather than a failure to mix in the usual long-run sense.
    """
    if result.chain is None:
        raise ValueError("chain diagnostics need the whole chain: sample with record_chain=True")
    draws = result.chain[1:].detach().cpu().double().numpy()  # (T, chains, dim)
    ess, rhat = ess_and_rhat(draws.transpose(1, 0, 2))
    return ChainDiagnostics(
        acceptance=result.acceptance_probs.detach().cpu().double().numpy(),
        divergences=result.divergences.detach().cpu().numpy(),
        ess=ess,
        rhat=rhat,
        n_draws=int(draws.shape[0] * draws.shape[1]),
        mean_log_joint=float(result.state.logdensity.detach().double().mean()),
    )


# -- 2-D views of a higher-dimensional posterior ------------------------------------------------------------
@dataclass
class PlaneView:
    """An affine map from the latent space onto a plane: u = axes (z − centre)."""

    centre: np.ndarray  # (dim,)
    axes: np.ndarray  # (2, dim), orthonormal rows
    titles: tuple[str, str]

    def project(self, z: np.ndarray | Tensor) -> np.ndarray:
        """(..., dim) -> (..., 2)."""
        z = z.detach().cpu().numpy() if isinstance(z, Tensor) else np.asarray(z)
        return (z - self.centre) @ self.axes.T


def coordinate_axes(dim: int, first: int, second: int) -> PlaneView:
    """The plane of two latent coordinates, (z_first, z_second)."""
    axes = np.zeros((2, dim))
    axes[0, first], axes[1, second] = 1.0, 1.0
    return PlaneView(np.zeros(dim), axes, (f"z{first}", f"z{second}"))


def principal_axes(samples: np.ndarray | Tensor) -> tuple[PlaneView, np.ndarray]:
    """The top two principal axes of samples (n, dim) through their mean, and the fraction of the
    total variance each explains (2,). The sign of each axis is fixed (largest entry positive) so
    the view does not flip between reruns."""
    samples = samples.detach().cpu().double().numpy() if isinstance(samples, Tensor) else np.asarray(samples, float)
    components = principal_components(samples, 2)
    view = PlaneView(components.centre, components.axes, ("PC1 of the HMC samples", "PC2 of the HMC samples"))
    return view, components.explained_variance_ratio


def gaussian_in_view(view: PlaneView, mean: np.ndarray | Tensor,
                     std: np.ndarray | Tensor) -> tuple[np.ndarray, np.ndarray]:
    """N(mean, diag(std²)) seen in the plane: (mean (2,), covariance (2, 2))."""
    mean = mean.detach().cpu().double().numpy() if isinstance(mean, Tensor) else np.asarray(mean, float)
    std = std.detach().cpu().double().numpy() if isinstance(std, Tensor) else np.asarray(std, float)
    return view.project(mean), (view.axes * std**2) @ view.axes.T


def plane_limits(points: np.ndarray, gaussians: list[tuple[np.ndarray, np.ndarray]] = (), radius: float = 2.5,
                 pad: float = 0.08) -> Limits:
    """A box holding points (..., 2) and the ``radius``-σ ellipses of 2-D Gaussians (mean, cov),
    padded by ``pad`` of its size: fixed axes for a chain animation."""
    points = np.asarray(points, dtype=float).reshape(-1, 2)
    lows, highs = [points.min(0)], [points.max(0)]
    for mean, covariance in gaussians:
        half = radius * np.sqrt(np.clip(np.diag(covariance), 0.0, None))
        lows.append(mean - half)
        highs.append(mean + half)
    low, high = np.min(lows, 0), np.max(highs, 0)
    margin = pad * np.maximum(high - low, 1e-3)
    low, high = low - margin, high + margin
    return ((float(low[0]), float(high[0])), (float(low[1]), float(high[1])))
