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
from typing import Any

import torch

from vizvae.data import Dataset
from vizvae.data.masks import square_hole_mask
from vizvae.evaluation.imputation import test_subset
from vizvae.inference.imputers import LATENT_METHODS, METHODS, impute, supported_methods

ROWS = 200
HOLE = 14


def inpainting_masks(n: int, image_hw: tuple[int, int], hole: int = HOLE, seed: int = 0,
                     device: torch.device | str | None = None) -> torch.Tensor:
    """(n, H·W) masks, each hiding one seeded ``hole`` × ``hole`` square (True = observed)."""
    generator = torch.Generator().manual_seed(int(seed))
    return square_hole_mask(n, image_hw, hole, generator).to(device)


def evaluate_inpainting(model, dataset: Dataset, rows: int = ROWS, hole: int = HOLE, n_samples: int = 20,
                        n_proposals: int = 500, n_iterations: int = 50, methods: tuple[str, ...] | None = None,
                        seed: int = 0, batch_size: int = 25) -> dict[str, Any]:
    """The inpainting scores of every method in ``methods`` (default: all the model supports), as a
    JSON-able dict (see the module docstring)."""
    if not dataset.image_shape:
        raise ValueError(f"inpainting needs an image dataset; {dataset.name} is a table")
    available = supported_methods(model)
    methods = available if methods is None else tuple(methods)
    unsupported = [m for m in methods if m not in available]
    if unsupported:
        raise ValueError(f"{', '.join(unsupported)} not supported by this model; it supports {', '.join(available)}")
    device = model.device
    model.eval()
    index = test_subset(dataset, rows)
    x = torch.as_tensor(dataset.x_test[index], device=device)
    mask = inpainting_masks(len(x), tuple(dataset.image_shape[1:]), hole, seed, device)
    feature_mean = torch.as_tensor(dataset.x_train.mean(0), device=device)
    scores: dict[str, dict[str, Any]] = {}
    for method in methods:
        generator = torch.Generator(device=device).manual_seed(int(seed))
        nll, mse, seconds = [], [], 0.0
        for start in range(0, len(x), batch_size):
            rows_ = slice(start, start + batch_size)
            result = impute(model, x[rows_], mask[rows_], method, n_samples=n_samples, generator=generator,
                            n_iterations=n_iterations, n_proposals=n_proposals, feature_mean=feature_mean,
                            predict_labels=False)
            seconds += result.runtime_s
            mse += result.mse.tolist()
            if result.missing_nll is not None:
                nll += result.missing_nll_per_entry.tolist()
        scores[method] = {"missing_nll": round(statistics.fmean(nll), 4) if nll else None,
                          "mse": round(statistics.fmean(mse), 4), "seconds": round(seconds, 2)}
    return {"rows": int(len(x)), "hole": int(hole), "samples": int(n_samples), "proposals": int(n_proposals),
            "iterations": int(n_iterations), "seed": int(seed), "methods": scores}


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
    methods = options.get("methods")
    if methods:
        methods = tuple(m.strip() for m in str(methods).split(",") if m.strip())
        unknown = [m for m in methods if m not in METHODS]
        if unknown:
            raise VizvaeError(f"unknown inpainting method(s) {unknown}; expected some of {', '.join(METHODS)}")
    try:
        result = evaluate_inpainting(
            model, dataset, rows=int(options.get("rows") or ROWS), hole=int(options.get("hole") or HOLE),
            n_samples=int(options.get("samples") or 20), n_proposals=int(options.get("proposals") or 500),
            n_iterations=int(options.get("iterations") or 50), methods=methods or None,
            seed=int(options.get("seed") or 0))
    except ValueError as err:
        raise VizvaeError(f"{checkpoint.name}: {err}") from None
    return {"model": checkpoint.name, "dataset": dataset.name, **result}
