"""2-D projections of encoded data (PCA, UMAP, t-SNE) and their on-disk cache.

PCA is instant (one SVD, ``vizvae.kernels.pca``). UMAP and t-SNE take seconds to a minute on a CPU, so their results
are stored as ``.npy`` beside the checkpoint (``<checkpoint>/cache/``, git-ignored) — or in the
user cache directory when that folder is read-only — keyed by method, model weights and
settings, and read back in well under a millisecond afterwards.

umap and ``sklearn.manifold`` are imported inside their functions: importing umap alone pulls in
numba and costs seconds, which the app must not pay at start-up.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

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
    return Projection(reducer.fit_transform(np.asarray(x, dtype=np.float32)).astype(np.float32), "umap")


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


def weights_digest(model) -> str:
    """A short hash of a model's weights: the cache key of everything derived from them."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().to("cpu").contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


def user_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "vizvae"


def _writable(folder: Path) -> bool:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".probe-"):
            pass
        return True
    except OSError:
        return False


def cache_folder(checkpoint_path: str | Path | None, weights_key: str) -> Path:
    """``<checkpoint>/cache`` when writable, else ``~/.cache/vizvae/<weights>``."""
    if checkpoint_path is not None and Path(checkpoint_path).is_dir():
        folder = Path(checkpoint_path) / "cache"
        if _writable(folder):
            return folder
    return user_cache_dir() / weights_key


def cache_file(folder: Path, method: str, weights_key: str, n_points: int, seed: int) -> Path:
    return Path(folder) / f"projection-{method}-{weights_key}-n{n_points}-seed{seed}.npy"


def project(x: np.ndarray, method: str, *, cache_dir: str | Path | None = None, weights_key: str = "",
            seed: int = 0, progress: ProgressFn | None = None) -> Projection:
    """Project ``x`` (n, latent) to 2-D. Slow methods are read from / written to ``cache_dir``
    when one is given (the file name carries ``weights_key``, n and the seed)."""
    if method not in METHODS:
        raise ValueError(f"unknown projection {method!r}; expected one of {', '.join(METHODS)}")
    started = time.perf_counter()
    if method not in SLOW_METHODS or cache_dir is None:
        result = METHODS[method](x) if method == "pca" else METHODS[method](x, seed=seed)
        result.seconds = time.perf_counter() - started
        return result
    file = cache_file(Path(cache_dir), method, weights_key, len(x), seed)
    if file.is_file():
        try:
            coords = np.load(file, allow_pickle=False)
            if coords.shape == (len(x), 2):
                return Projection(coords, method, from_cache=True, seconds=time.perf_counter() - started)
        except (OSError, ValueError):
            pass  # a damaged cache file is recomputed and overwritten
    if progress:
        progress(f"computing {LABELS[method]} of {len(x)} points (once; cached in {file.parent})")
    result = METHODS[method](x, seed=seed)
    _save_atomically(file, result.coords)
    _prune_stale(file.parent, weights_key)
    result.seconds = time.perf_counter() - started
    return result


def cached_projection_exists(cache_dir: str | Path, method: str, weights_key: str, n_points: int, seed: int = 0) -> bool:
    return cache_file(Path(cache_dir), method, weights_key, n_points, seed).is_file()


def _prune_stale(folder: Path, weights_key: str) -> None:
    """Drop projections of earlier weights (a retrained checkpoint) from a cache folder."""
    for old in folder.glob("projection-*.npy"):
        if f"-{weights_key}-" not in old.name:
            try:
                old.unlink()
            except OSError:
                pass


def _save_atomically(file: Path, array: np.ndarray) -> None:
    """Write to a temporary file then rename, so a concurrent reader never sees half a file."""
    try:
        file.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=file.parent, prefix=".tmp-", suffix=".npy", delete=False) as handle:
            np.save(handle, np.asarray(array, dtype=np.float32))
            tmp = Path(handle.name)
        os.replace(tmp, file)
    except OSError:
        pass  # caching is an optimisation; a read-only disk only costs a recomputation
