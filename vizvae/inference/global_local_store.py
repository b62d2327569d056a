"""The Global & local page's results in the checkpoint cache (``vizvae.inference.cache``).

* the structured-batch study (Table 4.2 and the map of q(β | X)) of a choice of batch kinds: the
  global posteriors of the held-out batches and the SVM accuracies. The page and ``python -m vizvae
  precompute`` both go through ``cached_batch_study``, so the builder ships exactly what the page
  would compute for its first view, and any other view is computed once and kept in the user cache;
* the Fig. 4.4 grid of every cluster in the page's first view (diagonal paths, rows around β = 0):
  decoder means at the 8 bits a PNG draws them with, stored by the builder only (a grid of another
  view is one small batched decode);
* the centre of the random test batches' posteriors q(β | X), which the page's first view quotes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from vizvae.data.batches import BatchRule, domain_labels, make_rule
from vizvae.inference import cache
from vizvae.inference.global_local import (
    BatchPosteriors, BatchProblem, SVMAccuracy, batch_classification, decode_with_global, diagonal_path,
    global_local_grid, random_batch_centre, structured_batch_posteriors,
)

BATCH_STUDY = "global-local-batches"
GRIDS = "global-local-grids"
CENTRE = "global-local-centre"
# the page's first view of the structured batches (the kinds depend on the data set: default_batch_kinds)
DEFAULT_BATCHES: dict[str, Any] = {"digit": 0, "digits": (0, 1), "n_batches": 30, "batch_size": 128, "seed": 0}
# the page's first Fig. 4.4 view: as the thesis draws it, β from −1 to +1 and z from μ − 3 to μ + 3, both
# diagonally, rows around the prior mean β = 0
DEFAULT_GRID: dict[str, Any] = {"steps": 7, "beta_span": 1.0, "z_span": 3.0}
CLASSIFIERS = ("linear", "rbf")  # the SVMs of svm_accuracies, in its order


# -- structured batches (Table 4.2) --------------------------------------------------------------------------
def default_batch_kinds(domains: Sequence[str]) -> list[str]:
    """The batch kinds the page starts with: one per domain of a mixed data set, else even, odd, random."""
    return [f"domain:{name}" for name in domains] or ["even", "odd", "random"]


def batch_rule(kind: str, digit: int, digits: Sequence[int]) -> BatchRule:
    """The rule of a batch kind: ``domain:<name>`` (random rows of one domain) or a ``make_rule`` name."""
    if kind.startswith("domain:"):
        return make_rule("random", domain=kind.split(":", 1)[1])
    return make_rule(kind, digit=digit, digits=tuple(digits))


def batch_problems(kinds: Sequence[str], rules: Sequence[BatchRule]) -> list[BatchProblem]:
    """Table 4.2's row groups: all the chosen kinds, and (with three or more) the same without ``random``."""
    problems = [BatchProblem("selected", list(rules))]
    if "random" in kinds and len(kinds) >= 3:
        problems.insert(0, BatchProblem("without_random", [r for k, r in zip(kinds, rules) if k != "random"]))
    return problems


@dataclass
class BatchStudy:
    """The held-out batches' global posteriors (drawn on the map) and Table 4.2's SVM accuracies."""

    shown: BatchPosteriors
    problems: list[BatchProblem]
    accuracies: dict[str, list[SVMAccuracy]]  # problem name -> [linear, rbf]


def batch_study(model: Any, dataset: Any, kinds: Sequence[str], digit: int, digits: Sequence[int], n_batches: int,
                batch_size: int, seed: int = 0) -> BatchStudy:
    """``n_batches`` held-out test batches of every kind with their q(β | X), and SVMs fitted on β samples of
    train batches and scored on test batches (raises ``DataError`` when a rule cannot fill a batch)."""
    rules = [batch_rule(kind, digit, digits) for kind in kinds]
    test_domains = domain_labels(dataset, "test")
    shown = structured_batch_posteriors(model, dataset.x_test, dataset.y_test, rules, n_batches, batch_size,
                                        seed=seed, domains=test_domains)
    problems = batch_problems(kinds, rules)
    accuracies = batch_classification(
        model, (dataset.x_train, dataset.y_train), (dataset.x_test, dataset.y_test), problems,
        n_train_batches=n_batches, n_test_batches=n_batches, batch_size=batch_size, seed=seed,
        train_domains=domain_labels(dataset, "train"), test_domains=test_domains)
    return BatchStudy(shown, problems, accuracies)


def batch_study_params(kinds: Sequence[str], digit: int, digits: Sequence[int], n_batches: int, batch_size: int,
                       seed: int = 0) -> dict[str, Any]:
    return {"kinds": [str(k) for k in kinds], "digit": int(digit), "digits": [int(d) for d in digits],
            "n_batches": int(n_batches), "batch_size": int(batch_size), "seed": int(seed)}


def study_to_arrays(study: BatchStudy) -> dict[str, np.ndarray]:
    shown = study.shown
    accuracy = np.array([[[a.train_accuracy, a.test_accuracy] for a in study.accuracies[p.name]]
                         for p in study.problems], dtype=np.float64)  # (problems, classifiers, train|test)
    return {"kinds": shown.kinds.astype(np.int64), "rows": shown.rows.astype(np.int32), "mean": shown.mean,
            "std": shown.std, "accuracy": accuracy}


def study_from_arrays(arrays: dict[str, np.ndarray], kinds: Sequence[str], digit: int,
                      digits: Sequence[int]) -> BatchStudy:
    rules = [batch_rule(kind, digit, digits) for kind in kinds]
    problems = batch_problems(kinds, rules)
    accuracies = {problem.name: [SVMAccuracy(name, float(train), float(test))
                                 for name, (train, test) in zip(CLASSIFIERS, arrays["accuracy"][i])]
                  for i, problem in enumerate(problems)}
    shown = BatchPosteriors(rules, arrays["kinds"], arrays["rows"].astype(np.int64), arrays["mean"], arrays["std"])
    return BatchStudy(shown, problems, accuracies)


def cached_batch_study(folder: str | Path | None, model: Any, dataset: Any, kinds: Sequence[str], digit: int,
                       digits: Sequence[int], n_batches: int, batch_size: int, seed: int = 0, *,
                       precomputed: bool = False) -> tuple[BatchStudy, bool]:
    """(study, read from a file?): shipped with the model or kept in its cache, else ``batch_study`` (stored)."""
    computed: list[BatchStudy] = []

    def compute() -> dict[str, np.ndarray]:
        computed.append(batch_study(model, dataset, kinds, digit, digits, n_batches, batch_size, seed))
        return study_to_arrays(computed[0])

    params = batch_study_params(kinds, digit, digits, n_batches, batch_size, seed)
    arrays, from_cache = cache.cached_arrays(folder, BATCH_STUDY, params, compute, precomputed=precomputed)
    return (computed[0] if computed else study_from_arrays(arrays, kinds, digit, digits)), from_cache


# -- Fig. 4.4 ----------------------------------------------------------------------------------------------------
def grid_decoded(model: Any, cluster: int, steps: int, beta_span: float, z_span: float,
                 beta_centre: torch.Tensor | None = None, beta_dim: int | None = None,
                 z_dim: int | None = None) -> np.ndarray:
    """Decoder means of the Fig. 4.4 grid of ``cluster``: rows move β over ±``beta_span`` around
    ``beta_centre`` (default 0), columns move z over ±``z_span`` around μ_z^(d)(β); along every dimension
    (the diagonal) or only ``beta_dim`` / ``z_dim``. Returns (steps, steps, features)."""
    centre = torch.zeros(model.global_dim) if beta_centre is None else torch.as_tensor(beta_centre)
    grid = global_local_grid(model, cluster, centre + diagonal_path(steps, beta_span, model.global_dim, beta_dim),
                             diagonal_path(steps, z_span, model.local_dim, z_dim))
    return decode_with_global(model, grid.z, grid.beta)


def to_pixels(decoded: np.ndarray) -> np.ndarray:
    """Decoder means in [0, 1] at 8 bits, rounded as ``vizvae.viz.images.image_grid`` rounds them: a grid
    drawn from ``pixels / 255`` is the same PNG as one drawn from the decoder means."""
    return (np.clip(np.asarray(decoded, dtype=np.float32), 0.0, 1.0) * 255).round().astype(np.uint8)


def default_grids(model: Any) -> np.ndarray:
    """The first view's Fig. 4.4 grid of every cluster, at 8 bits: (K, steps, steps, features) uint8."""
    return np.stack([to_pixels(grid_decoded(model, d, **DEFAULT_GRID)) for d in range(model.clusters)])


def stored_grid(folder: str | Path | None, cluster: int, steps: int, beta_span: float, z_span: float,
                around_prior: bool = True, beta_dim: int | None = None, z_dim: int | None = None) -> np.ndarray | None:
    """The grid of ``cluster`` (``grid_decoded``'s settings) as the builder stored it, (steps, steps, features)
    in [0, 1]: only the first view's grids are stored; None for any other view, or none stored for these weights."""
    first_view = (around_prior and beta_dim is None and z_dim is None
                  and {"steps": steps, "beta_span": beta_span, "z_span": z_span} == DEFAULT_GRID)
    arrays = cache.load_arrays(folder, GRIDS, DEFAULT_GRID) if first_view and folder is not None else None
    if arrays is None or not 0 <= cluster < len(arrays["pixels"]):
        return None
    return arrays["pixels"][cluster].astype(np.float32) / 255


# -- the centre of random batches' posteriors ------------------------------------------------------------------
def cached_batch_centre(folder: str | Path | None, model: Any, x: np.ndarray, *,
                        precomputed: bool = False) -> torch.Tensor:
    """``random_batch_centre`` of the test images x (seed 0), shipped with the model or kept in its cache."""
    arrays, _ = cache.cached_arrays(folder, CENTRE, {"data": "test", "rows": len(x), "seed": 0},
                                    lambda: {"centre": random_batch_centre(model, x).numpy()}, precomputed=precomputed)
    return torch.from_numpy(np.asarray(arrays["centre"], dtype=np.float32))


# -- the builder ------------------------------------------------------------------------------------------------
def store_default_view(checkpoint: Any, dataset: Any) -> list[Path]:
    """The builder's copy of the page's first view: the batch study of the default kinds (UG-VAE), the
    Fig. 4.4 grid of every cluster and the batch centre (UG-VAE and ML-VAE, its counterpart)."""
    folder, model = checkpoint.path, checkpoint.model
    written: list[tuple[str, dict[str, Any]]] = []
    if model.clusters > 1:  # a UG-VAE: the page's subject (an ML-VAE is only drawn beside one)
        kinds = default_batch_kinds(dataset.preprocessing.get("domains", []))
        cached_batch_study(folder, model, dataset, kinds, **DEFAULT_BATCHES, precomputed=True)
        written.append((BATCH_STUDY, batch_study_params(kinds, **DEFAULT_BATCHES)))
    cache.store_arrays(folder, GRIDS, DEFAULT_GRID, {"pixels": default_grids(model)}, precomputed=True)
    cached_batch_centre(folder, model, dataset.x_test, precomputed=True)
    written += [(GRIDS, DEFAULT_GRID), (CENTRE, {"data": "test", "rows": len(dataset.x_test), "seed": 0})]
    return [cache.stored_result(folder, name, params) for name, params in written]
