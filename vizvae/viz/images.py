"""Image grids as arrays and PNG bytes (PIL), for decoded samples, traversals and manifolds.

Rows of flattened images (features = C·H·W, values in [0, 1]) go in; a single uint8 canvas
comes out, with a thin separating gutter, upscaled by an integer factor so 28×28 digits stay
crisp on screen and in the downloaded PNG.
"""

from __future__ import annotations

import io

import numpy as np


def image_grid(images: np.ndarray, image_shape: tuple[int, ...], columns: int | None = None,
               gutter: int = 2, scale: int = 1, gutter_value: float = 0.5) -> np.ndarray:
    """Tile images into one canvas.

    ``images`` is (rows, columns, features) — kept as a grid — or (n, features), wrapped into
    rows of ``columns``. ``image_shape`` is (C, H, W) or (H, W). Returns uint8 (H', W') for
    one channel or (H', W', C) for three.
    """
    images = np.asarray(images, dtype=np.float32)
    channels, height, width = (1, *image_shape) if len(image_shape) == 2 else tuple(image_shape)
    if images.ndim == 2:
        n = len(images)
        columns = columns or int(np.ceil(np.sqrt(n)))
        rows = int(np.ceil(n / columns))
        padded = np.full((rows * columns, images.shape[1]), np.nan, dtype=np.float32)
        padded[:n] = images
        images = padded.reshape(rows, columns, -1)
    rows, columns = images.shape[:2]
    tiles = images.reshape(rows, columns, channels, height, width).transpose(0, 1, 3, 4, 2)
    canvas = np.full((rows * (height + gutter) + gutter, columns * (width + gutter) + gutter, channels),
                     gutter_value, dtype=np.float32)
    for r in range(rows):
        for c in range(columns):
            tile = tiles[r, c]
            if np.isnan(tile).all():
                continue  # an empty slot after the last image
            top, left = gutter + r * (height + gutter), gutter + c * (width + gutter)
            canvas[top:top + height, left:left + width] = tile
    if scale > 1:
        canvas = canvas.repeat(scale, axis=0).repeat(scale, axis=1)
    canvas = (np.clip(np.nan_to_num(canvas, nan=gutter_value), 0.0, 1.0) * 255).round().astype(np.uint8)
    return canvas[..., 0] if channels == 1 else canvas


def paired_rows(originals: np.ndarray, reconstructions: np.ndarray, columns: int) -> np.ndarray:
    """(n, features) twice -> (2·⌈n/columns⌉, columns, features): each row of originals is
    followed by the row of their reconstructions, so each reconstruction sits under its original."""
    originals = np.asarray(originals, dtype=np.float32)
    reconstructions = np.asarray(reconstructions, dtype=np.float32)
    if originals.shape != reconstructions.shape:
        raise ValueError(f"originals {originals.shape} and reconstructions {reconstructions.shape} differ")
    n, features = originals.shape
    rows = int(np.ceil(n / columns))
    grid = np.full((rows, 2, columns, features), np.nan, dtype=np.float32)
    for r in range(rows):
        chunk = slice(r * columns, min(n, (r + 1) * columns))
        count = chunk.stop - chunk.start
        grid[r, 0, :count] = originals[chunk]
        grid[r, 1, :count] = reconstructions[chunk]
    return grid.reshape(2 * rows, columns, features)


def png_bytes(canvas: np.ndarray) -> bytes:
    """A uint8 canvas (H, W) or (H, W, 3) as PNG bytes."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.asarray(canvas, dtype=np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def grid_png(images: np.ndarray, image_shape: tuple[int, ...], columns: int | None = None,
             scale: int = 2, gutter: int = 2) -> bytes:
    """``image_grid`` straight to PNG bytes, for downloads."""
    return png_bytes(image_grid(images, image_shape, columns=columns, scale=scale, gutter=gutter))
