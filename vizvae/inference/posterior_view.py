"""The numbers the posterior page shows beside its figures: how far HMC moved from the encoder in each
latent dimension (which dimensions a corner plot should show first), whether the initial proposal is
inflated, the box a chain animation is drawn in, and the masked image as the model sees it."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from vizvae.inference.posterior import plane_limits

MISSING_GREY = 0.5  # a hidden pixel in a preview
CORNER_DIMENSIONS = 4


def shift_from_encoder(samples: np.ndarray, encoder_mean: np.ndarray, encoder_std: np.ndarray) -> np.ndarray:
    """Per latent dimension (dim,): how far the HMC samples (n, dim) moved from the encoder's
    N(mean, std²) — the shift of their mean in encoder standard deviations plus |log| of the ratio of
    their spread to the encoder's. 0 when the samples match the encoder's moments."""
    spread = np.maximum(samples.std(0), 1e-6 * encoder_std)  # all chains stuck: no spread at all
    return np.abs(samples.mean(0) - encoder_mean) / encoder_std + np.abs(np.log(spread / encoder_std))


def most_moved_dimensions(samples: np.ndarray, encoder_mean: np.ndarray, encoder_std: np.ndarray,
                          k: int = CORNER_DIMENSIONS) -> list[int]:
    """The ``k`` dimensions of largest ``shift_from_encoder``, in increasing order."""
    shift = shift_from_encoder(samples, encoder_mean, encoder_std)
    return sorted(int(d) for d in np.argsort(-shift)[:k])


def is_inflated(proposal_std: np.ndarray, encoder_std: np.ndarray) -> bool:
    """Whether HMC's initial proposal differs from the encoder's Gaussian (a trained inflation ≠ 1)."""
    return not np.allclose(proposal_std, encoder_std)


def chain_plane_limits(plane_chain: np.ndarray, gaussians: Sequence[tuple[np.ndarray, np.ndarray]],
                       mass_limits: tuple[tuple[float, float], tuple[float, float]] | None = None,
                       ) -> tuple[tuple[float, float], tuple[float, float]]:
    """The fixed box of a chain animation in a plane: every state of the chains (..., 2), the 2σ
    ellipses of ``gaussians`` (mean, covariance) and, when given, the box holding the exact
    posterior's mass ``((low_1, high_1), (low_2, high_2))``."""
    points = np.asarray(plane_chain, dtype=float).reshape(-1, 2)
    if mass_limits is not None:
        (low_1, high_1), (low_2, high_2) = mass_limits
        points = np.concatenate([points, [[low_1, low_2], [high_1, high_2]]])
    return plane_limits(points, list(gaussians))


def masked_preview(x: np.ndarray, mask: torch.Tensor | np.ndarray | None) -> np.ndarray:
    """The image with its hidden pixels mid-grey (observed ones as they are)."""
    if mask is None:
        return x
    mask = mask.cpu().numpy() if isinstance(mask, torch.Tensor) else np.asarray(mask)
    return np.where(mask, x, MISSING_GREY)
