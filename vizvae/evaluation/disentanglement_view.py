"""The numbers behind the disentanglement page that are not metrics themselves: which latents a
traversal shows, which are inactive, the test image a traversal starts from, and how many latents
the active-unit count is out of."""

from __future__ import annotations

import numpy as np

from vizvae.evaluation.disentanglement import ACTIVE_KL_THRESHOLD
from vizvae.models.capabilities import GroupModel


def inactive_dimensions(order: list[int], average_kl: np.ndarray, threshold: float = ACTIVE_KL_THRESHOLD) -> list[int]:
    """The latents of ``order`` whose average KL is at most ``threshold`` nats (they change nothing)."""
    return [j for j in order if average_kl[j] <= threshold]


def traversal_dimensions(order: list[int], average_kl: np.ndarray, show_inactive: bool,
                         threshold: float = ACTIVE_KL_THRESHOLD) -> list[int]:
    """The latents a traversal shows, in ``order`` (by average KL, highest first): the active
    ones, or all of them when asked for or when none is active."""
    active = [j for j in order if average_kl[j] > threshold]
    return order if show_inactive or not active else active


def central_test_row(codes: np.ndarray, n_levels: tuple[int, ...]) -> int:
    """A test image near the middle of the factor grid: medium scale, central position, any
    rotation, an ellipse when there is one. ``codes`` (rows, factors) are level indices of
    (shape, scale, rotation, x, y), so traversals have room to move the image every way."""
    levels = np.asarray(n_levels, dtype=float)
    distance = np.abs(codes[:, 1:] - (levels[1:] - 1) / 2) / levels[1:]
    distance[:, 1] = 0.0  # rotation: any
    return int(np.argmin(distance.sum(axis=1) + 0.01 * (codes[:, 0] != 1)))  # shape 1, the ellipse, by a nose


def code_size(model) -> int:
    """The latents the disentanglement metrics are over: a group model's local z, else all of z."""
    return model.local_dim if isinstance(model, GroupModel) else model.latent_dim


FLAT_WITHIN = 0.05  # a score that moves less than this across β is called flat: a few standard errors of an
# accuracy over the 480 shapes test images (≈ 0.02 at 70 %)


def against_beta_sentence(betas: list[float], scores: dict[str, list[float]], flat_within: float = FLAT_WITHIN) -> str:
    """What the metrics-against-β chart shows, in words computed from it: each score's range over
    ``betas`` and, unless it is flat (it moves less than ``flat_within``), at which β it peaks."""
    parts = []
    for name, values in scores.items():
        values = [float(v) for v in values]
        low, high = min(values), max(values)
        if high - low < flat_within:
            parts.append(f"{name} is flat ({low:.2f}–{high:.2f})")
            continue
        best = int(np.argmax(values))
        where = ("rises with β" if best == len(values) - 1 and values == sorted(values) else
                 "falls as β grows" if best == 0 and values == sorted(values, reverse=True) else
                 f"peaks at β = {betas[best]:g}")
        parts.append(f"{name} {where} ({', '.join(f'{v:.2f}' for v in values)})")
    return "On these models, " + "; ".join(parts) + f" over β = {', '.join(f'{b:g}' for b in betas)}."
