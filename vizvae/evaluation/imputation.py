"""Imputation task (thesis §5.4.2–5.4.3, Tables 5.3–5.5): ``python -m vizvae evaluate MODEL
--task imputation --json [-o rows=500] [-o samples=20] [-o seeds=0,1,2]``.

On a fixed, seeded subset of the test split, each pixel is hidden with probability 0.5 and the
label always (the §5.4 test protocol). Each model draws k posterior samples with its own sampler
(the Gaussian encoder for pvae/hvae, importance-weighted encoder draws for MIWAE, HMC chains for
hmcvae/hhvae) and reports, averaged over rows:

* ``missing_nll`` — −log p(x_U | x_O) by eq. (5.14), divided by the row's number of missing pixels
  (nats per missing pixel, the units of Table 5.3);
* ``target_nll`` — −log p(y | x_O) with p(y | x_O) ≈ Σ_i w_i p(y | x̂_i, h_1,i) (Table 5.4); for a real
  target (tables) the mixture of the predictor's Gaussians, in the standardised units of model space;
* ``target_accuracy`` — argmax of that mixture (Table 5.5; labels only).

Tables (Tables 5.1–5.2) use the same protocol — each feature hidden with probability 0.5, the target
always — on every test row, with the NLL of unobserved features averaged per feature, by default over
5 mask seeds. With several mask seeds the ``*_std`` entries are the standard deviations over seeds.
"""

from __future__ import annotations

import statistics
from typing import Any

import numpy as np
import torch

from vizvae.data import Dataset, protocol_masks
from vizvae.evaluation.rows import ALONE, RowSplit, scores_by_chunks
from vizvae.inference.imputation import missing_log_likelihood, predictive_target, target_log_likelihood
from vizvae.models.capabilities import PredictorModel, TunedHMCModel

SUBSET_SEED = 0


def sampler_name(model) -> str:
    """The model's own posterior sampler, in words (its declared ``native_sampler``)."""
    if isinstance(model, TunedHMCModel):
        return f"HMC (T={model.hmc.n_transitions}, LF={model.hmc.n_leapfrog})"
    if type(model).native_sampler == "importance":
        return "encoder + self-normalised importance weights"
    return "Gaussian encoder"


def test_subset(dataset: Dataset, rows: int, seed: int = SUBSET_SEED) -> np.ndarray:
    """Indices of a fixed, seeded subset of the test split."""
    order = np.random.default_rng(seed).permutation(len(dataset.x_test))
    return np.sort(order[: min(rows, len(order))])


def checkpoint_test_rows(checkpoint, rows: int) -> tuple[Any, torch.Tensor]:
    """(dataset, x): the checkpoint's own dataset and ``rows`` seeded test rows of it (``test_subset``)
    on the model's device, in its dtype."""
    from vizvae.checkpoint import checkpoint_dataset

    model = checkpoint.model
    dataset = checkpoint_dataset(checkpoint.config)
    x = torch.as_tensor(dataset.x_test[test_subset(dataset, rows)], device=model.device)
    return dataset, x.to(next(model.parameters()).dtype)


def imputation_scores(model, x: torch.Tensor, y: torch.Tensor | None, mask: torch.Tensor, n_samples: int,
                      generator: torch.Generator, batch_size: int = 50) -> dict[str, torch.Tensor]:
    """Per-row scores under one mask: missing NLL per missing entry, and target NLL / correctness."""
    missing_nll, target_nll, correct = [], [], []
    for start in range(0, len(x), batch_size):
        rows = slice(start, start + batch_size)
        xb, mb = x[rows], mask[rows]
        draws = model.posterior_draws(xb, mb, n_samples, generator)  # label hidden: y not given
        samples = draws.samples.detach()
        weights = None if draws.log_weights is None else draws.log_weights.detach()
        n_missing = (~mb).sum(-1).clamp_min(1)
        missing_nll.append(-missing_log_likelihood(model, xb, mb, samples, weights) / n_missing)
        if y is None or not (isinstance(model, PredictorModel) and model.has_predictor):
            continue
        target_nll.append(-target_log_likelihood(model, xb, mb, y[rows], samples, weights))
        if model.target_kind == "categorical":
            probs = predictive_target(model, xb, mb, samples, weights)
            correct.append((probs.argmax(-1) == y[rows].long()).to(x.dtype))
    scores = {"missing_nll": torch.cat(missing_nll)}
    if target_nll:
        scores["target_nll"] = torch.cat(target_nll)
    if correct:
        scores["target_accuracy"] = torch.cat(correct)
    return scores


def evaluate_imputation(model, dataset: Dataset, rows: int = 500, n_samples: int = 20,
                        seeds: tuple[int, ...] = (0,), subset_seed: int = SUBSET_SEED,
                        split: RowSplit = ALONE) -> dict[str, Any]:
    """The imputation metrics of Tables 5.3–5.5 (see the module docstring), as a JSON-able dict.
    With ``split``, the rows are shared between the ranks (``evaluation.rows``)."""
    device = model.device
    index = test_subset(dataset, rows, subset_seed)
    x = torch.as_tensor(dataset.x_test[index], device=device)
    y = None if dataset.y_test is None else torch.as_tensor(dataset.y_test[index], device=device)
    model.eval()
    per_seed: dict[str, list[float]] = {}
    for seed in seeds:
        generator = torch.Generator(device=device).manual_seed(seed)
        mask, _ = protocol_masks(len(x), x.shape[1], "test", generator, device)  # label always hidden
        if split.split:
            def score(part: slice, chunk_stream: torch.Generator) -> dict[str, list[float]]:
                scores = imputation_scores(model, x[part], None if y is None else y[part], mask[part], n_samples,
                                           chunk_stream)
                return {key: values.tolist() for key, values in scores.items()}

            merged = scores_by_chunks(score, len(x), 50, seed, split, device)
            for key, values in merged.items():
                per_seed.setdefault(key, []).append(statistics.fmean(values))
            continue
        for key, values in imputation_scores(model, x, y, mask, n_samples, generator).items():
            per_seed.setdefault(key, []).append(float(values.mean()))
    result: dict[str, Any] = {}
    for key, values in per_seed.items():
        result[key] = round(statistics.fmean(values), 4)
        result[f"{key}_std"] = round(statistics.stdev(values), 4) if len(values) > 1 else 0.0
    result.update(imputation_rows=int(len(x)), imputation_samples=int(n_samples),
                  imputation_seeds=list(seeds), imputation_sampler=sampler_name(model))
    return result


def imputation_task(checkpoint, options: dict[str, Any]) -> dict[str, Any]:
    from vizvae.checkpoint import checkpoint_dataset
    from vizvae.errors import VizvaeError

    model = checkpoint.model
    if not isinstance(model, PredictorModel):
        raise VizvaeError(f"{checkpoint.name}: the imputation task needs a model with a predictor and masks "
                          "(pvae, hvae, miwae, hmcvae, hhvae, or the mixed-type vaem ... hhvaem)")
    dataset = checkpoint_dataset(checkpoint.config)
    is_table = dataset.kind == "table"
    default_seeds = "0,1,2,3,4" if is_table else "0"
    seeds = tuple(int(s) for s in str(options.get("seeds") or default_seeds).split(","))  # mask seeds, e.g. 0,1,2
    result = evaluate_imputation(model, dataset, rows=int(options.get("rows") or (len(dataset.x_test) if is_table else 500)),
                                 n_samples=int(options.get("samples") or (100 if is_table else 20)), seeds=seeds,
                                 split=options.get("row_split") or ALONE)
    return {"model": checkpoint.name, "dataset": dataset.name, **result}
