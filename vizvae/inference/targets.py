"""Toy targets for HMC: the 2-D densities of Fig. 5.7, a banana, and a diagonal Gaussian with known moments.

Each target is an unnormalised log-density ``(..., 2) -> (...)``, log p*(z) = −U(z), batched over
leading dimensions, usable as ``logdensity_fn`` in :mod:`vizvae.kernels.hmc`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch
from torch import Tensor

__all__ = [
    "wave_logdensity",
    "dual_moon_logdensity",
    "banana_logdensity",
    "BANANA_LOG_NORMALISER",
    "gaussian_logdensity",
    "ToyTarget",
    "TOY_TARGETS",
    "grid_logdensity",
    "grid_log_normaliser",
    "trapezoid_log_integral",
]

WAVE_WIDTH = 0.4  # σ of z_2 around the sine
WAVE_Z1_SCALE = 4.0  # broad N(0, 4²) factor on z_1 that makes the wave proper
MOON_RADIUS = 2.0
MOON_WIDTH = 0.4
MOON_MODE_WIDTH = 0.6
BANANA_Z1_SCALE = 1.25  # σ_1 of z_1 ~ N(0, σ_1²)
BANANA_WIDTH = 0.5  # σ_2 of z_2 around the parabola
BANANA_CURVATURE = 0.5  # b in z_2 | z_1 ~ N(b(z_1² − σ_1²), σ_2²)
# the twist (z_1, z_2) -> (z_1, z_2 − b(z_1² − σ_1²)) has Jacobian 1, so Z is the Gaussian's 2πσ_1σ_2
BANANA_LOG_NORMALISER = math.log(2 * math.pi * BANANA_Z1_SCALE * BANANA_WIDTH)


def wave_logdensity(z: Tensor) -> Tensor:
    """The "wave": U(z) = ½[(z_2 − sin(πz_1/2))/0.4]² + ½(z_1/4)²  (Fig. 5.7, top row).

    The thesis' U alone is flat along z_1 and so improper; the N(0, 4²) factor on z_1 makes the
    normaliser finite, Z = (0.4·√(2π))·(4·√(2π)) = 3.2π, while one standard deviation still
    spans two periods of the sine.
    """
    z1, z2 = z[..., 0], z[..., 1]
    wave = 0.5 * ((z2 - torch.sin(0.5 * math.pi * z1)) / WAVE_WIDTH).square()
    broad = 0.5 * (z1 / WAVE_Z1_SCALE).square()
    return -(wave + broad)


def dual_moon_logdensity(z: Tensor) -> Tensor:
    """The "dual moon":

        U(z) = ½((‖z‖ − 2)/0.4)² − log(e^{−½((z_1−2)/0.6)²} + e^{−½((z_1+2)/0.6)²}).

    A ring of radius 2 whose mass concentrates near (±2, 0) (Fig. 5.7, bottom row).
    """
    z1 = z[..., 0]
    radius = torch.linalg.vector_norm(z, dim=-1)
    ring = 0.5 * ((radius - MOON_RADIUS) / MOON_WIDTH).square()
    modes = torch.logaddexp(
        -0.5 * ((z1 - MOON_RADIUS) / MOON_MODE_WIDTH).square(),
        -0.5 * ((z1 + MOON_RADIUS) / MOON_MODE_WIDTH).square(),
    )
    return -(ring - modes)


def banana_logdensity(z: Tensor) -> Tensor:
    """The "banana" (twisted Gaussian, Haario et al. 1999):

        U(z) = ½(z_1/1.25)² + ½[(z_2 − 0.5(z_1² − 1.25²))/0.5]²,

    i.e. z_1 ~ N(0, 1.25²) and z_2 | z_1 ~ N(0.5(z_1² − 1.25²), 0.5²). A curved ridge whose local
    scale changes along it, so one step size per dimension fits it nowhere exactly. Known answers:
    Z = 2π·1.25·0.5 (``BANANA_LOG_NORMALISER``), E[z] = 0, Var z_1 = 1.25², Var z_2 = 0.5² + 2·0.5²·1.25⁴.
    """
    z1, z2 = z[..., 0], z[..., 1]
    parabola = BANANA_CURVATURE * (z1.square() - BANANA_Z1_SCALE**2)
    return -0.5 * ((z1 / BANANA_Z1_SCALE).square() + ((z2 - parabola) / BANANA_WIDTH).square())


def gaussian_logdensity(mean: Tensor, std: Tensor) -> Callable[[Tensor], Tensor]:
    """Normalised log N(z; mean, diag(std²)) as a closure ``(..., dim) -> (...)``.

    The target with known answers: its moments test that HMC leaves it invariant, and its score
    −(z − mean)/std² tests SKSD.
    """
    mean = torch.as_tensor(mean)
    std = torch.as_tensor(std)

    def logdensity(z: Tensor) -> Tensor:
        m = mean.to(device=z.device, dtype=z.dtype)
        s = std.to(device=z.device, dtype=z.dtype)
        standardised = (z - m) / s
        per_dim = -0.5 * standardised.square() - torch.log(s) - 0.5 * math.log(2 * math.pi)
        return per_dim.sum(-1)

    return logdensity


@dataclass(frozen=True)
class ToyTarget:
    """A named 2-D target with the box that holds (almost) all of its mass, for plotting, and where
    a deliberately tight initial proposal sits (Fig. 5.7's starting point: on the mass, but narrow)."""

    name: str
    logdensity: Callable[[Tensor], Tensor]
    limits: tuple[tuple[float, float], tuple[float, float]]  # ((z1_min, z1_max), (z2_min, z2_max))
    start: tuple[float, float] = (0.0, 0.0)


TOY_TARGETS: dict[str, ToyTarget] = {
    "wave": ToyTarget("wave", wave_logdensity, ((-16.0, 16.0), (-3.5, 3.5))),
    "dual_moon": ToyTarget("dual_moon", dual_moon_logdensity, ((-4.0, 4.0), (-4.0, 4.0)), start=(2.0, 0.0)),
    "banana": ToyTarget("banana", banana_logdensity, ((-5.0, 5.0), (-2.5, 11.0)), start=(0.0, -0.75)),
}


def grid_logdensity(
    logdensity_fn: Callable[[Tensor], Tensor],
    limits: tuple[tuple[float, float], tuple[float, float]],
    n_points: int = 200,
    dtype: torch.dtype = torch.float64,
) -> tuple[Tensor, Tensor, Tensor]:
    """log p* on a regular grid: returns ``(z1 (n,), z2 (n,), logdensity (n, n))``.

    ``logdensity[i, j]`` is at ``(z1[j], z2[i])`` — rows are z_2, as contour plots expect.
    """
    (z1_min, z1_max), (z2_min, z2_max) = limits
    z1 = torch.linspace(z1_min, z1_max, n_points, dtype=dtype)
    z2 = torch.linspace(z2_min, z2_max, n_points, dtype=dtype)
    grid_z2, grid_z1 = torch.meshgrid(z2, z1, indexing="ij")
    points = torch.stack([grid_z1, grid_z2], dim=-1)  # (n, n, 2)
    return z1, z2, logdensity_fn(points)


def grid_log_normaliser(
    logdensity_fn: Callable[[Tensor], Tensor],
    limits: tuple[tuple[float, float], tuple[float, float]],
    n_points: int = 400,
) -> Tensor:
    """log Z = log ∫∫ exp(log p*) by the trapezoidal rule on a grid (float64, log-sum-exp safe)."""
    return trapezoid_log_integral(*grid_logdensity(logdensity_fn, limits, n_points))


def trapezoid_log_integral(z1: Tensor, z2: Tensor, logdensity: Tensor) -> Tensor:
    """log ∫∫ exp(logdensity) over the grid of ``grid_logdensity`` (rows z_2), trapezoidal rule.

    For a smooth density whose mass lies well inside the grid the rule converges faster than any
    power of the spacing, so a grid of ~10 points per standard deviation is exact to ~1e-6.
    """
    weights_1 = torch.full_like(z1, float(z1[1] - z1[0]))
    weights_1[[0, -1]] *= 0.5
    weights_2 = torch.full_like(z2, float(z2[1] - z2[0]))
    weights_2[[0, -1]] *= 0.5
    log_weights = torch.log(weights_2)[:, None] + torch.log(weights_1)[None, :]
    return torch.logsumexp((logdensity + log_weights).flatten(), dim=0)
