"""A user's own data: a folder of images, an ``.npz``, or a ``.csv`` plus a schema JSON.

Each loader checks what it reads and raises ``DataError`` with one line that names the file
and says what was expected, so the app can show it and carry on.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from vizvae.data.splits import Dataset, image_dataset, table_dataset
from vizvae.data.schema import ColumnType
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


def image_from_upload(data: bytes, image_shape: tuple[int, int, int], binarize: bool = False,
                      invert: str = "auto") -> tuple[np.ndarray, list[str]]:
    """An uploaded image file (any format PIL reads, any size or colour) as one model input: a flattened
    float32 row of ``image_shape`` in [0, 1], and notes saying what was changed to get there.

    ``invert``: ``"auto"`` inverts a mostly light picture (a dark digit on paper) into the light-on-dark
    of MNIST, ``"yes"`` / ``"no"`` force it. ``binarize`` thresholds at 0.5, as the model's training data
    was. An unreadable file raises ``DataError``.
    """
    import io

    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            size, mode = image.size, image.mode
            row = to_model_image(image, image_shape)
    except UnidentifiedImageError:
        raise DataError("not an image file that can be read (expected PNG, JPEG, BMP, GIF, WebP, ...)") from None
    except (OSError, ValueError) as err:
        raise DataError(f"a damaged or truncated image ({err})") from None
    channels, height, width = image_shape
    target = f"{width}×{height} {'grey' if channels == 1 else 'RGB'}"
    notes = []
    if size != (width, height) or mode != ("L" if channels == 1 else "RGB"):
        notes.append(f"converted from {size[0]}×{size[1]} {mode} to {target}, the model's input")
    if invert == "yes" or (invert == "auto" and float(row.mean()) > 0.5):
        row = 1.0 - row
        notes.append("inverted to light on dark, like the training images" + (" (it was mostly light)"
                                                                               if invert == "auto" else ""))
    if binarize:
        row = (row > 0.5).astype(np.float32)
        notes.append("binarised at 0.5, like the training images")
    return row.astype(np.float32), notes


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


# -- rows typed or uploaded for a trained table model: checked cell by cell ---------------------------------------
@dataclass
class CellProblem:
    """One cell that could not be used; the cell is treated as missing (``row`` counts data rows from 1)."""

    row: int
    column: str
    value: str
    message: str

    def __str__(self) -> str:
        return f"row {self.row}, column {self.column!r}: {self.message}"


@dataclass
class TableRows:
    """Rows in a model's space: ``x`` (n, D) with NaN where a value is missing or refused, ``observed``
    (n, D), ``y`` (n,) NaN where unknown; ``problems`` lists every refused cell, ``notes`` what else
    was adjusted (columns missing from the file, columns ignored)."""

    x: np.ndarray
    observed: np.ndarray
    y: np.ndarray
    problems: list[CellProblem]
    notes: list[str]

    def __len__(self) -> int:
        return len(self.x)


def check_cell(raw: Any, column: ColumnType) -> tuple[float, str | None]:
    """(value in model space or NaN, problem or None) for one cell; an empty cell is missing, not a problem."""
    if raw is None or (isinstance(raw, float) and np.isnan(raw)) or str(raw).strip() == "":
        return float("nan"), None
    text = str(raw).strip()
    try:
        value = float(text)
    except ValueError:
        return float("nan"), f"{text!r} is not a number; expected a {column.kind} value (leave it empty if unknown)"
    if not np.isfinite(value):
        return float("nan"), f"{text!r} is not a finite number"
    if column.kind == "loggaussian" and value < 0:
        return float("nan"), f"{value:g} is negative; this column only takes values ≥ 0"
    if column.is_discrete and not np.isclose(np.asarray(column.categories, dtype=float), value).any():
        shown = ", ".join(f"{c:g}" for c in column.categories)
        return float("nan"), f"{value:g} is not one of this column's values ({shown})"
    return float(column.to_model(np.array([value]))[0]), None


def rows_from_frame(frame: Any, schema: list[ColumnType], target: ColumnType | None = None) -> TableRows:
    """Check every cell of ``frame`` (a pandas DataFrame with a header) against a model's column types.

    Columns are matched by name; a column the model needs but the frame lacks is missing in every row
    (with a note), columns the model does not know are ignored (with a note). Nothing is refused as a
    whole: each bad cell becomes missing and gets its own ``CellProblem``."""
    names = [c.name for c in schema]
    present = [str(c) for c in frame.columns]
    if not set(names) & set(present):
        raise DataError(f"none of the columns {present} are the model's; expected a header row with some of {names}")
    notes = []
    absent = [n for n in names if n not in present]
    if absent:
        notes.append(f"not in the file, so missing in every row: {', '.join(absent)}")
    known = set(names) | ({target.name} if target else set())
    ignored = [c for c in present if c not in known]
    if ignored:
        notes.append(f"ignored (the model does not use them): {', '.join(ignored)}")
    n = len(frame)
    x = np.full((n, len(schema)), np.nan, dtype=np.float32)
    y = np.full(n, np.nan, dtype=np.float32)
    problems = []
    columns = [(j, c) for j, c in enumerate(schema)] + ([(-1, target)] if target is not None else [])
    for j, column in columns:
        if column.name not in present:
            continue
        values = frame[column.name].tolist()
        for i, raw in enumerate(values):
            value, problem = check_cell(raw, column)
            if problem:
                problems.append(CellProblem(i + 1, column.name, str(raw), problem))
            if j >= 0:
                x[i, j] = value
            else:
                y[i] = value
    return TableRows(x=x, observed=np.isfinite(x), y=y, problems=problems, notes=notes)


def rows_from_csv(data: bytes | str | Path, schema: list[ColumnType], target: ColumnType | None = None) -> TableRows:
    """``rows_from_frame`` on a CSV given as bytes (an upload) or a path; every cell is read as text so
    that a word in a numeric column is reported, not silently dropped."""
    import io

    import pandas as pd

    source: Any = io.BytesIO(data) if isinstance(data, bytes) else data
    try:
        frame = pd.read_csv(source, dtype=str, keep_default_na=False, skipinitialspace=True)
    except Exception as err:  # noqa: BLE001
        raise DataError(f"not a readable CSV with a header row ({err})") from None
    if frame.empty:
        raise DataError("the CSV has a header but no rows")
    return rows_from_frame(frame, schema, target)
