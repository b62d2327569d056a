"""SAIA task (thesis §5.4.4, Fig. 5.5): ``python -m vizvae evaluate MODEL --task saia --json
[-o rows=N] [-o samples=100] [-o bins=6] [-o seed=0] [-o fresh=1]``.

Every test row of the model's table starts with nothing observed and acquires one feature per step
under each strategy (``mi``, ``kl``, ``random``; see ``vizvae.inference.acquisition``). Prints

* ``curves`` — per strategy, the mean over rows of the error after 0, 1, ..., D acquired features
  (absolute error of the predictive mean in standardised target units, or the error rate for a
  label), with ``curves_se`` (standard errors) and ``nll_curves`` (−log p(y | x_O));
* ``areas`` — per strategy, the area under its error curve (trapezoid rule, unit steps): smaller
  means the strategy finds the informative features sooner.

Training a mixed-type model writes the same object into ``saia.json`` beside its weights, stamped
with the weights' SHA-256; the task returns that cache when the weights and options match (``-o
fresh=1`` recomputes), so the app and the CLI read the curves without running HMC again.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vizvae.evaluation.rows import ALONE, RowSplit, scores_by_chunks
from vizvae.inference.acquisition import STRATEGIES, curve_area, curve_summary, run_acquisition
from vizvae.models.capabilities import PredictorModel, TableModel

CACHE_FILE = "saia.json"
DEFAULTS = {"samples": 100, "bins": 6, "kl_samples": 30, "seed": 0}


def weights_digest(folder: str | Path) -> str:
    from vizvae.checkpoint import WEIGHTS

    return hashlib.sha256((Path(folder) / WEIGHTS).read_bytes()).hexdigest()


def error_name(model) -> str:
    if model.target_kind == "categorical":
        return "error rate of the most probable class"
    return "absolute error of the predictive mean (standardised target units)"


SPLIT_CHUNK_ROWS = 32  # rows per chunk (and random stream) when SAIA is split between ranks


def evaluate_saia(model, dataset, rows: int | None = None, samples: int = DEFAULTS["samples"],
                  bins: int = DEFAULTS["bins"], kl_samples: int = DEFAULTS["kl_samples"], seed: int = DEFAULTS["seed"],
                  strategies: tuple[str, ...] = STRATEGIES, split: RowSplit = ALONE) -> dict[str, Any]:
    """The Fig. 5.5 curves of ``model`` on the first ``rows`` test rows (all by default); with
    ``split``, the rows are shared between the ranks (``evaluation.rows``)."""
    device = model.device
    count = len(dataset.x_test) if rows is None else min(rows, len(dataset.x_test))
    x = torch.as_tensor(dataset.x_test[:count], device=device)
    y = torch.as_tensor(dataset.y_test[:count], device=device)
    result: dict[str, Any] = {"curves": {}, "curves_se": {}, "nll_curves": {}, "areas": {}, "first_acquired": {}}
    for strategy in strategies:
        def score(part: slice, generator: torch.Generator) -> dict[str, list]:
            run = run_acquisition(model, x[part], y[part], strategy, n_samples=samples, bins=bins,
                                  kl_samples=kl_samples, generator=generator)  # arrays of (steps, rows)
            return {"error": list(np.asarray(run.error).T), "y_nll": list(np.asarray(run.y_nll).T),
                    "first": list(np.asarray(run.acquired[0]))}  # per row

        if split.split:
            merged = scores_by_chunks(score, count, SPLIT_CHUNK_ROWS, seed, split, device)
        else:
            merged = score(slice(0, count), torch.Generator(device=device).manual_seed(seed))
        error, y_nll = np.stack(merged["error"], axis=1), np.stack(merged["y_nll"], axis=1)  # (steps, rows)
        errors = curve_summary(error)
        result["curves"][strategy] = errors["mean"]
        result["curves_se"][strategy] = errors["se"]
        result["nll_curves"][strategy] = curve_summary(y_nll)["mean"]
        result["areas"][strategy] = round(curve_area(errors["mean"]), 4)
        first = np.bincount(np.asarray(merged["first"], dtype=int), minlength=x.shape[1])  # each row's first feature
        result["first_acquired"][strategy] = [int(v) for v in first]
    result.update(error=error_name(model), rows=count, features=list(dataset.feature_names),
                  options={"samples": samples, "bins": bins, "kl_samples": kl_samples, "seed": seed})
    return result


def write_saia_cache(folder: str | Path, model, dataset, rows: int | None = None, seed: int = 0,
                     result: dict[str, Any] | None = None) -> dict[str, Any]:
    """Store the curves (``result``, else computed now) with the digest of the weights in ``folder``."""
    result = dict(result) if result is not None else evaluate_saia(model, dataset, rows=rows, seed=seed)
    result["weights_sha256"] = weights_digest(folder)
    (Path(folder) / CACHE_FILE).write_text(json.dumps(result, indent=1))
    return result


def read_saia_cache(folder: str | Path) -> dict[str, Any] | None:
    """The cached curves if they belong to the weights in ``folder``, else None."""
    file = Path(folder) / CACHE_FILE
    if not file.is_file():
        return None
    try:
        cached = json.loads(file.read_text())
    except (OSError, ValueError):
        return None
    if cached.get("weights_sha256") != weights_digest(folder):
        return None
    return cached


def saia_task(checkpoint, options: dict[str, Any]) -> dict[str, Any]:
    from vizvae.checkpoint import checkpoint_dataset
    from vizvae.errors import VizvaeError

    model = checkpoint.model
    if not (isinstance(model, TableModel) and isinstance(model, PredictorModel) and model.has_predictor):
        raise VizvaeError(f"{checkpoint.name}: the saia task needs a mixed-type model with a predictor "
                          "(vaem, miwaem, hvaem, hmcvaem, hhvaem)")
    dataset = checkpoint_dataset(checkpoint.config)
    settings = {key: int(options.get(key) or value) for key, value in DEFAULTS.items()}
    rows = int(options["rows"]) if options.get("rows") else None
    count = len(dataset.x_test) if rows is None else min(rows, len(dataset.x_test))
    cached = None if options.get("fresh") else read_saia_cache(checkpoint.path)
    if cached and cached.get("options") == settings and cached.get("rows") == count:
        result = dict(cached, cached=True)
    else:
        result = dict(evaluate_saia(model, dataset, rows=rows, **settings, split=options.get("row_split") or ALONE),
                      cached=False)
    result.pop("weights_sha256", None)
    return {"model": checkpoint.name, "dataset": dataset.name, **result}
