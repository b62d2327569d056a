"""Latent-space quantities for looking inside a trained model (SPEC §1.1): the encoded data
set, the KL each latent dimension carries, traversals, interpolations and the decoded manifold
of a 2-D latent plane.

Everything is pure torch on the model's shared interface (``encode``, ``decode``), so it works
for every model with a flat Gaussian latent. Decoding is always one batched call under
``torch.inference_mode``: a 10×10 traversal grid is one (100, latent) forward pass.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from vizvae.models.distributions import DiagonalGaussian


@dataclass
class EncodedData:
    """The encoder posterior q(z | x) of every row of a data set, as arrays."""

    mean: np.ndarray  # (n, latent) float32
    std: np.ndarray  # (n, latent) float32
    kl_per_dimension: np.ndarray  # (n, latent) KL(q(z_j | x) || N(0, 1)) per row and dimension

    @property
    def average_kl(self) -> np.ndarray:
        """(latent,) KL per dimension averaged over the data set: how much each dimension is used."""
        return self.kl_per_dimension.mean(0)


@torch.inference_mode()
def encode_dataset(model, x: np.ndarray | torch.Tensor, batch_size: int = 1000) -> EncodedData:
    """Encoder means, standard deviations and per-dimension KLs of every row of ``x``."""
    x = torch.as_tensor(np.asarray(x, dtype=np.float32), device=model.device)
    means, stds, kls = [], [], []
    for start in range(0, len(x), batch_size):
        posterior: DiagonalGaussian = model.encode(x[start:start + batch_size])
        means.append(posterior.mean.float().cpu())
        stds.append(posterior.std.float().cpu())
        kls.append(posterior.kl_per_dimension().float().cpu())
    return EncodedData(torch.cat(means).numpy(), torch.cat(stds).numpy(), torch.cat(kls).numpy())


def kl_per_dimension(model, x: np.ndarray | torch.Tensor, batch_size: int = 1000) -> np.ndarray:
    """(latent,) E_x KL(q(z_j | x) || N(0, 1)) over a data set. Dimensions with ≈ 0 KL are
    collapsed (the decoder ignores them); sorting by it puts the informative ones first."""
    return encode_dataset(model, x, batch_size).average_kl


def dimensions_by_kl(average_kl: np.ndarray) -> list[int]:
    """Latent dimensions ordered by average KL, most informative first (stable for ties)."""
    return [int(j) for j in np.argsort(-np.asarray(average_kl), kind="stable")]


def traversal_latents(base: torch.Tensor, dims_order: list[int] | torch.Tensor,
                      values: torch.Tensor) -> torch.Tensor:
    """Row r sets dimension ``dims_order[r]`` of ``base`` to each of its values in turn and
    keeps every other dimension at ``base``.

    base (latent,); values (columns,) shared by all rows, or (rows, columns), e.g.
    ``base[dims][:, None] + offsets`` to traverse around the base point -> (rows, columns, latent).
    """
    base = torch.as_tensor(base)
    dims = torch.as_tensor(dims_order, dtype=torch.long, device=base.device)
    values = torch.as_tensor(values, dtype=base.dtype, device=base.device)
    values = values.expand(len(dims), values.shape[-1])
    grid = base.expand(len(dims), values.shape[-1], base.shape[-1]).clone()
    grid[torch.arange(len(dims), device=base.device), :, dims] = values
    return grid


def traversal_values(span: float, steps: int, center: float = 0.0) -> torch.Tensor:
    """``steps`` evenly spaced values in [center − span, center + span]."""
    return torch.linspace(center - span, center + span, steps)


def lerp(z0: torch.Tensor, z1: torch.Tensor, steps: int) -> torch.Tensor:
    """Straight line from z0 to z1 (both ends included): (steps, latent)."""
    t = torch.linspace(0.0, 1.0, steps, dtype=z0.dtype, device=z0.device)[:, None]
    return (1 - t) * z0 + t * z1


def slerp(z0: torch.Tensor, z1: torch.Tensor, steps: int, eps: float = 1e-6) -> torch.Tensor:
    """Spherical interpolation (Shoemake 1985; White 2016 for VAEs): follows the great circle
    between the directions of z0 and z1, so it stays in the shell where a high-dimensional
    standard normal puts its mass instead of cutting through the low-density centre as the
    straight line does. For unit vectors every point has unit norm. Falls back to ``lerp`` for
    (anti)parallel endpoints, where the great circle is not unique. Returns (steps, latent)."""
    t = torch.linspace(0.0, 1.0, steps, dtype=z0.dtype, device=z0.device)[:, None]
    n0, n1 = z0.norm(), z1.norm()
    if n0 < eps or n1 < eps:
        return lerp(z0, z1, steps)
    cos_omega = torch.clamp(torch.dot(z0 / n0, z1 / n1), -1.0, 1.0)
    omega = torch.arccos(cos_omega)
    sin_omega = torch.sin(omega)
    if sin_omega.abs() < eps:
        return lerp(z0, z1, steps)
    return (torch.sin((1 - t) * omega) * z0 + torch.sin(t * omega) * z1) / sin_omega


def normal_quantiles(n: int, tail: float = 0.05) -> torch.Tensor:
    """n standard-normal quantiles evenly spaced in probability over [tail, 1 − tail]
    (Kingma & Welling 2014, Fig. 4: the manifold seen through the prior's CDF)."""
    return torch.special.ndtri(torch.linspace(tail, 1 - tail, n, dtype=torch.float64)).float()


def manifold_grid(n: int, span: float | None = None, tail: float = 0.05) -> torch.Tensor:
    """Latent points of an n×n grid of the plane: (n, n, 2). Rows run from high z₂ (top) to low
    z₂ so that a decoded image grid is oriented like the latent-plane scatter plot; columns run
    from low to high z₁. Uses normal quantiles, or a uniform grid on [−span, span] when given."""
    axis = normal_quantiles(n, tail) if span is None else torch.linspace(-span, span, n)
    z1 = axis[None, :].expand(n, n)
    z2 = axis.flip(0)[:, None].expand(n, n)
    return torch.stack([z1, z2], dim=-1)


@torch.inference_mode()
def decode_mean(model, z: torch.Tensor) -> np.ndarray:
    """Decoder means of latent points of any leading shape, in one batched call:
    z (..., latent) -> (..., features) float32."""
    z = torch.as_tensor(z, dtype=torch.float32, device=model.device)
    return model.decode(z).mean.float().cpu().numpy()


@torch.inference_mode()
def reconstruct(model, x: np.ndarray | torch.Tensor) -> np.ndarray:
    """Decoder mean at the encoder mean, (n, features) -> (n, features)."""
    x = torch.as_tensor(np.asarray(x, dtype=np.float32), device=model.device)
    return model.reconstruct(x).float().cpu().numpy()


@torch.inference_mode()
def prior_samples(model, n: int, seed: int = 0) -> np.ndarray:
    """Decoder means of n draws from the prior, reproducible from ``seed``: (n, features)."""
    generator = torch.Generator(device=model.device).manual_seed(seed)
    return model.generate(n, generator).float().cpu().numpy()


def examples_per_class(labels: np.ndarray | None, per_class: int, seed: int = 0, n_rows: int = 0,
                       n_without_labels: int = 20) -> np.ndarray:
    """Row indices with ``per_class`` rows of every label, ordered so that the first row of
    each class comes first (0, 1, ..., 9, then the second of each), reproducible from ``seed``.
    Without labels: ``n_without_labels`` seeded random rows out of ``n_rows``."""
    rng = np.random.default_rng(seed)
    if labels is None:
        return rng.choice(n_rows, size=min(n_without_labels, n_rows), replace=False).astype(np.int64)
    labels = np.asarray(labels)
    chosen = []
    for label in np.unique(labels):
        rows = np.flatnonzero(labels == label)
        chosen.append(rng.choice(rows, size=min(per_class, len(rows)), replace=False))
    order = [column[k] for k in range(per_class) for column in chosen if k < len(column)]
    return np.asarray(order, dtype=np.int64)
