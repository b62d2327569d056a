"""The Inpainting page's results in the checkpoint cache (``vizvae.inference.cache``): one run of
methods on one image, keyed by what it depends on — the image and mask (by their SHA-256), the rows
(model, method), the sampler settings and the SHA-256 of the code that computes them — so that the page's first Run on a shipped model reads
what ``python -m vizvae precompute --tasks inpainting`` stored, and any other run is computed once
and kept in the user cache. Plain arrays and JSON text in a ``.npz``: never a pickle.

``DEFAULT_VIEW`` is the page's first view; the key is built from the inputs themselves, so a
default that drifted from the page's would only mean a computation, never a wrong result.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from vizvae.evaluation.inpainting_view import InpaintingMask, InpaintingResult
from vizvae.inference import cache

NAME = "inpainting"
ARRAY_FIELDS = ("mean", "variance", "decoded", "samples")
SCALAR_FIELDS = ("method", "missing_nll", "missing_nll_per_entry", "mse", "n_missing", "label_source", "runtime",
                 "message")
# test image 0 with a centred 14 x 14 hole, the default methods the model supports, 32 draws,
# 100 Gibbs sweeps, 1000 SIR proposals, seed 0
DEFAULT_VIEW: dict[str, Any] = {"image": 0, "hole": 14,
                                "methods": ("encoder", "hmc", "pseudo_gibbs", "mwg", "sir"),
                                "settings": {"n_samples": 32, "n_iterations": 100, "n_proposals": 1000, "seed": 0}}


def _digest(array: np.ndarray) -> str:
    array = np.ascontiguousarray(array)
    return hashlib.sha256(f"{array.dtype.str}{array.shape}".encode() + array.tobytes()).hexdigest()[:32]


# the sources an inpainting run goes through: a change to any of them retires the stored runs
SOURCES = ("evaluation/inpainting_view.py", "inference/imputers.py", "inference/gibbs.py", "inference/importance.py",
           "kernels/hmc.py", "kernels/adapt.py", "kernels/importance.py", "models/samplers.py", "models/composed.py")


def code_fingerprint() -> str:
    return cache.source_fingerprint(SOURCES)[:32]


def result_params(x: np.ndarray, observed: np.ndarray, rows: Sequence[tuple[str, str]],
                  settings: dict[str, int]) -> dict[str, Any]:
    """What a run's results depend on (besides the weights, which the cache stamps itself): the inputs,
    the rows, the settings and the code that computes them."""
    return {"x": _digest(np.asarray(x, dtype=np.float32)), "observed": _digest(np.asarray(observed, dtype=bool)),
            "rows": [[str(name), str(method)] for name, method in rows],
            "settings": {key: int(value) for key, value in sorted(settings.items())}, "code": code_fingerprint()}


def to_arrays(results: Sequence[InpaintingResult | str]) -> dict[str, np.ndarray]:
    arrays: dict[str, np.ndarray] = {"count": np.array(len(results))}
    for i, result in enumerate(results):
        if isinstance(result, str):
            arrays[f"{i}.error"] = np.array(result)
            continue
        for field in ARRAY_FIELDS:
            arrays[f"{i}.{field}"] = np.asarray(getattr(result, field))
        if result.labels is not None:
            arrays[f"{i}.labels"] = np.asarray(result.labels)
        scalars = {field: getattr(result, field) for field in SCALAR_FIELDS}
        arrays[f"{i}.meta"] = np.array(json.dumps({**scalars, "diagnostics": result.diagnostics}, allow_nan=True))
    return arrays


def from_arrays(arrays: dict[str, np.ndarray]) -> list[InpaintingResult | str] | None:
    """The results back, or None when the file does not hold what ``to_arrays`` writes."""
    try:
        results: list[InpaintingResult | str] = []
        for i in range(int(arrays["count"])):
            if f"{i}.error" in arrays:
                results.append(str(arrays[f"{i}.error"]))
                continue
            meta = json.loads(str(arrays[f"{i}.meta"]))
            labels = arrays.get(f"{i}.labels")
            results.append(InpaintingResult(
                **{field: arrays[f"{i}.{field}"] for field in ARRAY_FIELDS},
                **{field: meta[field] for field in SCALAR_FIELDS}, labels=labels,
                diagnostics={str(k): float(v) for k, v in meta["diagnostics"].items()}))
        return results
    except (KeyError, ValueError, TypeError):
        return None


def load(folder: str | Path | None, params: dict[str, Any]) -> list[InpaintingResult | str] | None:
    if folder is None:
        return None
    arrays = cache.load_arrays(folder, NAME, params)
    return None if arrays is None else from_arrays(arrays)


def store(folder: str | Path | None, params: dict[str, Any], results: Sequence[InpaintingResult | str], *,
          precomputed: bool = False) -> Path | None:
    if folder is None:
        return None
    return cache.store_arrays(folder, NAME, params, to_arrays(results), precomputed=precomputed)


def default_inputs(x_test: np.ndarray, image_shape: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """The page's first image and mask: test image 0 under a centred square hole."""
    hw = tuple(image_shape[1:])
    size = min(DEFAULT_VIEW["hole"], *hw)
    x = np.asarray(x_test[DEFAULT_VIEW["image"]], dtype=np.float32)
    mask = InpaintingMask("square", size=size, top=(hw[0] - size) // 2, left=(hw[1] - size) // 2)
    return x, mask.observed(tuple(image_shape))


INPAINT_MODELS = ("vae", "pvae", "hvae", "miwae", "hmcvae", "hhvae")  # the page's models: one latent space


def store_default_run(checkpoint: Any, dataset: Any) -> list[Path]:
    """Compute the page's first Run on ``checkpoint`` (``DEFAULT_VIEW``) and store it with the checkpoint."""
    from vizvae.evaluation.classifier import default_classifier_folder, load_classifier
    from vizvae.errors import VizvaeError
    from vizvae.evaluation.inpainting_view import inpaint_rows
    from vizvae.inference.imputers import METHODS, ImputationSettings, supported_methods

    if checkpoint.config.get("model") not in INPAINT_MODELS or dataset.kind != "image":
        return []
    available = supported_methods(checkpoint.model)
    rows = [(checkpoint.name, method) for method in DEFAULT_VIEW["methods"] if method in available]
    x, observed = default_inputs(dataset.x_test, dataset.image_shape)
    try:
        classifier = load_classifier(default_classifier_folder())
    except VizvaeError:
        classifier = None
    results = inpaint_rows(lambda *_: None, {checkpoint.name: checkpoint.model}, rows,
                           [METHODS[method].label for _, method in rows], x, observed, dataset.image_shape,
                           settings=ImputationSettings(**DEFAULT_VIEW["settings"]),
                           feature_means={checkpoint.name: dataset.x_train.mean(0)}, classifier=classifier)
    if any(isinstance(r, str) for r in results):
        raise VizvaeError(f"{checkpoint.name}: the default inpainting run failed: "
                          f"{next(r for r in results if isinstance(r, str))}")
    file = store(checkpoint.path, result_params(x, observed, rows, DEFAULT_VIEW["settings"]), results,
                 precomputed=True)
    return [] if file is None else [file]
