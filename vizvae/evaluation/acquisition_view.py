"""One table row to acquire features for (thesis §5.3, SAIA), as the acquisition page holds it: its
values in model space and in raw units, which features can be acquired at all, the truth to score
against when it is known, and the whole run over all its steps; then each step of that run in raw
units (``raw_step``), the errors and the fixed axis ranges the page's figures are drawn on."""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from vizvae.data.schema import table_to_raw
from vizvae.inference import cache
from vizvae.inference.acquisition import STRATEGIES, AcquisitionRun, Progress, run_acquisition, run_acquisitions

RESULT_NAME = "acquisition-row"  # a test row's runs under every strategy, in the checkpoint's result cache
DEFAULT_VIEW = {"row": 0, "samples": 200, "seed": 0}  # what the page opens on, shipped with each table model
ALGORITHM = 2  # bumped whenever run_acquisitions draws differently, so older stored runs are not read


@dataclass(frozen=True)
class AcquisitionRow:
    """A row of D features and its target. ``x`` (D,) is in model space with NaN where a value is
    unknown (a feature that can never be acquired); ``truth_raw`` (D,) the same in raw units; ``y``
    and ``y_raw`` the target in model space and raw units, None when unknown."""

    label: str  # how the page names it: "test row 3", "the typed row", ...
    x: np.ndarray
    truth_raw: np.ndarray
    y: float | None
    y_raw: float | None

    @property
    def available(self) -> np.ndarray:
        """(D,) bool: the features that can be acquired (their values are known)."""
        return np.isfinite(self.x)

    @property
    def n_acquirable(self) -> int:
        return int(self.available.sum())

    def target_error(self, y_point_raw: float) -> float | None:
        """|prediction − truth| in raw units (None when the truth is unknown)."""
        return None if self.y_raw is None else abs(y_point_raw - self.y_raw)


def acquisition_row(x_model: np.ndarray, y_model: float, schema: Sequence[Any], target: Any,
                    label: str) -> AcquisitionRow:
    """The row ``x_model`` (D,) with target ``y_model`` (NaN entries: unknown), in both units."""
    x = np.asarray(x_model, dtype=np.float32)
    available = np.isfinite(x)
    truth_raw = np.where(available, table_to_raw(np.nan_to_num(x), schema), np.nan)
    known_y = bool(np.isfinite(y_model))
    y_raw = float(target.to_raw(np.array([y_model]))[0]) if known_y else None
    return AcquisitionRow(label, np.where(available, x, np.nan).astype(np.float32), truth_raw,
                          float(y_model) if known_y else None, y_raw)


def acquire_row(model: Any, row: AcquisitionRow, strategy: str, n_samples: int, seed: int) -> AcquisitionRun:
    """SAIA over all the row's steps with ``strategy``, ``n_samples`` draws per step, seeded."""
    device = model.device
    generator = torch.Generator(device=device).manual_seed(int(seed))
    x = torch.as_tensor(np.nan_to_num(row.x), dtype=torch.float32, device=device)[None]
    y = None if row.y is None else torch.tensor([row.y], dtype=torch.float32, device=device)
    return run_acquisition(model, x, y, strategy, n_samples=n_samples,
                           available=torch.as_tensor(row.available, device=device)[None], generator=generator)


def acquire_row_all(model: Any, row: AcquisitionRow, n_samples: int, seed: int,
                    progress: Progress | None = None) -> dict[str, AcquisitionRun]:
    """SAIA over all the row's steps under every strategy at once (one stacked run), seeded."""
    device = model.device
    generator = torch.Generator(device=device).manual_seed(int(seed))
    x = torch.as_tensor(np.nan_to_num(row.x), dtype=torch.float32, device=device)[None]
    y = None if row.y is None else torch.tensor([row.y], dtype=torch.float32, device=device)
    return run_acquisitions(model, x, y, STRATEGIES, n_samples=n_samples,
                            available=torch.as_tensor(row.available, device=device)[None], generator=generator,
                            progress=progress)


# -- a test row's runs, stored with the checkpoint -----------------------------------------------------------
def row_params(index: int, n_samples: int, seed: int) -> dict[str, Any]:
    return {"row": int(index), "samples": int(n_samples), "seed": int(seed), "strategies": list(STRATEGIES),
            "algorithm": ALGORITHM}


def runs_to_arrays(runs: dict[str, AcquisitionRun]) -> dict[str, np.ndarray]:
    """``{"<strategy>.<field>": array}``: floats as float32, so a row's runs take tens of kilobytes."""
    arrays = {}
    for strategy, run in runs.items():
        for field in fields(AcquisitionRun):
            if field.name != "strategy":
                value = np.asarray(getattr(run, field.name))
                arrays[f"{strategy}.{field.name}"] = value.astype(np.float32) if value.dtype.kind == "f" else value
    return arrays


def runs_from_arrays(arrays: dict[str, np.ndarray]) -> dict[str, AcquisitionRun]:
    strategies = dict.fromkeys(key.split(".", 1)[0] for key in arrays)
    names = [field.name for field in fields(AcquisitionRun) if field.name != "strategy"]
    return {s: AcquisitionRun(strategy=s, **{name: arrays[f"{s}.{name}"] for name in names}) for s in strategies}


def stored_test_row_runs(folder: str | Path, index: int, n_samples: int,
                         seed: int) -> dict[str, AcquisitionRun] | None:
    """The runs of test row ``index`` stored for these weights (shipped, or from an earlier visit), else None."""
    arrays = cache.load_arrays(folder, RESULT_NAME, row_params(index, n_samples, seed))
    return None if arrays is None else runs_from_arrays(arrays)


def store_test_row_runs(folder: str | Path, index: int, n_samples: int, seed: int, runs: dict[str, AcquisitionRun],
                        precomputed: bool = False) -> Path | None:
    return cache.store_arrays(folder, RESULT_NAME, row_params(index, n_samples, seed), runs_to_arrays(runs),
                              precomputed=precomputed)


def store_default_runs(checkpoint: Any, dataset: Any) -> list[Path]:
    """The page's default view (``DEFAULT_VIEW``) computed and stored beside the weights (the builder's mode)."""
    index, n_samples, seed = DEFAULT_VIEW["row"], DEFAULT_VIEW["samples"], DEFAULT_VIEW["seed"]
    row = acquisition_row(dataset.x_test[index], float(dataset.y_test[index]), dataset.schema, dataset.target,
                          f"test row {index}")
    runs = acquire_row_all(checkpoint.model, row, n_samples, seed)
    file = store_test_row_runs(checkpoint.path, index, n_samples, seed, runs, precomputed=True)
    return [] if file is None else [file]


# -- one step of a run, in raw units ----------------------------------------------------------------------------
@dataclass
class RawStep:
    """Step ``step`` of a run (``step`` features acquired) for one row, in raw units.

    ``observed`` (D,) — the features known when y is predicted; ``acquired`` — the feature this step
    revealed (−1 at step 0); ``rewards`` (D,) — the rewards that chose it (at step 0, those the first
    choice will be made from), NaN for non-candidates; ``centre``, ``low``, ``high`` (D,) — p(x_j | x_O)'s
    mean (mapped from model space) and 5 %/95 % quantiles, the value itself where observed;
    ``y_samples`` (S,) — draws of p(y | x_O); ``y_point`` — the prediction; ``nll`` and ``error`` in
    model units (NaN where y is unknown)."""

    step: int
    observed: np.ndarray
    acquired: int
    rewards: np.ndarray
    centre: np.ndarray
    low: np.ndarray
    high: np.ndarray
    y_samples: np.ndarray
    y_point: float
    nll: float
    error: float


def raw_step(run: AcquisitionRun, step: int, schema: Sequence[Any], target: Any, row: int = 0) -> RawStep:
    """Step ``step`` (clipped to 0..D) of row ``row`` of an ``AcquisitionRun``, in raw units."""
    last = run.observed.shape[0] - 1
    step = int(min(max(step, 0), last))
    decision = max(step - 1, 0)  # the rewards that led here (step 0: those of the first choice)
    rewards = run.rewards[decision, row] if run.rewards.shape[0] else np.full(len(schema), np.nan)
    return RawStep(
        step=step,
        observed=run.observed[step, row].astype(bool),
        acquired=int(run.acquired[step - 1, row]) if step > 0 else -1,
        rewards=np.asarray(rewards, dtype=float),
        centre=table_to_raw(run.imputed_mean[step, row], schema),
        low=table_to_raw(run.imputed_low[step, row], schema),
        high=table_to_raw(run.imputed_high[step, row], schema),
        y_samples=target.to_raw(run.y_samples[step, row]),
        y_point=float(target.to_raw(np.array([run.y_point[step, row]]))[0]),
        nll=float(run.y_nll[step, row]),
        error=float(run.error[step, row]),
    )


def acquisition_order(run: AcquisitionRun, row: int = 0) -> list[int]:
    """The features a run acquired for one row, in order (stops where no candidate was left)."""
    order = []
    for feature in run.acquired[:, row]:
        if feature < 0:
            break
        order.append(int(feature))
    return order


def raw_errors(run: AcquisitionRun, target: Any, y_raw: float | None, row: int = 0) -> np.ndarray:
    """(D+1,) error of the prediction after each step in raw units: |prediction − y| for a real target
    (the prediction mapped from model space), 0/1 for a wrong class; NaN where y is unknown."""
    steps = run.y_point.shape[0]
    if y_raw is None or not np.isfinite(y_raw):
        return np.full(steps, np.nan)
    if target.is_discrete:
        return np.asarray(run.error[:, row], dtype=float)
    return np.abs(target.to_raw(run.y_point[:, row]) - y_raw)


def padded_range(values: np.ndarray, pad: float = 0.05) -> tuple[float, float]:
    """[min, max] of the finite values, widened by ``pad`` of the span on each side (never empty)."""
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    if not values.size:
        return (0.0, 1.0)
    low, high = float(values.min()), float(values.max())
    span = high - low if high > low else max(abs(high), 1.0)
    return (low - pad * span, high + pad * span)


def feature_ranges(data_raw: np.ndarray, truth_raw: np.ndarray | None = None) -> np.ndarray:
    """(D, 2) raw-unit axis ranges, one fixed axis per feature: the 0.5–99.5 % span of the data (e.g. the
    train split) and the true value. Fixed across steps, so an interval visibly narrows as features are
    acquired; an interval wider than the data is cut at the axis rather than squashing everything else."""
    data_raw = np.asarray(data_raw, dtype=float)
    ranges = []
    for j in range(data_raw.shape[1]):
        column = data_raw[:, j][np.isfinite(data_raw[:, j])]
        kept = list(np.percentile(column, [0.5, 99.5])) if column.size else []
        if truth_raw is not None and np.isfinite(truth_raw[j]):
            kept.append(float(truth_raw[j]))
        ranges.append(padded_range(np.asarray(kept)))
    return np.array(ranges)


def target_range(y_samples_raw: np.ndarray, truth: float | None = None) -> tuple[float, float]:
    """A fixed axis for p(y | x_O) over all steps: the 0.5–99.5 % span of every step's draws and the truth."""
    values = np.asarray(y_samples_raw, dtype=float).ravel()
    values = values[np.isfinite(values)]
    kept = [np.percentile(values, [0.5, 99.5])] if values.size else []
    if truth is not None and np.isfinite(truth):
        kept.append(np.array([truth]))
    return padded_range(np.concatenate(kept)) if kept else (0.0, 1.0)


def class_frequencies(codes: np.ndarray, n_classes: int) -> np.ndarray:
    """Relative frequency of each class code 0..n_classes-1 among draws of a label."""
    codes = np.asarray(codes, dtype=float)
    codes = np.rint(codes[np.isfinite(codes)]).astype(int).clip(0, n_classes - 1)
    counts = np.bincount(codes, minlength=n_classes).astype(float)
    return counts / max(counts.sum(), 1.0)
