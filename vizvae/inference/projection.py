"""2-D projections of encoded data (PCA, UMAP, t-SNE) and their on-disk cache.

PCA is instant (one SVD, ``vizvae.kernels.pca``). UMAP and t-SNE take seconds to a minute on a
CPU, so their results go into the checkpoint cache (``vizvae.inference.cache``): shipped with the
model (``assets/models/<name>/precomputed/``, written by ``python -m vizvae precompute``) or
stored in the user cache on first use, stamped with the weights' SHA-256, and read back in about a
millisecond afterwards.

umap and ``sklearn.manifold`` are imported inside their functions: importing umap alone pulls in
numba and costs seconds, which the app must not pay at start-up.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from vizvae.inference import cache
from vizvae.kernels.pca import principal_components

ProgressFn = Callable[[str], None]


@dataclass
class Projection:
    coords: np.ndarray  # (n, 2) float32
    method: str
    explained_variance_ratio: np.ndarray | None = None  # PCA only: (2,)
    from_cache: bool = False
    seconds: float = 0.0


def pca(x: np.ndarray, n_components: int = 2) -> Projection:
    """Principal-component scores of the data (``vizvae.kernels.pca``: each component signed so that
    its largest loading is positive, for stable plots; a 1-D latent is padded with a zero axis)."""
    components = principal_components(x, n_components)
    return Projection(components.scores(x).astype(np.float32), "pca",
                      explained_variance_ratio=components.explained_variance_ratio)


def umap(x: np.ndarray, seed: int = 0, n_neighbors: int = 15, min_dist: float = 0.1) -> Projection:
    import umap as umap_learn  # heavy (numba): only when asked for

    reducer = umap_learn.UMAP(n_components=2, n_neighbors=n_neighbors, min_dist=min_dist, random_state=seed)
    with warnings.catch_warnings():  # "n_jobs overridden by random_state": a seed is the point here
        warnings.filterwarnings("ignore", message="n_jobs value", category=UserWarning)
        coords = reducer.fit_transform(np.asarray(x, dtype=np.float32))
    return Projection(coords.astype(np.float32), "umap")


def tsne(x: np.ndarray, seed: int = 0, perplexity: float = 30.0) -> Projection:
    from sklearn.manifold import TSNE

    x = np.asarray(x, dtype=np.float32)
    perplexity = min(perplexity, max(1.0, (len(x) - 1) / 3))
    embedding = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(x)
    return Projection(embedding.astype(np.float32), "tsne")


# method -> (function, label, whether worth caching on disk)
METHODS: dict[str, Callable[..., Projection]] = {"pca": pca, "umap": umap, "tsne": tsne}
LABELS = {"pca": "PCA", "umap": "UMAP", "tsne": "t-SNE"}
SLOW_METHODS = frozenset({"umap", "tsne"})


def projection_params(method: str, n_points: int, seed: int, data: str) -> dict:
    """The settings a stored projection is keyed by (beside the checkpoint's SHA-256)."""
    return {"method": method, "n": int(n_points), "seed": int(seed), "data": data}


def project(x: np.ndarray, method: str, *, folder: str | Path | None = None, data: str = "test-encoder-means",
            seed: int = 0, progress: ProgressFn | None = None, precomputed: bool = False) -> Projection:
    """Project ``x`` (n, latent) to 2-D. Slow methods of a checkpoint saved in ``folder`` are
    read from / written to the checkpoint cache (``vizvae.inference.cache``), keyed by the
    weights' SHA-256, ``data`` (what ``x`` is), n and the seed."""
    if method not in METHODS:
        raise ValueError(f"unknown projection {method!r}; expected one of {', '.join(METHODS)}")
    started = time.perf_counter()
    if method not in SLOW_METHODS or folder is None:
        result = METHODS[method](x) if method == "pca" else METHODS[method](x, seed=seed)
        result.seconds = time.perf_counter() - started
        return result

    def compute() -> dict[str, np.ndarray]:
        if progress:
            progress(f"computing {LABELS[method]} of {len(x)} points (once per model; then read from the disk cache)")
        return {"coords": METHODS[method](x, seed=seed).coords}

    params = projection_params(method, len(x), seed, data)
    arrays, from_cache = cache.cached_arrays(folder, f"projection-{method}", params, compute, precomputed=precomputed,
                                             expect={"coords": (len(x), 2)})  # never draw a NaN or misshapen cache
    coords = arrays.get("coords")
    if coords is None or coords.shape != (len(x), 2):  # n is in the key: only a hand-made file lands here
        coords, from_cache = compute()["coords"], False
    return Projection(np.asarray(coords, dtype=np.float32), method, from_cache=from_cache,
                      seconds=time.perf_counter() - started)


def stored_projection(folder: str | Path, method: str, n_points: int, seed: int = 0,
                      data: str = "test-encoder-means") -> bool:
    """Whether a projection is already stored for the checkpoint in ``folder`` (no wait for it)."""
    return cache.stored_result(folder, f"projection-{method}", projection_params(method, n_points, seed, data)) is not None
