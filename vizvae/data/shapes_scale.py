"""``shapes`` at scale: 10⁵–10⁶ images from a seed, with **continuous** factors, for benchmarks and
tests of the latent atlas. Nothing is downloaded and nothing is held whole in memory: the images
are rendered in chunks straight into a memory-mapped ``.npy`` file.

The factors are those of ``shapes`` (``vizvae.data.shapes``), drawn independently and uniformly
from the same ranges instead of from its grid: shape ∈ {square, ellipse, triangle}; half-size in
[3, 5] px; rotation in [0°, 72°); centre x in [9, 23] px and y in [12, 20] px, sub-pixel. The
renderer is the grid's, evaluated at the factors themselves (anti-aliased coverage from
``supersample``² sub-pixel centres), so at the grid's own values and 4× supersampling it draws
exactly the grid's images (a test holds it to that).

    images, factors = large_shapes(1_000_000, seed=0, folder="~/.cache/vizvae")   # read-only memmaps

``factors`` is float32 (n, 5): the shape's index, then scale, rotation (degrees), x, y.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

import numpy as np

from vizvae.data.shapes import FACTOR_NAMES, IMAGE_SIZE, SHAPE_NAMES, _inside
from vizvae.errors import DataError

RANGES = {"scale": (3.0, 5.0), "rotation": (0.0, 72.0), "x": (9.0, 23.0), "y": (12.0, 20.0)}
MAX_ITEMS = 10_000_000  # 10⁷ images of 32×32 float32: 41 GB on disk; refuse more before writing
CHUNK = 2048


def draw_factors(n: int, seed: int = 0) -> np.ndarray:
    """``n`` independent factor rows (float32 (n, 5)). Row i depends on the seed and i alone, so a
    larger set starts with the rows of a smaller one."""
    uniform = np.random.default_rng(seed).random((n, len(FACTOR_NAMES)))  # row by row from one stream
    factors = np.empty((n, len(FACTOR_NAMES)), dtype=np.float32)
    factors[:, 0] = np.minimum(np.floor(uniform[:, 0] * len(SHAPE_NAMES)), len(SHAPE_NAMES) - 1)
    for column, name in enumerate(FACTOR_NAMES[1:], start=1):
        low, high = RANGES[name]
        factors[:, column] = low + (high - low) * uniform[:, column]
    return factors


def render_factors(factors: np.ndarray, image_size: int = IMAGE_SIZE, supersample: int = 2) -> np.ndarray:
    """One anti-aliased image per factor row: float32 (n, image_size²) in [0, 1]."""
    factors = np.asarray(factors, dtype=np.float64).reshape(-1, len(FACTOR_NAMES))
    fine = (np.arange(image_size * supersample) + 0.5) / supersample  # sub-pixel centres, canvas coordinates
    images = np.zeros((len(factors), image_size * supersample, image_size * supersample), dtype=np.float32)
    for shape_index, shape in enumerate(SHAPE_NAMES):
        rows = np.flatnonzero(factors[:, 0].round() == shape_index)
        if not len(rows):
            continue
        scale, theta = factors[rows, 1, None, None], np.deg2rad(factors[rows, 2, None, None])
        dx = fine[None, None, :] - factors[rows, 3, None, None]
        dy = fine[None, :, None] - factors[rows, 4, None, None]
        u = (np.cos(theta) * dx + np.sin(theta) * dy) / scale  # the canvas rotated by −θ, then unscaled
        v = (-np.sin(theta) * dx + np.cos(theta) * dy) / scale
        images[rows] = _inside(shape, u, v)
    coverage = images.reshape(len(factors), image_size, supersample, image_size, supersample).mean((2, 4))
    return coverage.reshape(len(factors), -1)


def large_shapes(n: int, seed: int = 0, folder: str | Path = ".", image_size: int = IMAGE_SIZE,
                 progress: Callable[[int, int], None] | None = None,
                 cancelled: Callable[[], bool] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``n`` generated images and their factors as read-only memory maps, rendered once into
    ``folder`` (``shapes-<n>-<seed>-<size>.images.npy`` and ``.factors.npy``) and reused after.
    ``progress(done, n)`` is called after each chunk; ``cancelled()`` True stops between chunks
    and leaves no file behind."""
    if not 1 <= int(n) <= MAX_ITEMS:
        raise DataError(f"a generated shapes set holds 1 to {MAX_ITEMS:,} images, not {n}")
    folder = Path(folder).expanduser()
    stem = folder / f"shapes-{int(n)}-{int(seed)}-{int(image_size)}"
    images_file, factors_file = Path(f"{stem}.images.npy"), Path(f"{stem}.factors.npy")
    if not (images_file.is_file() and factors_file.is_file()):
        folder.mkdir(parents=True, exist_ok=True)
        _render_to(images_file, factors_file, int(n), int(seed), image_size, progress, cancelled)
    return np.load(images_file, mmap_mode="r"), np.load(factors_file, mmap_mode="r")


def _render_to(images_file: Path, factors_file: Path, n: int, seed: int, image_size: int,
               progress: Callable[[int, int], None] | None, cancelled: Callable[[], bool] | None) -> None:
    """Render chunk by chunk into temporary files, then rename both (the images last)."""
    factors = draw_factors(n, seed)
    tag = f".tmp-{os.getpid()}"
    staged_images, staged_factors = Path(f"{images_file}{tag}"), Path(f"{factors_file}{tag}")
    try:
        out = np.lib.format.open_memmap(staged_images, mode="w+", dtype=np.float32, shape=(n, image_size ** 2))
        for start in range(0, n, CHUNK):
            if cancelled is not None and cancelled():
                raise DataError("generating the shapes set was cancelled")
            out[start: start + CHUNK] = render_factors(factors[start: start + CHUNK], image_size)
            if progress is not None:
                progress(min(start + CHUNK, n), n)
        out.flush()
        del out
        with open(staged_factors, "wb") as handle:
            np.save(handle, factors)
        os.replace(staged_factors, factors_file)
        os.replace(staged_images, images_file)
    finally:
        for staged in (staged_images, staged_factors):
            staged.unlink(missing_ok=True)
