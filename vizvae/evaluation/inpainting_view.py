"""One image's inpainting, reduced to what a comparison of methods shows (thesis Fig. 5.6): the mask a
person chose, each method's result row (mean imputation, a strip of draws, per-pixel variance, the NLL
and MSE of the hidden pixels, the predicted label and where it comes from), and the brush that paints
a pixel grid.

Everything here works on a single image (features,) and returns numpy arrays and floats, ready to
cache and to draw.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np
import torch
from scipy.ndimage import binary_dilation

from vizvae.data.masks import box_mask, half_mask, mcar_mask
from vizvae.inference.imputers import Imputation, ImputationSettings, classifier_label_probs, impute
from vizvae.models.capabilities import PredictorModel

DIGIT_SHAPE = (1, 28, 28)  # the images vizvae's digit classifier reads
SHOWN = 8  # draws kept per result row
MIN_VMAX = 0.25  # the uncertainty colour scale never ends below a Bernoulli pixel's largest variance


# -- the mask ---------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class InpaintingMask:
    """Which pixels are hidden: a ``size`` × ``size`` square with its top-left corner at (``top``,
    ``left``), one half of the image, each pixel at random with probability ``rate`` (seeded by
    ``seed``), or ``painted`` by hand (a flat bool array, True = observed)."""

    kind: str  # "square" | "half" | "mcar" | "paint"
    size: int = 14
    top: int = 7
    left: int = 7
    half: str = "top"
    rate: float = 0.5
    seed: int = 0

    def observed(self, image_shape: Sequence[int], painted: np.ndarray | None = None) -> np.ndarray:
        """(channels·H·W,) bool, True where a pixel is observed; one mask for every channel."""
        channels, height, width = image_shape
        hw = (height, width)
        if self.kind == "square":
            top, left = min(self.top, height - self.size), min(self.left, width - self.size)
            mask = box_mask(hw, top, left, self.size, self.size)[0].numpy()
        elif self.kind == "half":
            mask = half_mask(hw, self.half).numpy()
        elif self.kind == "mcar":
            generator = torch.Generator().manual_seed(int(self.seed))
            mask = mcar_mask((height * width,), self.rate, generator).numpy()
        elif self.kind == "paint":
            mask = painted if painted is not None else np.ones(height * width, dtype=bool)
        else:
            raise ValueError(f"unknown mask kind {self.kind!r}; expected square, half, mcar or paint")
        mask = np.asarray(mask, dtype=bool).reshape(-1)
        return mask if len(mask) == channels * height * width else np.tile(mask, channels)


def centred_square(image_hw: tuple[int, int], size: int) -> np.ndarray:
    """(H·W,) bool: a ``size`` × ``size`` hole in the middle of the image (True = observed)."""
    height, width = image_hw
    return box_mask(image_hw, (height - size) // 2, (width - size) // 2, size, size)[0].numpy()


def thick_brush(indices: Sequence[int], image_hw: tuple[int, int]) -> list[int]:
    """The flat indices of the pixels ``indices`` and their 8 neighbours (inside the image): a thicker
    brush on a pixel grid."""
    grid = np.zeros(image_hw, dtype=bool)
    grid.flat[np.asarray(indices, dtype=int)] = True
    return np.flatnonzero(binary_dilation(grid, structure=np.ones((3, 3), dtype=bool))).tolist()


# -- one method's result ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class InpaintingResult:
    """One method on one image. ``mean``, ``variance`` (features,); ``decoded``, ``samples`` (≤ SHOWN,
    features). ``missing_nll`` is −log p(x_U | x_O) in nats over the hidden pixels (None for a point
    fill), ``missing_nll_per_entry`` the same per hidden pixel; ``labels`` (classes,) is p(y | x_O)."""

    method: str
    mean: np.ndarray
    variance: np.ndarray
    decoded: np.ndarray
    samples: np.ndarray
    missing_nll: float | None
    missing_nll_per_entry: float | None
    mse: float | None
    n_missing: int
    labels: np.ndarray | None
    label_source: str | None  # "predictor" | "digit classifier" | None
    runtime: float
    message: str | None = None
    diagnostics: dict[str, float] = field(default_factory=dict)

    @property
    def predicted_label(self) -> int | None:
        return None if self.labels is None else int(np.argmax(self.labels))

    @property
    def label_probability(self) -> float | None:
        return None if self.labels is None else float(self.labels[self.predicted_label])

    def strip(self, shows: str) -> np.ndarray:
        """The draws a result row shows: the decoder means at the latent draws ("decoded", as in Fig. 5.6)
        or the samples x̂_U themselves ("samples")."""
        if shows not in ("decoded", "samples"):
            raise ValueError(f"a strip shows 'decoded' or 'samples', not {shows!r}")
        return self.decoded if shows == "decoded" else self.samples

    def scores(self, row: str) -> dict[str, Any]:
        """The line of the scores table (``vizvae.viz.inpainting.scores_table``) for this result."""
        return {"row": row, "hidden pixels": self.n_missing, "NLL (nats)": self.missing_nll,
                "NLL per hidden pixel": self.missing_nll_per_entry, "MSE": self.mse,
                "predicted label": self.predicted_label, "p(label)": self.label_probability,
                "label from": self.label_source, "runtime (s)": round(self.runtime, 3)}


def label_probabilities(model: Any, imputation: Imputation, image_shape: Sequence[int],
                        classifier: Callable[[torch.Tensor], torch.Tensor] | None = None,
                        ) -> tuple[torch.Tensor | None, str | None]:
    """p(y | x_O) of the first row, (classes,), and where it comes from: the model's own categorical
    predictor when it has one; else the digit classifier on the decoded draws, for digit-shaped
    images; else (None, None)."""
    if (imputation.label_probs is not None and isinstance(model, PredictorModel)
            and model.target_kind == "categorical"):
        return imputation.label_probs[0], "predictor"
    if classifier is not None and tuple(image_shape) == DIGIT_SHAPE:
        return classifier_label_probs(classifier, imputation)[0], "digit classifier"
    return None, None


def inpainting_result(model: Any, imputation: Imputation, image_shape: Sequence[int],
                      classifier: Callable[[torch.Tensor], torch.Tensor] | None = None,
                      shown: int = SHOWN) -> InpaintingResult:
    """The first row of ``imputation`` as a result row, keeping ``shown`` of its draws."""
    labels, label_source = label_probabilities(model, imputation, image_shape, classifier)
    per_entry = imputation.missing_nll_per_entry
    return InpaintingResult(
        method=imputation.method, mean=_array(imputation.mean[0]), variance=_array(imputation.variance[0]),
        decoded=_array(imputation.decoded[0, :shown]), samples=_array(imputation.samples[0, :shown]),
        missing_nll=_scalar(imputation.missing_nll), missing_nll_per_entry=_scalar(per_entry),
        mse=_scalar(imputation.mse), n_missing=int(imputation.n_missing[0]), labels=_array(labels),
        label_source=label_source, runtime=imputation.runtime_s, message=imputation.message,
        diagnostics=dict(imputation.diagnostics))


def inpaint_image(model: Any, x: np.ndarray, observed: np.ndarray, method: str, image_shape: Sequence[int], *,
                  feature_mean: np.ndarray | None = None, classifier: Callable | None = None,
                  settings: ImputationSettings = ImputationSettings()) -> InpaintingResult:
    """``method`` on one image ``x`` (features,) with ``observed`` (features,) bool: ``impute`` on a batch
    of one with ``settings``, then its result row."""
    mean = None if feature_mean is None else torch.as_tensor(feature_mean)
    imputation = impute(model, torch.as_tensor(x)[None], torch.as_tensor(observed)[None], method,
                        settings, feature_mean=mean)
    return inpainting_result(model, imputation, image_shape, classifier)


def uncertainty_vmax(results: Sequence[InpaintingResult], binarized: bool) -> float:
    """The top of the shared uncertainty colour scale: 0.25 (a Bernoulli pixel's largest variance) for
    binarised images, else the largest variance of any result (at least 0.25)."""
    if binarized:
        return MIN_VMAX
    return max([MIN_VMAX] + [float(result.variance.max()) for result in results])


def _array(t: torch.Tensor | None) -> np.ndarray | None:
    return None if t is None else t.detach().float().cpu().numpy()


def _scalar(t: torch.Tensor | None) -> float | None:
    return None if t is None else float(t[0])


# -- many rows, as background work ---------------------------------------------------------------------------
def inpainting_work_units(method: str, settings: ImputationSettings = ImputationSettings()) -> float:
    """A method's size in network passes over one image, to estimate its time from earlier runs:
    one for the fills, a pass per draw for the encoder, per chain, transition and leapfrog step
    (with its gradient, about three passes) for HMC, per chain and sweep for the Gibbs samplers
    (two for Metropolis-within-Gibbs, which also scores each proposal), per proposal for SIR."""
    n = settings.n_samples
    units = {"zero": 1.0, "mean": 1.0, "encoder": float(n),
             "hmc": 3.0 * n * settings.n_transitions * (settings.n_leapfrog + 1),
             "pseudo_gibbs": float(n * settings.n_iterations), "mwg": 2.0 * n * settings.n_iterations,
             "sir": float(settings.n_proposals)}
    return units[method]


def inpaint_rows(report: Callable[..., None], models: dict[str, Any], rows: Sequence[tuple[str, str]],
                 labels: Sequence[str], x: np.ndarray, observed: np.ndarray, image_shape: Sequence[int], *,
                 settings: ImputationSettings, feature_means: dict[str, np.ndarray] | None = None,
                 classifier: Callable | None = None) -> list[InpaintingResult | str]:
    """Each row (model name, method) of a comparison: its result, or the message of its failure (one
    method failing on an input must not stop the others). ``report(fraction, message)`` is told
    before each row (``vizvae.jobs``: it raises ``Cancelled`` to stop between rows)."""
    results: list[InpaintingResult | str] = []
    feature_means = feature_means or {}
    for i, ((name, method), label) in enumerate(zip(rows, labels)):
        report(i / len(rows), f"{label} ({i + 1} of {len(rows)})")
        try:
            results.append(inpaint_image(models[name], x, observed, method, image_shape, classifier=classifier,
                                         feature_mean=feature_means.get(name), settings=settings))
        except Exception as err:  # noqa: BLE001 - reported in its row
            results.append(f"{type(err).__name__}: {err}")
    report(1.0, f"{len(rows)} row(s) done")
    return results
