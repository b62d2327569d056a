"""``python -m vizvae evaluate MODEL --task fd --json``: sample quality as a Fréchet distance
(Heusel et al. 2017; thesis Table 4.1).

FD = ‖μ_r − μ_g‖² + Tr(Σ_r + Σ_g − 2 (Σ_r Σ_g)^{1/2}) between Gaussians fitted to the features
of real test images and of generated images. The features come from vizvae's own small digit
classifier (``classifier.py``), not Inception: the numbers are comparable between models
scored here, not with published FIDs.

Each repetition draws a fresh set of n generated images (decoder means of prior samples; for
UG-VAE, groups of B share one β) and compares them with n test images drawn without
replacement; we report mean ± std over repetitions. Options: ``n`` (1000), ``repetitions``
(9, as the thesis), ``seed`` (0), ``classifier`` (a folder; default the shipped one).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vizvae.checkpoint import Checkpoint, checkpoint_dataset
from vizvae.errors import VizvaeError
from vizvae.inference import cache

MAX_REPETITIONS = 9  # the thesis's count; what the builder ships, and any fewer are its first ones


def gaussian_statistics(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean (d,) and unbiased covariance (d, d) of features (n, d)."""
    features = np.asarray(features, dtype=np.float64)
    return features.mean(0), np.cov(features, rowvar=False)


def _psd_sqrt(matrix: np.ndarray) -> np.ndarray:
    values, vectors = np.linalg.eigh((matrix + matrix.T) / 2)
    return (vectors * np.sqrt(np.clip(values, 0.0, None))) @ vectors.T


def frechet_distance(mean_a: np.ndarray, cov_a: np.ndarray, mean_b: np.ndarray, cov_b: np.ndarray) -> float:
    """Squared 2-Wasserstein distance between N(mean_a, cov_a) and N(mean_b, cov_b).

    Tr((Σ_a Σ_b)^{1/2}) = Tr((Σ_a^{1/2} Σ_b Σ_a^{1/2})^{1/2}): the second matrix is symmetric
    PSD, so its square root comes from an eigendecomposition (no complex sqrtm round-off)."""
    root_a = _psd_sqrt(np.asarray(cov_a, dtype=np.float64))
    middle = root_a @ np.asarray(cov_b, dtype=np.float64) @ root_a
    trace_sqrt = np.sqrt(np.clip(np.linalg.eigvalsh((middle + middle.T) / 2), 0.0, None)).sum()
    diff = np.asarray(mean_a, dtype=np.float64) - np.asarray(mean_b, dtype=np.float64)
    return float(diff @ diff + np.trace(cov_a) + np.trace(cov_b) - 2.0 * trace_sqrt)


@dataclass
class FrechetResult:
    values: list[float]

    @property
    def mean(self) -> float:
        return float(np.mean(self.values))

    @property
    def std(self) -> float:
        return float(np.std(self.values))


def fd_repetitions(model, classifier, real_images: np.ndarray, n: int = 1000, repetitions: int = 9,
                   seed: int = 0) -> FrechetResult:
    """FD between n generated and n real images, ``repetitions`` times with fresh draws."""
    from vizvae.evaluation.classifier import classifier_features

    real_features = classifier_features(classifier, np.asarray(real_images, dtype=np.float32))  # once
    n = min(n, len(real_features))
    rng = np.random.default_rng(seed)
    values = []
    for repetition in range(repetitions):
        generator = torch.Generator(device=model.device).manual_seed(seed + repetition)
        with torch.no_grad():
            generated = model.generate(n, generator).float().cpu().numpy()
        stats_real = gaussian_statistics(real_features[rng.choice(len(real_features), size=n, replace=False)])
        stats_generated = gaussian_statistics(classifier_features(classifier, generated))
        values.append(frechet_distance(*stats_real, *stats_generated))
    return FrechetResult(values)


def fd_params(classifier_folder: str | Path, n: int, repetitions: int, seed: int) -> dict[str, Any]:
    return {"n": int(n), "repetitions": int(repetitions), "seed": int(seed),
            "classifier_sha256": cache.checkpoint_sha256(classifier_folder)}


def stored_fd(folder: str | Path, n: int, repetitions: int, seed: int,
              classifier_folder: str | Path) -> FrechetResult | None:
    """A stored result for these settings: one of exactly ``repetitions``, or the first
    ``repetitions`` of a longer stored run (repetition r draws with seed + r and the real subsets
    come from one generator in order, so a run of k is the first k of a longer run)."""
    for stored_repetitions in sorted({repetitions, MAX_REPETITIONS}):
        if stored_repetitions < repetitions:
            continue
        stored = cache.load_json(folder, "fd", fd_params(classifier_folder, n, stored_repetitions, seed))
        if isinstance(stored, list) and len(stored) == stored_repetitions:
            return FrechetResult([float(v) for v in stored[:repetitions]])
    return None


def cached_fd(folder: str | Path | None, model, classifier_folder: str | Path, real_images: np.ndarray,
              n: int = 1000, repetitions: int = 3, seed: int = 0, precomputed: bool = False) -> FrechetResult:
    """``fd_repetitions`` of the checkpoint in ``folder``, read from the checkpoint cache when a
    result for these settings (and this classifier) is stored, else computed and stored."""
    from vizvae.evaluation.classifier import load_classifier

    n = min(n, len(real_images))
    if folder is not None and not precomputed:
        stored = stored_fd(folder, n, repetitions, seed, classifier_folder)
        if stored is not None:
            return stored
    classifier = load_classifier(classifier_folder, device=model.device)
    result = fd_repetitions(model, classifier, real_images, n=n, repetitions=repetitions, seed=seed)
    if folder is not None:
        cache.store_json(folder, "fd", fd_params(classifier_folder, n, repetitions, seed), result.values,
                         precomputed=precomputed)
    return result


def evaluate_fd_task(checkpoint: Checkpoint, options: dict[str, Any]) -> dict[str, Any]:
    from vizvae.evaluation.classifier import default_classifier_folder, load_classifier

    dataset = checkpoint_dataset(checkpoint.config)
    if dataset.kind != "image" or tuple(dataset.image_shape) != (1, 28, 28):
        raise VizvaeError(f"the fd task scores 28×28 digit images; {checkpoint.name} models {dataset.name}")
    folder = options.get("classifier") or default_classifier_folder()
    classifier = load_classifier(folder, device=checkpoint.model.device)
    n = int(options.get("n", 1000))
    repetitions = int(options.get("repetitions", 9))
    seed = int(options.get("seed", 0))
    result = fd_repetitions(checkpoint.model, classifier, dataset.x_test, n=n, repetitions=repetitions, seed=seed)
    return {"model": checkpoint.name, "dataset": dataset.name, "n": min(n, len(dataset.x_test)),
            "repetitions": repetitions, "features": "vizvae mnist-digit-classifier (128-d penultimate layer), not Inception",
            "fd_mean": round(result.mean, 3), "fd_std": round(result.std, 3), "fd_values": [round(v, 3) for v in result.values]}
