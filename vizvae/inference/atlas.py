"""The latent atlas: 10⁵–10⁶ encoded items drawn, read, selected and searched interactively.

Drawing a million points as points does not answer in a second: plotly's WebGL scatter of 10⁶
points is ~20 MB of figure per redraw (measured by ``python -m vizvae bench --only atlas``). So the
atlas draws **all** points as a density (counts on a grid, ``density``, ~30 ms at 10⁶) with contour
lines, and over it a **sample** of the points in view as markers (``shown_rows``): each point has a
fixed random priority, so zooming in keeps the points already drawn and adds the next ones, and
once the view holds fewer points than the limit every one of them is drawn. Selections are
geometric (``rows_in_box``, ``rows_in_lasso``) and cover every point, drawn or not.

Projections at scale (``atlas_projection``), stored beside the encodings they project
(``inference.encodings``: keyed by the weights' and the data's SHA-256):

* PCA of all points: exact (one SVD of the d×d second moments, accumulated in blocks);
* UMAP fitted on a random ``UMAP_FIT_SAMPLE`` of the points, the rest placed from their nearest
  fitted points in latent space, in chunks with progress (``note`` says so);
* t-SNE up to ``TSNE_MAX_POINTS``: it has no transform for new points, and beyond that it takes
  hours on a CPU.

Data sources (``atlas_sources``, ``open_atlas_data``): the model's own test set, ``shapes``
generated at scale for a shapes model (``data.shapes_scale``; its factors become colour columns),
and the data files of the server's data folders (``VIZVAE_DATA_DIRS``), offered by name.
"""

from __future__ import annotations

import json
import os
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from vizvae.data.shapes import FACTOR_NAMES, SHAPE_NAMES
from vizvae.data.shapes_scale import large_shapes
from vizvae.data.sources import open_items
from vizvae.errors import VizvaeError
from vizvae.inference.latent import class_labels
from vizvae.paths import user_cache_root

BLOCK = 1 << 18  # rows per pass over a memory map
UMAP_FIT_SAMPLE = 20_000
TSNE_MAX_POINTS = 100_000
GENERATED_SIZES = (10_000, 100_000, 1_000_000)
DATA_SUFFIXES = (".npy", ".npz", ".parquet", ".pq", ".csv")
METHOD_LABELS = {"latent": "latent plane (z0, z1)", "pca": "PCA", "umap": "UMAP", "tsne": "t-SNE"}
Report = Callable[[float, str], None]


class AtlasError(VizvaeError):
    """A request the atlas cannot serve (an unknown source, a projection over its size limit)."""


# -- data --------------------------------------------------------------------------------------------------------
@dataclass
class AtlasData:
    """What the atlas draws: ``items`` (n, features), memory-mapped where the source allows."""

    key: str  # "test", "shapes-<n>" or "file:<name>": what a URL names
    description: str
    items: np.ndarray
    labels: np.ndarray | None = None  # (n,) integer codes
    label_names: list[str] | None = None
    columns: dict[str, np.ndarray] = field(default_factory=dict)  # metadata to colour by, (n,) each

    def __len__(self) -> int:
        return len(self.items)


def generated_folder() -> Path:
    return user_cache_root() / "generated"


def generated_ready(n: int, seed: int = 0) -> bool:
    stem = generated_folder() / f"shapes-{int(n)}-{int(seed)}-32"
    return Path(f"{stem}.images.npy").is_file() and Path(f"{stem}.factors.npy").is_file()


def server_files(roots: list[Path]) -> dict[str, Path]:
    """The data files directly inside the server's data folders, by the name a visitor sees
    (``<folder name>/<file name>``); nothing outside them, and no link followed out of them."""
    files: dict[str, Path] = {}
    for root in roots:
        try:
            entries = sorted(root.iterdir())
        except OSError:
            continue
        for entry in entries:
            if entry.suffix.lower() in DATA_SUFFIXES and entry.is_file() and not entry.is_symlink():
                files[f"{root.name}/{entry.name}"] = entry
    return files


def atlas_sources(dataset_name: str, n_features: int, files: dict[str, Path]) -> dict[str, str]:
    """key -> label of what this model's atlas can show."""
    sources = {"test": "the model's test set"}
    if dataset_name == "shapes" and n_features == 32 * 32:
        sources.update({f"shapes-{n}": f"generated shapes, {n:,} items" for n in GENERATED_SIZES})
    sources.update({f"file:{name}": name for name in files})
    return sources


def open_generated(n: int, report: Report | None = None, seed: int = 0) -> AtlasData:
    """``shapes`` at scale, rendered once into the user cache (minutes at 10⁶; ``report`` sees its progress)."""
    progress = None if report is None else (lambda done, total: report(done / total, f"rendered {done:,} of {total:,}"))
    images, factors = large_shapes(n, seed=seed, folder=generated_folder(), progress=progress)
    columns = {name: np.asarray(factors[:, j]) for j, name in enumerate(FACTOR_NAMES) if name != "shape"}
    return AtlasData(f"shapes-{n}", f"{n:,} generated shapes (seed {seed}, continuous factors)", images,
                     labels=np.asarray(factors[:, 0]).astype(np.int64), label_names=list(SHAPE_NAMES), columns=columns)


def open_test_set(dataset) -> AtlasData:
    """A model's own test set (a ``data.Dataset``), labelled by its target's categories, or by shape
    for ``shapes``."""
    labels = None if dataset.y_test is None else np.asarray(dataset.y_test).astype(np.int64)
    named = class_labels(dataset.y_test, dataset.target.categories if dataset.target is not None else None)
    names = list(SHAPE_NAMES) if labels is not None and dataset.name == "shapes" else (named.names if named else None)
    return AtlasData("test", f"the test set of {dataset.name}, {len(dataset.x_test):,} items",
                     np.asarray(dataset.x_test, dtype=np.float32), labels=labels, label_names=names)


def open_file(name: str, path: Path, image_shape: tuple[int, int, int]) -> AtlasData:
    source = open_items(path, image_shape=image_shape)
    labels = getattr(source, "labels", None)
    codes, names = None, None
    if labels is not None and len(labels) == len(source):
        names_found, codes = np.unique(np.asarray(labels), return_inverse=True)
        if len(names_found) <= 50:  # a label, not an identifier per item
            names = [str(v) for v in names_found]
        else:
            codes = None
    return AtlasData(f"file:{name}", f"{name}: {len(source):,} items", source, labels=codes, label_names=names)


def read_rows(items, rows) -> np.ndarray:
    """float32 (len(rows), features) of the given rows of an array or an ``ItemSource`` (read by slices)."""
    rows = [int(r) for r in rows]
    if isinstance(items, np.ndarray):
        return np.asarray(items[rows], dtype=np.float32).reshape(len(rows), -1)
    return np.concatenate([items[r: r + 1] for r in rows]) if rows else np.zeros((0, items.n_features), np.float32)


def n_features(items) -> int:
    return int(items.n_features) if hasattr(items, "n_features") else int(np.prod(items.shape[1:]))


# -- the encodings' companions: per-point values and projections ---------------------------------------------
def _kl_terms(mean: np.ndarray, log_var: np.ndarray) -> np.ndarray:
    """KL(q(z_j | x) ‖ N(0, 1)) per item and dimension, in float64."""
    m, v = np.asarray(mean, dtype=np.float64), np.asarray(log_var, dtype=np.float64)
    return 0.5 * (np.exp(v) + m * m - 1.0 - v)


def kl_per_point(mean: np.ndarray, log_var: np.ndarray) -> np.ndarray:
    """KL(q(z | x) ‖ N(0, I)) of every item (n,), in nats, block by block over memory maps."""
    out = np.empty(len(mean), dtype=np.float32)
    for start in range(0, len(mean), BLOCK):
        out[start: start + BLOCK] = _kl_terms(mean[start: start + BLOCK], log_var[start: start + BLOCK]).sum(1)
    return out


def selection_statistics(mean: np.ndarray, log_var: np.ndarray, rows: np.ndarray, limit: int = 200_000
                         ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(average encoder mean, spread of the means, average KL per dimension) of the selected rows, over
    ``limit`` of them evenly spaced when there are more (read from memory maps in row order)."""
    rows = np.sort(np.asarray(rows, dtype=np.int64))
    if len(rows) > limit:
        rows = rows[np.linspace(0, len(rows) - 1, limit).astype(np.int64)]
    m = np.asarray(mean[rows], dtype=np.float64)
    return m.mean(0), m.std(0), _kl_terms(m, log_var[rows]).mean(0)


def pca_all(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(scores (n, 2) float32, explained-variance ratios (2,)): exact PCA of every point, from the
    d×d second moments accumulated in float64 blocks (no copy of the points is held)."""
    n, d = points.shape
    total, outer = np.zeros(d), np.zeros((d, d))
    for start in range(0, n, BLOCK):
        block = np.asarray(points[start: start + BLOCK], dtype=np.float64)
        total += block.sum(0)
        outer += block.T @ block
    centre = total / n
    covariance = outer / n - np.outer(centre, centre)
    values, vectors = np.linalg.eigh(covariance)
    order = np.argsort(values)[::-1][:2]
    axes = vectors[:, order].T  # (2, d)
    signs = np.sign(axes[np.arange(len(axes)), np.abs(axes).argmax(1)])
    axes *= np.where(signs == 0, 1.0, signs)[:, None]
    if len(axes) < 2:  # a 1-D latent: a zero second axis
        axes = np.vstack([axes, np.zeros((2 - len(axes), d))])
    ratio = np.maximum(values[order], 0.0) / max(float(values.sum()), 1e-300)
    scores = np.empty((n, 2), dtype=np.float32)
    for start in range(0, n, BLOCK):
        scores[start: start + BLOCK] = (np.asarray(points[start: start + BLOCK], dtype=np.float64) - centre) @ axes.T
    return scores, np.pad(ratio, (0, 2 - len(ratio)))


def umap_sampled(points: np.ndarray, seed: int = 0, report: Report | None = None,
                 fit_sample: int = UMAP_FIT_SAMPLE, chunk: int = 50_000, k: int = 10) -> tuple[np.ndarray, str]:
    """(coords (n, 2), note): UMAP fitted on a random ``fit_sample`` of the points; every other
    point placed at the inverse-distance-weighted mean of the places of its ``k`` nearest fitted
    points (in latent space, by a k-d tree). That is where UMAP's own ``transform`` starts before
    refining, and it costs ~7 µs a point where the refinement costs ~1 ms (10⁶ points: 7 s, not 16 min)."""
    import umap as umap_learn  # heavy (numba): only when asked for
    from sklearn.neighbors import NearestNeighbors

    n = len(points)
    rng = np.random.default_rng(seed)
    fitted = np.sort(rng.choice(n, size=min(n, fit_sample), replace=False))
    if report:
        report(0.02, f"fitting UMAP on {len(fitted):,} of {n:,} points")
    sample = np.asarray(points[fitted], dtype=np.float32)
    with warnings.catch_warnings():  # "n_jobs overridden by random_state": a seed is the point here
        warnings.filterwarnings("ignore", message="n_jobs value", category=UserWarning)
        sample_coords = umap_learn.UMAP(n_components=2, random_state=seed).fit_transform(sample)
    coords = np.empty((n, 2), dtype=np.float32)
    coords[fitted] = sample_coords
    rest = np.ones(n, dtype=bool)
    rest[fitted] = False
    rest_rows = np.flatnonzero(rest)
    tree = NearestNeighbors(n_neighbors=min(k, len(fitted)), algorithm="kd_tree").fit(sample)
    for start in range(0, len(rest_rows), chunk):
        if report:
            report(0.6 + 0.4 * start / max(len(rest_rows), 1), f"placing {start:,} of {len(rest_rows):,} points")
        rows = rest_rows[start: start + chunk]
        distances, nearest = tree.kneighbors(np.asarray(points[rows], dtype=np.float32))
        weights = 1.0 / np.maximum(distances, 1e-12)
        coords[rows] = (np.einsum("nk,nkd->nd", weights, sample_coords[nearest]) / weights.sum(1, keepdims=True))
    note = ("" if len(rest_rows) == 0 else
            f"UMAP fitted on a random {len(fitted):,} of the {n:,} points; each of the other {len(rest_rows):,} is "
            f"placed at the distance-weighted mean of its {min(k, len(fitted))} nearest fitted points (in latent space).")
    return coords, note


def tsne_all(points: np.ndarray, seed: int = 0) -> np.ndarray:
    if len(points) > TSNE_MAX_POINTS:
        raise AtlasError(f"t-SNE is offered up to {TSNE_MAX_POINTS:,} points (it has no transform for new points, "
                         f"and {len(points):,} would take hours); use PCA or UMAP")
    from sklearn.manifold import TSNE

    x = np.asarray(points, dtype=np.float32)
    perplexity = min(30.0, max(1.0, (len(x) - 1) / 3))
    return TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(x).astype(np.float32)


@dataclass
class AtlasProjection:
    coords: np.ndarray  # (n, 2) float32, a read-only memory map when stored
    method: str
    note: str = ""
    explained: tuple[float, float] | None = None  # PCA's explained-variance ratios
    seconds: float = 0.0
    from_cache: bool = False


def projection_file(directory: Path, method: str, seed: int) -> Path:
    return Path(directory) / f"projection-{method}-{int(seed)}.npy"


def stored_projection(directory: Path, method: str, n: int, seed: int = 0) -> AtlasProjection | None:
    """The projection stored beside the encodings in ``directory``, or None (none, or not whole)."""
    path = projection_file(directory, method, seed)
    meta_path = path.with_suffix(".json")
    try:
        meta = json.loads(meta_path.read_text())
        coords = np.load(path, mmap_mode="r")
    except (OSError, ValueError):
        return None
    if coords.shape != (n, 2) or coords.dtype != np.float32 or meta.get("n") != n:
        return None
    explained = meta.get("explained")
    return AtlasProjection(coords, method, str(meta.get("note", "")), tuple(explained) if explained else None,
                           from_cache=True)


def atlas_projection(directory: Path, means: np.ndarray, method: str, seed: int = 0,
                     report: Report | None = None) -> AtlasProjection:
    """The 2-D coordinates of every point by ``method`` ("latent", "pca", "umap", "tsne"), read
    from beside the encodings in ``directory``, else computed and stored (file, then its JSON: the
    JSON is the commit point)."""
    if method not in METHOD_LABELS:
        raise AtlasError(f"unknown projection {method!r}")
    n = len(means)
    if method == "latent":
        return AtlasProjection(np.asarray(means[:, :2], dtype=np.float32), method)
    stored = stored_projection(directory, method, n, seed)
    if stored is not None:
        return stored
    started = time.perf_counter()
    explained, note = None, ""
    if method == "pca":
        coords, ratio = pca_all(means)
        explained = (float(ratio[0]), float(ratio[1]))
    elif method == "umap":
        coords, note = umap_sampled(means, seed, report)
    else:
        coords = tsne_all(means, seed)
    _store(projection_file(directory, method, seed), coords, {"n": n, "note": note, "explained": explained})
    result = stored_projection(directory, method, n, seed)
    result.seconds, result.from_cache = time.perf_counter() - started, False
    return result


def _store(path: Path, coords: np.ndarray, meta: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tag = f".tmp-{os.getpid()}"
    staged, staged_meta = Path(f"{path}{tag}.npy"), Path(f"{path.with_suffix('.json')}{tag}")
    try:
        with open(staged, "wb") as handle:
            np.save(handle, np.asarray(coords, dtype=np.float32))
        os.replace(staged, path)
        staged_meta.write_text(json.dumps(meta))
        os.replace(staged_meta, path.with_suffix(".json"))
    finally:
        staged.unlink(missing_ok=True)
        staged_meta.unlink(missing_ok=True)


# -- the view: what is drawn, and what a selection holds --------------------------------------------------------
@dataclass(frozen=True)
class View:
    x0: float
    x1: float
    y0: float
    y1: float

    def text(self) -> str:
        return ",".join(f"{v:.6g}" for v in (self.x0, self.x1, self.y0, self.y1))

    @staticmethod
    def parse(text: str) -> "View | None":
        try:
            x0, x1, y0, y1 = (float(v) for v in str(text).split(","))
        except ValueError:
            return None
        if not all(np.isfinite([x0, x1, y0, y1])) or not (x0 < x1 and y0 < y1):
            return None
        return View(x0, x1, y0, y1)


def full_view(coords: np.ndarray, pad: float = 0.03) -> View:
    """The box holding every point (from each axis' min and max), padded on each side."""
    low = np.full(2, np.inf)
    high = np.full(2, -np.inf)
    for start in range(0, len(coords), BLOCK):
        block = np.asarray(coords[start: start + BLOCK])
        low, high = np.minimum(low, block.min(0)), np.maximum(high, block.max(0))
    span = np.maximum(high - low, 1e-6)
    low, high = low - pad * span, high + pad * span
    return View(float(low[0]), float(high[0]), float(low[1]), float(high[1]))


def in_view(coords: np.ndarray, view: View) -> np.ndarray:
    x, y = coords[:, 0], coords[:, 1]
    return (x >= view.x0) & (x <= view.x1) & (y >= view.y0) & (y <= view.y1)


def density(coords: np.ndarray, view: View, bins: int = 200) -> np.ndarray:
    """Counts of the points in each of bins × bins cells of ``view`` (rows: y from bottom to top)."""
    counts = np.zeros(bins * bins, dtype=np.int64)
    for start in range(0, len(coords), BLOCK):
        block = np.asarray(coords[start: start + BLOCK])
        # exactly the points ``in_view`` (and so ``shown_rows``) counts: the box is closed, a point on
        # its top or right edge falls in the last cell (as in np.histogram2d)
        block = block[in_view(block, view)].astype(np.float64)
        ix = np.clip(np.floor((block[:, 0] - view.x0) / (view.x1 - view.x0) * bins).astype(np.int64), 0, bins - 1)
        iy = np.clip(np.floor((block[:, 1] - view.y0) / (view.y1 - view.y0) * bins).astype(np.int64), 0, bins - 1)
        counts += np.bincount(iy * bins + ix, minlength=bins * bins)
    return counts.reshape(bins, bins)


def density_bins(n: int, most: int = 200, least: int = 24) -> int:
    """Cells per axis of the density of n points: about 0.6·√n (a few points a cell where they are
    dense), between ``least`` and ``most``. 200 for 10⁵ points and more; 480 points get 24, where 200
    would put every point in a cell of its own and draw a contour around each."""
    return int(np.clip(round(0.6 * np.sqrt(max(n, 1))), least, most))


def priority_order(n: int, seed: int = 0) -> np.ndarray:
    """The order in which points are drawn: a fixed random permutation, so a view's sample is a
    prefix of it and zooming in keeps what was drawn."""
    return np.random.default_rng(seed).permutation(n)


def shown_rows(coords: np.ndarray, view: View, order: np.ndarray, limit: int) -> tuple[np.ndarray, int]:
    """(rows drawn as points — the first ``limit`` in ``order`` inside ``view`` —, how many are in view)."""
    inside = in_view(coords, view)
    ranked = order[inside[order]]
    return ranked[:limit], len(ranked)


@dataclass(frozen=True)
class Selection:
    """A selection as a URL's ``sel`` holds it: ``box:x0,x1,y0,y1``, ``lasso:x y;x y;…`` (3 or more
    vertices) or ``rows:3,17``."""

    kind: str  # "box", "lasso" or "rows"
    box: tuple[float, float, float, float] | None = None
    xs: tuple[float, ...] = ()
    ys: tuple[float, ...] = ()
    rows: tuple[int, ...] = ()


def parse_selection(text: str | None, max_rows: int = 10_000, max_vertices: int = 2_000) -> Selection | None:
    """The selection ``text`` describes, or None: nothing, or anything unreadable (a non-finite
    number, a lasso of fewer than 3 vertices, a row that is not an integer)."""
    kind, _, body = (text or "").partition(":")
    try:
        if kind == "box":
            box = tuple(float(v) for v in body.split(","))
            return Selection("box", box=box) if len(box) == 4 and all(np.isfinite(box)) else None
        if kind == "lasso":
            pairs = [tuple(float(v) for v in p.split()) for p in body.split(";")[:max_vertices]]
            if len(pairs) < 3 or not all(len(p) == 2 and all(np.isfinite(p)) for p in pairs):
                return None
            return Selection("lasso", xs=tuple(p[0] for p in pairs), ys=tuple(p[1] for p in pairs))
        if kind == "rows":
            return Selection("rows", rows=tuple(int(v) for v in body.split(",")[:max_rows]))
    except ValueError:
        return None
    return None


def selection_rows(selection: Selection | None, coords: np.ndarray) -> np.ndarray:
    """Every row the selection holds, over all points (rows of a ``rows`` selection: those that exist)."""
    if selection is None:
        return np.zeros(0, dtype=np.int64)
    if selection.kind == "box":
        x0, x1, y0, y1 = selection.box
        return rows_in_box(coords, (x0, x1), (y0, y1))
    if selection.kind == "lasso":
        return rows_in_lasso(coords, list(selection.xs), list(selection.ys))
    rows = np.array(selection.rows, dtype=np.int64)
    return rows[(rows >= 0) & (rows < len(coords))]


def rows_in_box(coords: np.ndarray, xs: tuple[float, float], ys: tuple[float, float]) -> np.ndarray:
    """Every row whose point lies in the box (either corner order)."""
    view = View(min(xs), max(xs), min(ys), max(ys))
    return np.flatnonzero(in_view(coords, view))


def rows_in_lasso(coords: np.ndarray, xs: list[float], ys: list[float]) -> np.ndarray:
    """Every row whose point lies inside the polygon (even–odd rule), tested only within its bounding box."""
    px, py = np.asarray(xs, dtype=np.float64), np.asarray(ys, dtype=np.float64)
    if len(px) < 3 or len(px) != len(py) or not (np.all(np.isfinite(px)) and np.all(np.isfinite(py))):
        return np.zeros(0, dtype=np.int64)
    candidates = rows_in_box(coords, (px.min(), px.max()), (py.min(), py.max()))
    x, y = np.asarray(coords[candidates, 0], dtype=np.float64), np.asarray(coords[candidates, 1], dtype=np.float64)
    inside = np.zeros(len(candidates), dtype=bool)
    qx, qy = np.roll(px, 1), np.roll(py, 1)
    for ax, ay, bx, by in zip(px, py, qx, qy):
        crosses = (ay > y) != (by > y)
        with np.errstate(divide="ignore", invalid="ignore"):
            at = ax + (y - ay) * (bx - ax) / (by - ay)
        inside ^= crosses & (x < at)
    return candidates[inside]


def atlas_item(key: str, index: int, dataset_name: str, image_shape: tuple[int, int, int],
               files: dict[str, Path]) -> np.ndarray:
    """One item (features,) of an atlas source other than the test set, as a link from the atlas
    names it (``data=<key>&item=<index>``); ``AtlasError`` with what is wrong otherwise."""
    features = int(np.prod(image_shape))
    sources = atlas_sources(dataset_name, features, files)
    if key not in sources or key == "test":
        raise AtlasError(f"this model's atlas has no data source {key!r}")
    if key.startswith("shapes-"):
        n = int(key.split("-", 1)[1])
        if not generated_ready(n):
            raise AtlasError(f"the {n:,} generated shapes are not on this server yet: open them in the Latent atlas first")
        data = open_generated(n)
    else:
        name = key.split(":", 1)[1]
        data = open_file(name, files[name], image_shape)
    if n_features(data.items) != features:
        raise AtlasError(f"{sources[key]} holds items of {n_features(data.items):,} values; this model takes {features:,}")
    if not 0 <= int(index) < len(data):
        raise AtlasError(f"{sources[key]} has items 0 to {len(data) - 1:,}, not {index}")
    return read_rows(data.items, [int(index)])[0]
