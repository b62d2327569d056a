"""Inpainting task (thesis §5.4.5, Fig. 5.6; Mattei's slides): ``python -m vizvae evaluate MODEL
--task inpainting --json [-o rows=200] [-o hole=14] [-o samples=20] [-o proposals=500]
[-o iterations=50] [-o methods=encoder,hmc,...] [-o seed=0]``.

A fixed, seeded set of ``rows`` test images (the imputation task's subset), each with one
``hole`` × ``hole`` square hidden at a seeded position (the MNIST protocol of SPEC §2: 14 × 14). Every
method the model supports (``vizvae.inference.imputers``) fills the hole, and the task reports per
method, averaged over the images:

* ``missing_nll`` — −log p(x_U | x_O) per hidden pixel (nats; eq. 5.14 for the latent methods, the
  independent Bernoulli marginals for the mean fill, null for the zero fill, which is a point);
* ``mse`` — the squared error of the mean imputation per hidden pixel;
* ``seconds`` — wall time of the method over all the images.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Any

import torch

from vizvae.data import Dataset
from vizvae.data.masks import square_hole_mask
from vizvae.evaluation.imputation import test_subset
from vizvae.evaluation.rows import ALONE, RowSplit, scores_by_chunks
from vizvae.inference.imputers import LATENT_METHODS, METHODS, ImputationSettings, impute, supported_methods

ROWS = 200
HOLE = 14


def inpainting_masks(n: int, image_hw: tuple[int, int], hole: int = HOLE, seed: int = 0,
                     device: torch.device | str | None = None) -> torch.Tensor:
    """(n, H·W) masks, each hiding one seeded ``hole`` × ``hole`` square (True = observed)."""
    generator = torch.Generator().manual_seed(int(seed))
    return square_hole_mask(n, image_hw, hole, generator).to(device)


@dataclass(frozen=True)
class InpaintingSettings:
    """How an inpainting evaluation is run (``python -m vizvae evaluate MODEL --task inpainting``)."""

    rows: int = ROWS  # test rows (a fixed subset)
    hole: int = HOLE  # side of the hidden square, pixels
    n_samples: int = 20  # imputations per row
    n_proposals: int = 500  # importance-sampling proposals
    n_iterations: int = 50  # Gibbs-style iterations
    methods: tuple[str, ...] | None = None  # None: every method the model supports
    seed: int = 0  # masks and every method's draws
    batch_size: int = 25  # rows per call of a method

    @classmethod
    def from_options(cls, options: dict[str, Any]) -> InpaintingSettings:
        """From the CLI's ``-o KEY=VALUE`` options (rows, hole, samples, proposals, iterations, methods, seed)."""
        methods = tuple(m.strip() for m in str(options.get("methods") or "").split(",") if m.strip())
        return cls(rows=int(options.get("rows") or ROWS), hole=int(options.get("hole") or HOLE),
                   n_samples=int(options.get("samples") or 20), n_proposals=int(options.get("proposals") or 500),
                   n_iterations=int(options.get("iterations") or 50), methods=methods or None,
                   seed=int(options.get("seed") or 0))


def evaluate_inpainting(model, dataset: Dataset, settings: InpaintingSettings = InpaintingSettings(),
                        split: RowSplit = ALONE) -> dict[str, Any]:
    """The inpainting scores of every method in ``settings.methods`` (default: all the model
    supports), as a JSON-able dict (see the module docstring). With ``split``, the rows are shared
    between the ranks (``evaluation.rows``)."""
    if not dataset.image_shape:
        raise ValueError(f"inpainting needs an image dataset; {dataset.name} is a table")
    available = supported_methods(model)
    methods = available if settings.methods is None else tuple(settings.methods)
    unsupported = [m for m in methods if m not in available]
    if unsupported:
        raise ValueError(f"{', '.join(unsupported)} not supported by this model; it supports {', '.join(available)}")
    device = model.device
    model.eval()
    index = test_subset(dataset, settings.rows)
    x = torch.as_tensor(dataset.x_test[index], device=device)
    mask = inpainting_masks(len(x), tuple(dataset.image_shape[1:]), settings.hole, settings.seed, device)
    feature_mean = torch.as_tensor(dataset.x_train.mean(0), device=device)
    scores = {method: _method_scores(model, x, mask, method, feature_mean, settings, split) for method in methods}
    return {"rows": int(len(x)), "hole": int(settings.hole), "samples": int(settings.n_samples),
            "proposals": int(settings.n_proposals), "iterations": int(settings.n_iterations),
            "seed": int(settings.seed), "methods": scores}


def _method_scores(model, x: torch.Tensor, mask: torch.Tensor, method: str, feature_mean: torch.Tensor,
                   settings: InpaintingSettings, split: RowSplit = ALONE) -> dict[str, Any]:
    """One method over all rows, ``settings.batch_size`` at a time, from one seeded generator (split
    between ranks: one stream per batch, ``evaluation.rows``)."""
    imputation = ImputationSettings(n_samples=settings.n_samples, n_iterations=settings.n_iterations,
                                    n_proposals=settings.n_proposals, predict_labels=False)

    def score(rows: slice, generator: torch.Generator) -> dict[str, list[float]]:
        result = impute(model, x[rows], mask[rows], method, imputation, generator=generator, feature_mean=feature_mean)
        nll = [] if result.missing_nll is None else result.missing_nll_per_entry.tolist()
        return {"mse": result.mse.tolist(), "nll": nll, "seconds": [result.runtime_s]}

    if split.split:
        scores = scores_by_chunks(score, len(x), settings.batch_size, settings.seed, split, model.device)
    else:
        generator = torch.Generator(device=model.device).manual_seed(int(settings.seed))
        scores = {"mse": [], "nll": [], "seconds": []}
        for start in range(0, len(x), settings.batch_size):
            for key, values in score(slice(start, start + settings.batch_size), generator).items():
                scores[key] += values
    nll, mse = scores.get("nll", []), scores["mse"]
    return {"missing_nll": round(statistics.fmean(nll), 4) if nll else None,
            "mse": round(statistics.fmean(mse), 4), "seconds": round(sum(scores["seconds"]), 2)}


def inpainting_task(checkpoint, options: dict[str, Any]) -> dict[str, Any]:
    from vizvae.checkpoint import checkpoint_dataset
    from vizvae.errors import VizvaeError

    model = checkpoint.model
    if not set(LATENT_METHODS) & set(supported_methods(model)):
        raise VizvaeError(f"{checkpoint.name}: inpainting needs a model with one latent space that encodes masked "
                          "images (vae, pvae, hvae, miwae, hmcvae, hhvae)")
    dataset = checkpoint_dataset(checkpoint.config)
    if not dataset.image_shape:
        raise VizvaeError(f"{checkpoint.name}: inpainting needs an image model; {dataset.name} is a table")
    settings = InpaintingSettings.from_options(options)
    unknown = [m for m in settings.methods or () if m not in METHODS]
    if unknown:
        raise VizvaeError(f"unknown inpainting method(s) {unknown}; expected some of {', '.join(METHODS)}")
    try:
        result = evaluate_inpainting(model, dataset, settings, split=options.get("row_split") or ALONE)
    except ValueError as err:
        raise VizvaeError(f"{checkpoint.name}: {err}") from None
    return {"model": checkpoint.name, "dataset": dataset.name, **result}
