"""Latent-space quantities for looking inside a trained model (SPEC §1.1): the encoded data
set, the KL each latent dimension carries, traversals, interpolations, the decoded manifold of a
2-D latent plane, prior samples and reconstructions, and the small choices the latent-space page
makes (the labels to colour by, the point a traversal moves around).

Everything is pure torch on the model's shared interface (``encode``, ``decode``), so it works
for every model with a flat Gaussian latent. Decoding is always one batched call under
``torch.inference_mode``: a 10×10 traversal grid is one (100, latent) forward pass.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from vizvae.inference import cache
from vizvae.models.distributions import DiagonalGaussian


@dataclass
class EncodedData:
    """The encoder posterior q(z | x) of every row of a data set, as arrays."""

    mean: np.ndarray  # (n, latent) float32
    std: np.ndarray  # (n, latent) float32
    kl_per_dimension: np.ndarray  # (n, latent) KL(q(z_j | x) || N(0, 1)) per row and dimension

    @property
    def average_kl(self) -> np.ndarray:
        """(latent,) E_x KL(q(z_j | x) || N(0, 1)): how much each dimension is used. Dimensions with
        ≈ 0 KL are collapsed (the decoder ignores them); sorting by it puts the informative ones first."""
        return self.kl_per_dimension.mean(0)


@torch.inference_mode()
def encode_dataset(model, x: np.ndarray | torch.Tensor, batch_size: int = 1000) -> EncodedData:
    """Encoder means, standard deviations and per-dimension KLs of every row of ``x``, moved to the
    model's device one batch at a time."""
    means, stds, kls = [], [], []
    for start in range(0, len(x), batch_size):
        batch = torch.as_tensor(np.asarray(x[start:start + batch_size], dtype=np.float32), device=model.device)
        posterior: DiagonalGaussian = model.encode(batch)
        means.append(posterior.mean.float().cpu())
        stds.append(posterior.std.float().cpu())
        kls.append(posterior.kl_per_dimension().float().cpu())
    return EncodedData(torch.cat(means).numpy(), torch.cat(stds).numpy(), torch.cat(kls).numpy())


def encoded_from(mean: np.ndarray, std: np.ndarray) -> EncodedData:
    """``EncodedData`` of stored encoder means and standard deviations (n, latent): the per-dimension KLs are
    computed as ``encode_dataset`` computes them, so they match it exactly."""
    posterior = DiagonalGaussian(torch.as_tensor(np.asarray(mean, dtype=np.float32)),
                                 torch.as_tensor(np.asarray(std, dtype=np.float32)))
    return EncodedData(posterior.mean.numpy(), posterior.std.numpy(), posterior.kl_per_dimension().numpy())


def cached_encoding(folder, model, x: np.ndarray, data: str = "test", *, precomputed: bool = False
                    ) -> tuple[EncodedData, bool]:
    """(``encode_dataset(model, x)``, read from a file?): the encoder posteriors of data split ``data`` (x) as
    shipped with the model (``python -m vizvae precompute``) or kept in its cache (float32 means and
    standard deviations: kilobytes), else encoded and stored. ``folder`` None: no cache."""
    def compute() -> dict[str, np.ndarray]:
        encoded = encode_dataset(model, x)
        return {"mean": encoded.mean, "std": encoded.std}

    arrays, from_cache = cache.cached_arrays(folder, "encoding", {"data": str(data), "rows": len(x)}, compute,
                                             precomputed=precomputed,
                                             expect={"mean": (len(x), None), "std": (len(x), None)})
    return encoded_from(arrays["mean"], arrays["std"]), from_cache


def dimensions_by_kl(average_kl: np.ndarray) -> list[int]:
    """Latent dimensions ordered by average KL, most informative first (stable for ties)."""
    return [int(j) for j in np.argsort(-np.asarray(average_kl), kind="stable")]


def traversal_latents(base: torch.Tensor | np.ndarray, dims_order: list[int] | torch.Tensor,
                      values: torch.Tensor, around_base: bool = False) -> torch.Tensor:
    """Row r sets dimension ``dims_order[r]`` of ``base`` to each of its values in turn and
    keeps every other dimension at ``base``.

    base (latent,); values (columns,) shared by all rows, or (rows, columns). With
    ``around_base`` the values are offsets from the base's own coordinate, so the row runs
    through ``base[dims_order[r]] + values`` -> (rows, columns, latent).
    """
    base = torch.as_tensor(base)
    dims = torch.as_tensor(dims_order, dtype=torch.long, device=base.device)
    values = torch.as_tensor(values, dtype=base.dtype, device=base.device)
    values = values.expand(len(dims), values.shape[-1])
    if around_base:
        values = base[dims][:, None] + values
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


@dataclass(frozen=True)
class ClassLabels:
    """A test set's class labels: ``codes`` (n,) indexes ``names``; ``per_point`` names each row."""

    codes: np.ndarray
    names: list[str]

    @property
    def per_point(self) -> list[str]:
        return [self.names[code] for code in self.codes]


def class_labels(y_test: np.ndarray | None, categories: list[float] | None) -> ClassLabels | None:
    """The test rows' labels as category codes and printable names ('7', not '7.0'); None for a
    data set without a categorical target."""
    if y_test is None or categories is None:
        return None
    return ClassLabels(np.asarray(y_test).astype(int), [f"{c:g}" for c in categories])


def traversal_base(means: np.ndarray, selection: list[int], around_selected: bool) -> tuple[np.ndarray, int | None]:
    """The latent point a traversal moves around: the encoder mean of the first selected row when
    asked for and there is one, else the origin (the prior's mode). Returns (z, row or None)."""
    if around_selected and selection:
        return np.asarray(means[selection[0]], dtype=np.float32), selection[0]
    return np.zeros(means.shape[1], dtype=np.float32), None


def moved(base: np.ndarray, dim: int, offset: float) -> np.ndarray:
    """``base`` with dimension ``dim`` moved by ``offset`` (a copy, float32)."""
    z = np.asarray(base, dtype=np.float32).copy()
    z[dim] += offset
    return z
