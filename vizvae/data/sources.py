"""Data sets at full size (10⁵–10⁶ items), opened without loading them whole: ``open_items(path)``
returns an ``ItemSource`` — ``len(source)`` items of ``source.n_features`` float32 values, read a
slice at a time (``source[start:stop]``), which is what batched encoding
(``inference.encodings``) and the atlas read.

==========================  ======================================================================
``.npy``                    memory-mapped (its header is checked before the map is made)
``.npz`` (``x``, ``y``)     an uncompressed member is memory-mapped in place; a compressed one
                            cannot be, and is refused with the way to save it
``.parquet``                read through Arrow one row group at a time (numeric columns)
``.csv`` (a header row)     converted once, in chunks, into a float32 ``.npy`` memory map in the
                            user cache (keyed by the CSV's SHA-256), then mapped; a cell holding
                            text is refused with its column and line, an empty cell is NaN
a folder of images          each image decoded when its slice is read (PNG, JPEG, …; in one
                            sub-folder per label, or not), at the size given
==========================  ======================================================================

Every source is hostile until checked: shapes and dtypes come from headers and are bounded
before anything is allocated, pickled objects are never loaded, images go through
``user.open_image`` (the pixel limit), and values arrive as float32 (integers in [0, 255] —
8-bit images — scaled to [0, 1]).
"""

from __future__ import annotations

import hashlib
import math
import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from vizvae.data.user import IMAGE_SUFFIXES, open_image, to_model_image
from vizvae.errors import DataError
from vizvae.paths import file_sha256, user_cache_root

MAX_ITEMS = 10_000_000
MAX_FEATURES = 1_000_000


class ItemSource:
    """``len(self)`` items of ``n_features`` values; ``self[a:b]`` is float32 (b − a, n_features)."""

    name: str = ""
    n_features: int = 0
    image_shape: tuple[int, int, int] | None = None
    labels: np.ndarray | None = None

    def __len__(self) -> int:
        raise NotImplementedError

    def read(self, start: int, stop: int) -> np.ndarray:
        raise NotImplementedError

    def __getitem__(self, rows: slice) -> np.ndarray:
        if not isinstance(rows, slice) or rows.step not in (None, 1):
            raise TypeError("an item source is read by contiguous slices")
        start, stop, _ = rows.indices(len(self))
        return self.read(start, max(start, stop))

    def digest(self) -> str:
        """SHA-256 of what the items are made from (the cache key of their encodings)."""
        raise NotImplementedError


def _check_shape(path: Path, shape: tuple[int, ...]) -> None:
    if len(shape) < 2:
        raise DataError(f"{path}: expected one row per item, (items, features) or (items, C, H, W); got shape {shape}")
    features = math.prod(shape[1:])
    if not 1 <= shape[0] <= MAX_ITEMS or not 1 <= features <= MAX_FEATURES:
        raise DataError(f"{path}: {shape[0]:,} items of {features:,} values; vizvae opens at most {MAX_ITEMS:,} items "
                        f"of at most {MAX_FEATURES:,} values")


def _image_shape(shape: tuple[int, ...]) -> tuple[int, int, int] | None:
    if len(shape) == 3:
        return (1, shape[1], shape[2])
    if len(shape) == 4 and shape[1] in (1, 3):
        return (shape[1], shape[2], shape[3])
    side = math.isqrt(math.prod(shape[1:]))
    return (1, side, side) if len(shape) == 2 and side * side == shape[1] else None


class ArraySource(ItemSource):
    """A memory-mapped numeric array (from ``.npy``, an uncompressed ``.npz`` member, or a converted
    ``.csv``; ``path`` is the user's file, whose bytes are the digest)."""

    def __init__(self, path: Path, array: np.ndarray, labels: np.ndarray | None = None, table: bool = False):
        self.path, self.array, self.labels = path, array, labels
        self.name = path.stem
        self.n_features = int(math.prod(array.shape[1:]))
        self.image_shape = None if table else _image_shape(array.shape)
        self.scale = 1.0 / 255.0 if array.dtype == np.uint8 else 1.0

    def __len__(self) -> int:
        return int(self.array.shape[0])

    def read(self, start: int, stop: int) -> np.ndarray:
        block = np.asarray(self.array[start:stop], dtype=np.float32).reshape(stop - start, self.n_features)
        return block * np.float32(self.scale) if self.scale != 1.0 else block

    def digest(self) -> str:
        return file_sha256(self.path)


def _read_header(handle: Any) -> tuple[tuple[int, ...], bool, np.dtype]:
    """(shape, Fortran order, dtype) from a .npy header, reading nothing after it."""
    version = np.lib.format.read_magic(handle)
    if version == (1, 0):
        return np.lib.format.read_array_header_1_0(handle)
    return np.lib.format.read_array_header_2_0(handle)


def _numeric(path: Path, dtype: np.dtype) -> None:
    if dtype.hasobject or not (np.issubdtype(dtype, np.integer) or np.issubdtype(dtype, np.floating)):
        raise DataError(f"{path}: the items must be numbers (integers or floats), not {dtype}")


def open_npy(path: Path) -> ArraySource:
    with open(path, "rb") as handle:
        try:
            shape, fortran, dtype = _read_header(handle)
        except ValueError as err:
            raise DataError(f"{path}: not a .npy array ({err})") from None
    _numeric(path, np.dtype(dtype))
    _check_shape(path, tuple(shape))
    if fortran:
        raise DataError(f"{path}: a Fortran-ordered array; save it C-ordered (np.ascontiguousarray) to map it")
    return ArraySource(path, np.load(path, mmap_mode="r", allow_pickle=False))


def open_npz(path: Path) -> ArraySource:
    """``x`` memory-mapped inside the archive (stored, not deflated); ``y`` (labels) read whole."""
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as err:
        raise DataError(f"{path}: not a readable .npz ({err})") from None
    with archive:
        names = {info.filename: info for info in archive.infolist()}
        if "x.npy" not in names:
            raise DataError(f"{path}: expected an array named 'x' (and optionally 'y'), found "
                            f"{sorted(n.removesuffix('.npy') for n in names)}")
        member = names["x.npy"]
        if member.compress_type != zipfile.ZIP_STORED:
            raise DataError(f"{path}: 'x' is compressed, and a compressed array cannot be read in place; save it with "
                            "np.savez (not savez_compressed) or as a .npy")
        with archive.open(member) as handle:
            try:
                shape, fortran, dtype = _read_header(handle)
            except ValueError as err:
                raise DataError(f"{path}: 'x' is not a .npy array ({err})") from None
            header_length = handle.tell()
        labels = None
        if "y.npy" in names and names["y.npy"].file_size <= 8 * MAX_ITEMS + 4096:
            with archive.open(names["y.npy"]) as handle:
                labels = np.lib.format.read_array(handle, allow_pickle=False)
    _numeric(path, np.dtype(dtype))
    _check_shape(path, tuple(shape))
    if fortran:
        raise DataError(f"{path}: 'x' is Fortran-ordered; save it C-ordered to map it")
    with open(path, "rb") as handle:  # the member's data start: its local header, then the .npy header
        handle.seek(member.header_offset + 26)
        name_length, extra_length = np.frombuffer(handle.read(4), dtype="<u2")
    offset = member.header_offset + 30 + int(name_length) + int(extra_length) + header_length
    array = np.memmap(path, dtype=np.dtype(dtype), mode="r", offset=offset, shape=tuple(shape))
    if labels is not None and len(labels) != shape[0]:
        raise DataError(f"{path}: 'y' has {len(labels)} rows but 'x' has {shape[0]}")
    return ArraySource(path, array, labels)


class ParquetSource(ItemSource):
    """The numeric columns of a Parquet file, one row group at a time."""

    def __init__(self, path: Path):
        import pyarrow.parquet as pq

        try:
            self.file = pq.ParquetFile(path)
        except Exception as err:  # noqa: BLE001 - Arrow's error types vary; all mean "not readable"
            raise DataError(f"{path}: not a readable Parquet file ({type(err).__name__})") from None
        schema = self.file.schema_arrow
        self.columns = [field.name for field in schema if _is_number(field.type)]
        if not self.columns:
            raise DataError(f"{path}: no numeric columns")
        self.path, self.name, self.n_features = path, path.stem, len(self.columns)
        rows = self.file.metadata.num_rows
        _check_shape(path, (rows, self.n_features))
        self.starts = np.cumsum([0] + [self.file.metadata.row_group(i).num_rows
                                       for i in range(self.file.num_row_groups)])

    def __len__(self) -> int:
        return int(self.starts[-1])

    def read(self, start: int, stop: int) -> np.ndarray:
        first = int(np.searchsorted(self.starts, start, side="right") - 1)
        last = int(np.searchsorted(self.starts, stop, side="left"))
        table = self.file.read_row_groups(list(range(first, max(first + 1, last))), columns=self.columns)
        block = np.column_stack([table.column(c).to_numpy(zero_copy_only=False).astype(np.float32)
                                 for c in self.columns])
        offset = int(self.starts[first])
        return block[start - offset: stop - offset]

    def digest(self) -> str:
        return file_sha256(self.path)


def _is_number(arrow_type: Any) -> bool:
    import pyarrow.types as t

    return t.is_integer(arrow_type) or t.is_floating(arrow_type)


class ImageFolderSource(ItemSource):
    """Every image under a folder (sorted paths; a sub-folder's name is its images' label), decoded
    to ``image_shape`` when read."""

    def __init__(self, path: Path, image_shape: tuple[int, int, int]):
        self.files = sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
        if not self.files:
            raise DataError(f"{path}: no images found (.png, .jpg, ...)")
        _check_shape(path, (len(self.files), math.prod(image_shape)))
        self.path, self.name, self.image_shape = path, path.name, image_shape
        self.n_features = int(math.prod(image_shape))
        parents = [f.parent.name if f.parent != path else None for f in self.files]
        if all(p is not None for p in parents):
            classes = sorted(set(parents))
            self.labels = np.array([classes.index(p) for p in parents], dtype=np.int64)

    def __len__(self) -> int:
        return len(self.files)

    def read(self, start: int, stop: int) -> np.ndarray:
        block = np.empty((stop - start, self.n_features), dtype=np.float32)
        for row, file in enumerate(self.files[start:stop]):
            try:
                with open_image(file) as image:
                    block[row] = to_model_image(image, self.image_shape)
            except DataError as err:
                raise DataError(f"{file}: {err}") from None
            except (OSError, ValueError, SyntaxError, EOFError) as err:
                raise DataError(f"{file}: not a readable image ({type(err).__name__})") from None
        return block

    def digest(self) -> str:
        """The image files' relative names, sizes and modification times (re-hashing 10⁶ files on
        every open would take minutes), and the decoding size."""
        digest = hashlib.sha256(repr(self.image_shape).encode())
        for file in self.files:
            info = file.stat()
            digest.update(f"{file.relative_to(self.path)}|{info.st_size}|{info.st_mtime_ns}\n".encode())
        return digest.hexdigest()


CSV_CHUNK = 65_536


def open_csv(path: Path, cache_dir: Path) -> ArraySource:
    """The CSV's columns as a float32 memory map, converted on first open (see the module docstring)."""
    import pandas as pd

    from vizvae.data.user import parse_numbers

    target = cache_dir / "tables" / f"{file_sha256(path)}.npy"
    if not target.is_file():
        try:
            columns = list(pd.read_csv(path, nrows=0).columns)
        except (ValueError, UnicodeDecodeError, pd.errors.ParserError) as err:
            raise DataError(f"{path}: not a readable CSV with a header row ({type(err).__name__})") from None
        with open(path, "rb") as handle:
            rows = sum(chunk.count(b"\n") for chunk in iter(lambda: handle.read(1 << 22), b""))
        with open(path, "rb") as handle:  # a last line without its newline still counts
            handle.seek(max(0, path.stat().st_size - 1))
            rows += 0 if handle.read(1) == b"\n" else 1
        _check_shape(path, (max(rows - 1, 0), len(columns)))
        target.parent.mkdir(parents=True, exist_ok=True)
        staged = target.with_name(f".{target.name}.tmp-{os.getpid()}")
        trimmed = target.with_name(f".{target.name}.trim-{os.getpid()}")
        try:
            out = np.lib.format.open_memmap(staged, mode="w+", dtype=np.float32, shape=(rows - 1, len(columns)))
            start = 0
            for chunk in pd.read_csv(path, dtype=str, keep_default_na=False, chunksize=CSV_CHUNK):
                for j, column in enumerate(columns):
                    values, reason = parse_numbers(chunk[column].to_numpy())
                    refused = np.flatnonzero(reason != "")
                    if len(refused):
                        line = start + int(refused[0]) + 2  # the header is line 1
                        raise DataError(f"{path}: column {column!r}, line {line}: not a number vizvae can use "
                                        f"({reason[refused[0]]}); leave a missing value's cell empty")
                    out[start: start + len(chunk), j] = values
                start += len(chunk)
            out.flush()
            if start != rows - 1:  # blank lines, or quoted cells spanning lines: fewer rows than newlines
                exact = np.lib.format.open_memmap(trimmed, mode="w+", dtype=np.float32, shape=(start, len(columns)))
                for first in range(0, start, CSV_CHUNK):
                    exact[first: first + CSV_CHUNK] = out[first: min(first + CSV_CHUNK, start)]
                exact.flush()
                del exact
                os.replace(trimmed, staged)
            del out
            os.replace(staged, target)
        finally:
            staged.unlink(missing_ok=True)
            trimmed.unlink(missing_ok=True)
    return ArraySource(path, np.load(target, mmap_mode="r"), table=True)


def open_items(path: str | Path, image_shape: tuple[int, int, int] = (1, 28, 28),
               cache_dir: str | Path | None = None) -> ItemSource:
    """The items at ``path`` (see the module docstring); ``image_shape``: the size an image folder's
    images are decoded to; ``cache_dir``: where a CSV's conversion goes (default the user cache)."""
    path = Path(path)
    if path.is_dir():
        return ImageFolderSource(path, image_shape)
    if path.suffix.lower() == ".csv" and path.is_file():
        return open_csv(path, Path(cache_dir) if cache_dir is not None else user_cache_root())
    if not path.is_file():
        raise DataError(f"{path}: no such file or folder")
    suffix = path.suffix.lower()
    if suffix == ".npy":
        return open_npy(path)
    if suffix == ".npz":
        return open_npz(path)
    if suffix in (".parquet", ".pq"):
        return ParquetSource(path)
    raise DataError(f"{path}: expected a .npy, .npz, .parquet or .csv file, or a folder of images")
