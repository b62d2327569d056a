"""A user's own data: a folder of images, an ``.npz``, or a ``.csv`` plus a schema JSON.

Each loader checks what it reads and raises ``DataError`` with one line that names the file
and says what was expected, so the app can show it and carry on.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from vizvae.data.datasets import Dataset, image_dataset, table_dataset
from vizvae.errors import DataError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp"}


def load_user_data(path: str | Path, **options: Any) -> Dataset:
    path = Path(path)
    if path.is_dir():
        return load_image_folder(path, **options)
    if path.suffix == ".npz":
        return load_npz(path, **options)
    if path.suffix == ".csv":
        return load_csv(path, **options)
    raise DataError(f"{path}: expected an image folder, an .npz or a .csv file")


def to_model_image(image: Any, image_shape: tuple[int, int, int]) -> np.ndarray:
    """Any PIL image (any size, mode) -> flattened float32 in [0, 1] of ``image_shape``."""
    from PIL import Image

    channels, height, width = image_shape
    image = image.convert("L" if channels == 1 else "RGB").resize((width, height), Image.BILINEAR)
    array = np.asarray(image, dtype=np.float32) / 255.0
    if channels != 1:
        array = array.transpose(2, 0, 1)
    return array.reshape(-1)


def load_image_folder(
    path: str | Path, image_size: int = 28, channels: int = 1, binarize: bool = False, test_size: float = 0.2,
) -> Dataset:
    """Every image under ``path``; images in sub-folders take the sub-folder's name as label."""
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    files = sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise DataError(f"{path}: no images found; expected .png/.jpg files, optionally in one sub-folder per label")
    shape = (channels, image_size, image_size)
    images, names = [], []
    for file in files:
        try:
            with Image.open(file) as image:
                images.append(to_model_image(image, shape))
        except (UnidentifiedImageError, OSError) as err:
            raise DataError(f"{file}: not a readable image ({err})") from None
        names.append(file.parent.name if file.parent != path else None)
    labels = None
    if all(n is not None for n in names):
        classes = sorted(set(names))
        labels = np.array([classes.index(n) for n in names], dtype=np.float64)
    return image_dataset(
        path.name, np.stack(images), labels, shape, test_size=test_size, binarize=binarize,
        extra={"source": str(path)},
    )


def load_npz(path: str | Path, image_shape: tuple[int, int, int] | None = None, binarize: bool = False,
             test_size: float = 0.2) -> Dataset:
    """An ``.npz`` with ``x`` (n, H, W), (n, C, H, W) or (n, H*W) and optionally ``y`` (n,) labels.
    Values in [0, 255] are scaled to [0, 1]."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {k: archive[k] for k in archive.files}
    except Exception as err:  # noqa: BLE001 - any failure to parse is the same for the user
        raise DataError(f"{path}: not a readable .npz without pickled objects ({err})") from None
    if "x" not in arrays:
        raise DataError(f"{path}: expected an array named 'x' (and optionally 'y'), found {sorted(arrays)}")
    x = arrays["x"]
    if not np.issubdtype(x.dtype, np.number):
        raise DataError(f"{path}: 'x' must be numeric, got dtype {x.dtype}")
    x = x.astype(np.float32)
    if x.max(initial=0) > 1.0:
        x = x / 255.0
    if image_shape is None:
        if x.ndim == 3:
            image_shape = (1, x.shape[1], x.shape[2])
        elif x.ndim == 4:
            image_shape = tuple(x.shape[1:])  # type: ignore[assignment]
        elif x.ndim == 2 and int(np.sqrt(x.shape[1])) ** 2 == x.shape[1]:
            side = int(np.sqrt(x.shape[1]))
            image_shape = (1, side, side)
        else:
            raise DataError(f"{path}: 'x' has shape {x.shape}; expected (n, H, W), (n, C, H, W) or (n, H*W) square")
    y = arrays.get("y")
    if y is not None and len(y) != len(x):
        raise DataError(f"{path}: 'y' has {len(y)} rows but 'x' has {len(x)}")
    return image_dataset(path.stem, x, None if y is None else y.astype(np.float64), image_shape,  # type: ignore[arg-type]
                         test_size=test_size, binarize=binarize, extra={"source": str(path)})


def load_csv(path: str | Path, schema: str | Path | dict | None = None, target: str | None = None,
             test_size: float = 0.2) -> Dataset:
    """A ``.csv`` with a header row. ``schema`` is a dict or JSON file
    ``{"target": "col", "columns": {"col": "gaussian" | "loggaussian" | "bernoulli" |
    "categorical" | {"type": ..., "categories": [...]}}}``; columns it leaves out are typed by
    the default rule. Empty cells are missing values. The target defaults to the last column."""
    import pandas as pd

    path = Path(path)
    if isinstance(schema, (str, Path)):
        try:
            schema = json.loads(Path(schema).read_text())
        except (OSError, json.JSONDecodeError) as err:
            raise DataError(f"{schema}: not a readable schema JSON ({err})") from None
    schema = schema or {}
    if not isinstance(schema, dict):
        raise DataError("the schema must be a JSON object with 'columns' (and optionally 'target')")
    try:
        frame = pd.read_csv(path)
    except Exception as err:  # noqa: BLE001
        raise DataError(f"{path}: not a readable CSV with a header row ({err})") from None
    if frame.shape[1] < 2:
        raise DataError(f"{path}: expected at least two columns (features and a target), found {frame.shape[1]}")
    target = target or schema.get("target") or frame.columns[-1]
    if target not in frame.columns:
        raise DataError(f"{path}: target column {target!r} not found; columns are {list(frame.columns)}")
    numeric = {}
    for column in frame.columns:
        values = pd.to_numeric(frame[column], errors="coerce")
        bad = values.isna() & frame[column].notna()
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            raise DataError(
                f"{path}: column {column!r} row {row + 2} holds {frame[column].iloc[row]!r}; "
                "expected a number (leave the cell empty for a missing value)"
            )
        numeric[column] = values.to_numpy(dtype=np.float64)
    features = [c for c in frame.columns if c != target]
    raw_x = np.stack([numeric[c] for c in features], axis=1)
    declared = dict(schema.get("columns", {}))
    target_spec = declared.pop(target, None)
    target_kind = target_spec if isinstance(target_spec, str) else (target_spec or {}).get("type")
    return table_dataset(path.stem, raw_x, numeric[target], features, target, test_size=test_size,
                         declared=declared, target_kind=target_kind)
