"""Principal components by SVD: the one PCA every projection and view of vizvae uses."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["PrincipalComponents", "principal_components"]


@dataclass
class PrincipalComponents:
    """The top principal axes of a cloud of points (n, dim).

    ``axes`` (k, dim) are orthonormal rows, each signed so that its largest entry (by magnitude) is
    positive — a view built on them does not flip between reruns; ``centre`` (dim,) is the mean;
    ``explained_variance_ratio`` (k,) the fraction of the total variance along each axis. Fewer
    than the requested k axes exist when dim or n is smaller: the missing rows are zeros."""

    centre: np.ndarray
    axes: np.ndarray
    explained_variance_ratio: np.ndarray

    def scores(self, points: np.ndarray) -> np.ndarray:
        """Coordinates of points (..., dim) along the axes: (..., k)."""
        return (np.asarray(points, dtype=np.float64) - self.centre) @ self.axes.T


def principal_components(points: np.ndarray, n_components: int = 2) -> PrincipalComponents:
    """PCA of points (n, dim) in float64, by one SVD of the centred points."""
    points = np.asarray(points, dtype=np.float64)
    centre = points.mean(0)
    _, singular, vt = np.linalg.svd(points - centre, full_matrices=False)
    k = min(n_components, vt.shape[0])
    axes = vt[:k]
    signs = np.sign(axes[np.arange(k), np.abs(axes).argmax(1)])
    signs[signs == 0] = 1.0
    axes = axes * signs[:, None]
    variance = singular ** 2
    total = float(variance.sum())
    ratio = variance[:k] / total if total > 0 else np.zeros(k)
    if k < n_components:  # e.g. a 1-D latent: zero axes so a plot still has n_components of them
        axes = np.concatenate([axes, np.zeros((n_components - k, points.shape[1]))])
        ratio = np.concatenate([ratio, np.zeros(n_components - k)])
    return PrincipalComponents(centre, axes, ratio)
