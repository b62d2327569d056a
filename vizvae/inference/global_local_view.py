"""The numbers behind the Global & local page that are not figures of the thesis on their own:
cluster sizes, the β a cluster section decodes with, and the two groups an interpolation runs
between.
"""

from __future__ import annotations

import numpy as np
import torch

from vizvae.data.batches import BatchRule, sample_batches
from vizvae.inference.global_local import GlobalLocalGrid, batch_global_posteriors, group_and_image_latents, interpolation_grid

CLUSTER_BETAS = ("zero", "prior", "batch")  # β = 0 | a draw of p(β) = N(0, I) | the mean of q(β | X), X a random test batch


def cluster_sizes(assignment: np.ndarray, clusters: int) -> np.ndarray:
    """How many rows each of the ``clusters`` clusters holds (empty ones included): (clusters,)."""
    return np.bincount(np.asarray(assignment, dtype=np.int64), minlength=clusters)


def shared_dimension(dim: int | None, size: int) -> int | None:
    """The dimension a counterpart model with ``size`` dimensions moves when the page moves
    ``dim`` (the last one when it has fewer); None (every dimension) stays None."""
    return None if dim is None else min(dim, size - 1)


@torch.inference_mode()
def cluster_beta(model, x: np.ndarray, choice: str, seed: int) -> torch.Tensor:
    """The global β (global_dim,) shared by every cluster's samples: 0, a seeded draw of the prior
    N(0, I), or the posterior mean of q(β | X) for a seeded random test group X of the model's
    training group size."""
    rng = np.random.default_rng(seed)
    if choice == "zero":
        return torch.zeros(model.global_dim)
    if choice == "prior":
        return torch.as_tensor(rng.standard_normal(model.global_dim), dtype=torch.float32)
    if choice != "batch":
        raise ValueError(f"cluster β is one of {CLUSTER_BETAS}, not {choice!r}")
    rows = rng.choice(len(x), size=min(model.config.group_size, len(x)), replace=False)
    return batch_global_posteriors(model, x, rows[None]).mean[0]


def interpolation_groups(labels: np.ndarray, rules: tuple[BatchRule, BatchRule], size: int,
                         domains: np.ndarray | None = None, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Two groups of ``size`` rows, one per rule, drawn with one seeded generator: (rows_a, rows_b).
    Raises ``DataError`` when a rule has fewer rows than ``size``."""
    rng = np.random.default_rng(seed)
    first, second = (sample_batches(labels, rule, 1, size, rng, domains)[0] for rule in rules)
    return first, second


def group_interpolation(model, x: np.ndarray, rows_a: np.ndarray, rows_b: np.ndarray, steps: int) -> GlobalLocalGrid:
    """Fig. 4.7: rows move β from group a's posterior mean to group b's, columns move z from the
    encoder mean of group a's first image to group b's first image."""
    beta_a, z_a = group_and_image_latents(model, x, rows_a, rows_a[0])
    beta_b, z_b = group_and_image_latents(model, x, rows_b, rows_b[0])
    return interpolation_grid(model, beta_a, beta_b, z_a, z_b, steps)
