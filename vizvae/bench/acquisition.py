"""SAIA on one table row, as the Acquisition page computes it (the page caches the whole run, so
stepping afterwards costs nothing): ``python -m vizvae bench --only acquisition --json
[-o models=boston-vaem,boston-hhvaem] [-o samples=200] [-o repeats=3]``.

* ``saia_row_ms.<model>.<strategy>`` — one row, all D + 1 steps, median of ``repeats``.
* ``saia_hmc_over_encoder_ratio`` — the mi run of the HMC model ÷ the mi run of the encoder model,
  measured in interleaved pairs: what the HMC sampler costs the page.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

import torch

from vizvae.checkpoint import checkpoint_dataset, load_checkpoint, resolve_checkpoint
from vizvae.inference.acquisition import STRATEGIES, run_acquisition


def _timed_run(model, x, y, strategy: str, samples: int) -> float:
    started = time.perf_counter()
    run_acquisition(model, x, y, strategy, n_samples=samples, generator=torch.Generator().manual_seed(0))
    return (time.perf_counter() - started) * 1000


def run(options: dict[str, Any]) -> dict[str, Any]:
    names = str(options.get("models", "boston-vaem,boston-hhvaem")).split(",")
    samples = int(options.get("samples", 200))
    repeats = int(options.get("repeats", 3))
    models = {}
    for name in names:
        checkpoint = load_checkpoint(resolve_checkpoint(name), device="cpu")
        dataset = checkpoint_dataset(checkpoint.config)
        models[name] = (checkpoint.model, torch.as_tensor(dataset.x_test[:1]), torch.as_tensor(dataset.y_test[:1]))
    per_model: dict[str, dict[str, float]] = {}
    for name, (model, x, y) in models.items():
        per_model[name] = {s: round(statistics.median(_timed_run(model, x, y, s, samples) for _ in range(repeats)), 1)
                           for s in STRATEGIES}
    result: dict[str, Any] = {"saia_row_ms": per_model, "saia_samples": samples}
    if len(names) == 2:
        ratios = []
        for _ in range(repeats):
            slow = _timed_run(*models[names[1]], "mi", samples)
            fast = _timed_run(*models[names[0]], "mi", samples)
            ratios.append(slow / fast)
        result["saia_hmc_over_encoder_ratio"] = round(statistics.median(ratios), 2)
    return result
