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
MAX_IMAGE_PIXELS_ENV = "VIZVAE_MAX_IMAGE_PIXELS"
DEFAULT_MAX_IMAGE_PIXELS = 25_000_000  # 5000 × 5000; decoding that as RGB takes 75 MB
MAX_CSV_ROWS_ENV = "VIZVAE_MAX_CSV_ROWS"
DEFAULT_MAX_CSV_ROWS = 100_000
LISTED_PROBLEMS = 1_000  # refused cells kept one by one; the rest are only counted
FLOAT32_MAX = float(np.finfo(np.float32).max)


def _limit(env: str, default: int) -> int:
    """A positive whole-number setting from the environment (the default when unset or not one)."""
    import os

    try:
        value = int(float(os.environ.get(env, default)))
    except ValueError:
        return default
    return value if value > 0 else default


def max_image_pixels() -> int:
    return _limit(MAX_IMAGE_PIXELS_ENV, DEFAULT_MAX_IMAGE_PIXELS)


def max_csv_rows() -> int:
    return _limit(MAX_CSV_ROWS_ENV, DEFAULT_MAX_CSV_ROWS)


def _check_pixels(size: tuple[int, int]) -> None:
    """Refuse an image whose header declares more pixels than ``VIZVAE_MAX_IMAGE_PIXELS``: called
    between ``Image.open`` (which reads the header only) and ``load`` (which decodes)."""
    limit = max_image_pixels()
    if size[0] * size[1] > limit:
        raise DataError(f"the image is {size[0]:,} × {size[1]:,} pixels, over the limit of {limit:,} pixels "
                        f"({MAX_IMAGE_PIXELS_ENV}); scale it down (the model sees it at a few dozen pixels a side)")


def _too_many_pixels(err: Exception) -> str:
    """The message for PIL's own decompression-bomb refusal (its text holds the pixel count)."""
    import re

    found = re.search(r"\((\d+) pixels\)", str(err))
    count = f"{int(found.group(1)):,} pixels" if found else "more pixels"
    return (f"the image declares {count}, over the limit of {max_image_pixels():,} pixels ({MAX_IMAGE_PIXELS_ENV}); "
            "scale it down")


def open_image(source: Any) -> Any:
    """``PIL.Image.open`` with the pixel limit checked on the header, before a byte is decoded. PIL's
    own decompression-bomb refusal is turned into the same ``DataError``."""
    import warnings

    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(source)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        raise DataError(_too_many_pixels(err)) from None
    except UnidentifiedImageError:
        raise DataError("not a readable image (expected PNG, JPEG, BMP, GIF, WebP, ...)") from None
    try:
        _check_pixels(image.size)
    except DataError:
        image.close()
        raise
    return image


MIN_ROWS = 3  # the fewest rows that split into two training rows and one test row (test_size 0.2)


def load_user_data(path: str | Path, **options: Any) -> Dataset:
    """A user's dataset by path. Its absolute path and SHA-256 (``data_digest``) are recorded in
    ``preprocessing`` (``source``, ``sha256``), so a checkpoint trained on it can find it again and
    tell when it has moved or changed (``vizvae.checkpoint.checkpoint_dataset``)."""
    path = Path(path)
    if path.is_dir():
        dataset = load_image_folder(path, **options)
    elif path.suffix == ".npz":
        dataset = load_npz(path, **options)
    elif path.suffix == ".csv":
        dataset = load_csv(path, **options)
    else:
        raise DataError(f"{path}: expected an image folder, an .npz or a .csv file")
    dataset.preprocessing.update(source=str(path.resolve()), sha256=data_digest(path))
    return dataset


def data_digest(path: str | Path) -> str:
    """SHA-256 of a data file; of an image folder, over each image's relative path and SHA-256; of a
    ``.csv``, over the file and the schema JSON beside it, if any (``schema_beside``)."""
    import hashlib

    from vizvae.paths import file_sha256 as file_sha

    path = Path(path)
    if not path.is_dir():
        schema = schema_beside(path) if path.suffix == ".csv" else None
        if schema is None:
            return file_sha(path)
        return hashlib.sha256(f"{file_sha(path)}\n{file_sha(schema)}".encode()).hexdigest()
    digest = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES):
        digest.update(f"{file.relative_to(path).as_posix()}\0{file_sha(file)}\n".encode())
    return digest.hexdigest()


def schema_beside(path: str | Path) -> Path | None:
    """The schema JSON that goes with ``data.csv``: ``data.schema.json`` beside it, else ``schema.json``
    in the same folder (None if neither is there)."""
    path = Path(path)
    for candidate in (path.with_name(path.stem + ".schema.json"), path.with_name("schema.json")):
        if candidate.is_file():
            return candidate
    return None


def _enough_rows(path: Path, n: int) -> None:
    if n < MIN_ROWS:
        raise DataError(f"{path}: {n} row{'s' if n != 1 else ''}; a dataset needs at least {MIN_ROWS} to split into "
                        "training and test rows")


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

    from PIL import Image

    try:
        with open_image(io.BytesIO(data)) as image:
            if image.format == "JPEG":  # decode at the smallest scale that still covers the model's size
                image.draft(image.mode, (image_shape[2], image_shape[1]))
            size, mode = image.size, image.mode
            image.load()
            row = to_model_image(image, image_shape)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        raise DataError(_too_many_pixels(err)) from None
    except (OSError, ValueError, SyntaxError, EOFError) as err:
        raise DataError(f"a damaged or truncated image ({type(err).__name__})") from None
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
    path = Path(path)
    files = sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise DataError(f"{path}: no images found; expected .png/.jpg files, optionally in one sub-folder per label")
    shape = (channels, image_size, image_size)
    images, names = [], []
    for file in files:
        try:
            with open_image(file) as image:
                images.append(to_model_image(image, shape))
        except DataError as err:
            raise DataError(f"{file}: {err}") from None
        except (OSError, ValueError, SyntaxError, EOFError) as err:
            raise DataError(f"{file}: not a readable image ({type(err).__name__})") from None
        names.append(file.parent.name if file.parent != path else None)
    _enough_rows(path, len(images))
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
    if not np.isfinite(x).all():
        raise DataError(f"{path}: 'x' holds {int((~np.isfinite(x)).sum()):,} values that are not finite numbers "
                        "(NaN, inf, or beyond 32-bit range)")
    _enough_rows(path, len(x))
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
    """A ``.csv`` with a header row, for training. ``schema`` is a dict or JSON file
    ``{"target": "col", "columns": {"col": "gaussian" | "loggaussian" | "bernoulli" |
    "categorical" | {"type": ..., "categories": [...]}}}``; without one, the schema JSON beside the
    file is used (``schema_beside``). Columns it leaves out are typed by the default rule. Empty cells
    are missing values; text, inf, NaN written out, and numbers beyond 32-bit range are refused,
    naming the first such cell. The target defaults to the last column."""
    import pandas as pd

    path = Path(path)
    if schema is None:
        schema = schema_beside(path)
    if isinstance(schema, (str, Path)):
        try:
            schema = json.loads(Path(schema).read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            raise DataError(f"{schema}: not a readable schema JSON ({type(err).__name__})") from None
    schema = schema or {}
    if not isinstance(schema, dict) or not isinstance(schema.get("columns", {}), dict):
        raise DataError("the schema must be a JSON object with 'columns' (an object) and optionally 'target'")
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True)
    except Exception as err:  # noqa: BLE001
        raise DataError(f"{path}: not a readable CSV with a header row ({type(err).__name__})") from None
    if frame.shape[1] < 2:
        raise DataError(f"{path}: expected at least two columns (features and a target), found {frame.shape[1]}")
    _enough_rows(path, len(frame))
    target = target or schema.get("target") or frame.columns[-1]
    if not isinstance(target, str) or target not in frame.columns:
        raise DataError(f"{path}: target column {target!r} not found; columns are {list(frame.columns)}")
    numeric = {}
    for column in frame.columns:
        values, reason = parse_numbers(frame[column].to_numpy(dtype=object))
        bad = reason != ""
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise DataError(
                f"{path}: column {column!r} row {row + 2} holds {frame[column].iloc[row]!r}; expected a number, finite "
                f"and within ±{FLOAT32_MAX:.2g} (leave the cell empty for a missing value)"
            )
        numeric[column] = values
    features = [c for c in frame.columns if c != target]
    raw_x = np.stack([numeric[c] for c in features], axis=1)
    declared = dict(schema.get("columns", {}))
    target_spec = declared.pop(target, None)
    target_kind = target_spec if isinstance(target_spec, str) else (target_spec or {}).get("type")
    return table_dataset(path.stem, raw_x, numeric[target], features, target, test_size=test_size,
                         declared=declared, target_kind=target_kind)


# -- rows typed or uploaded for a trained table model: checked column by column ----------------------------------
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
    (n, D), ``y`` (n,) NaN where unknown; ``problems`` lists refused cells (the first ``LISTED_PROBLEMS``
    of them, in column order), ``n_problems`` counts them all, ``notes`` says what else was adjusted
    (columns missing from the file, columns ignored)."""

    x: np.ndarray
    observed: np.ndarray
    y: np.ndarray
    problems: list[CellProblem]
    notes: list[str]
    n_problems: int = 0

    def __len__(self) -> int:
        return len(self.x)


def _refusal(text: str, column: ColumnType, value: float, reason: str) -> str:
    if reason == "text":
        return f"{text!r} is not a number; expected a {column.kind} value (leave it empty if unknown)"
    if reason == "infinite":
        return f"{text!r} is not a finite number"
    if reason == "range":
        return (f"{text} is beyond the range of the 32-bit numbers the model computes in "
                f"(±{FLOAT32_MAX:.2g})")
    if reason == "negative":
        return f"{value:g} is negative; this column only takes values ≥ 0"
    if reason == "category":
        shown = ", ".join(f"{c:g}" for c in column.categories)
        return f"{value:g} is not one of this column's values ({shown})"
    return f"{text} overflows this column's units in the model"


def parse_numbers(texts: Any) -> tuple[np.ndarray, np.ndarray]:
    """Cells as text -> (float64 values, NaN where empty or refused; the reason per cell: "" for a
    number or an empty cell, else "text", "infinite" (inf, nan written out, or past float64) or
    "range" (beyond the ±3.4e38 of the float32 the models compute in)). Vectorised."""
    import pandas as pd

    cells = pd.Series(texts, dtype=object).fillna("").astype(str).str.strip()
    empty = (cells == "").to_numpy()
    raw = pd.to_numeric(cells.where(~empty), errors="coerce").to_numpy(dtype=np.float64, copy=True)
    reason = np.full(len(raw), "", dtype=object)
    infinite = ~empty & cells.str.lower().str.lstrip("+-").isin(["inf", "infinity", "nan"]).to_numpy()
    reason[~empty & np.isnan(raw) & ~infinite] = "text"
    reason[infinite | (~empty & np.isinf(raw))] = "infinite"
    reason[np.isfinite(raw) & (np.abs(raw) > FLOAT32_MAX)] = "range"
    raw[reason != ""] = np.nan
    return raw, reason


def check_column(texts: Any, column: ColumnType) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One column of cells as text -> (values in model space, float32 with NaN where missing or refused;
    the indices of refused cells; the reason of each: "text", "infinite", "range", "negative",
    "category" or "overflow"). Empty cells are missing, not refused. Vectorised: a million cells
    take a fraction of a second."""
    raw, reason = parse_numbers(texts)
    good = reason == ""
    good &= np.isfinite(raw)  # an empty cell: missing, with no reason
    if column.kind == "loggaussian":
        reason[good & (raw < 0)] = "negative"
    if column.is_discrete:
        categories = np.asarray(column.categories, dtype=np.float64)
        known = np.zeros(len(raw), dtype=bool)
        known[good] = np.isclose(raw[good, None], categories[None, :]).any(axis=1)
        reason[good & ~known] = "category"
    good &= reason == ""
    values = np.full(len(raw), np.nan, dtype=np.float32)
    with np.errstate(over="ignore", invalid="ignore"):
        values[good] = column.to_model(raw[good])
    reason[good & ~np.isfinite(values)] = "overflow"
    values[reason != ""] = np.nan
    refused = np.flatnonzero(reason != "")
    return values, refused, reason[refused]


def rows_from_frame(frame: Any, schema: list[ColumnType], target: ColumnType | None = None) -> TableRows:
    """Check every cell of ``frame`` (a pandas DataFrame with a header, cells as text) against a model's
    column types, column by column.

    Columns are matched by name; a column the model needs but the frame lacks is missing in every row
    (with a note), columns the model does not know are ignored (with a note). Nothing is refused as a
    whole: each bad cell becomes missing and is reported as a ``CellProblem``."""
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
    frame = frame.loc[:, ~frame.columns.duplicated()]
    n = len(frame)
    x = np.full((n, len(schema)), np.nan, dtype=np.float32)
    y = np.full(n, np.nan, dtype=np.float32)
    problems: list[CellProblem] = []
    n_problems = 0
    columns = [(j, c) for j, c in enumerate(schema)] + ([(-1, target)] if target is not None else [])
    for j, column in columns:
        if column.name not in present:
            continue
        texts = frame[column.name].to_numpy(dtype=object)
        values, refused, reasons = check_column(texts, column)
        if j >= 0:
            x[:, j] = values
        else:
            y[:] = values
        n_problems += len(refused)
        for i, why in zip(refused[:max(0, LISTED_PROBLEMS - len(problems))], reasons):
            text = str(texts[i]).strip()
            value = float(text) if why in ("negative", "category") else float("nan")
            problems.append(CellProblem(int(i) + 1, column.name, text, _refusal(text, column, value, why)))
    return TableRows(x=x, observed=np.isfinite(x), y=y, problems=problems, notes=notes, n_problems=n_problems)


def rows_from_csv(data: bytes | str | Path, schema: list[ColumnType], target: ColumnType | None = None,
                  max_rows: int | None = None) -> TableRows:
    """``rows_from_frame`` on a CSV given as bytes (an upload) or a path; every cell is read as text so
    that a word in a numeric column is reported, not silently dropped. A file of more than ``max_rows``
    rows (``VIZVAE_MAX_CSV_ROWS`` by default) is refused before it is parsed."""
    import io

    import pandas as pd

    limit = max_rows or max_csv_rows()
    if isinstance(data, (str, Path)):
        data = Path(data).read_bytes()
    lines = data.count(b"\n") + (0 if data.endswith(b"\n") else 1) - 1  # data rows, the header aside
    if lines > limit:
        raise DataError(f"the file has about {lines:,} rows, over the limit of {limit:,} rows a page takes "
                        f"({MAX_CSV_ROWS_ENV}); upload the rows you want to look at")
    try:
        frame = pd.read_csv(io.BytesIO(data), dtype=str, keep_default_na=False, skipinitialspace=True,
                            nrows=limit + 1)
    except Exception as err:  # noqa: BLE001
        raise DataError(f"not a readable CSV with a header row ({type(err).__name__})") from None
    if frame.empty:
        raise DataError("the CSV has a header but no rows")
    if len(frame) > limit:  # quoted cells holding newlines can hide rows from the count above
        raise DataError(f"the file has more than {limit:,} rows, the limit a page takes ({MAX_CSV_ROWS_ENV})")
    return rows_from_frame(frame, schema, target)
