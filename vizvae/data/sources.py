"""Data sets at full size (10⁵–10⁶ items), opened without loading them whole: ``open_items(path)``
returns an ``ItemSource`` — ``len(source)`` items of ``source.n_features`` float32 values, read a
slice at a time (``source[start:stop]``), which is what batched encoding
(``inference.encodings``) and the atlas read.

==========================  ======================================================================
``.npy``                    memory-mapped (its header is checked before the map is made)
``.npz`` (``x``, ``y``)     an uncompressed member is memory-mapped in place; a compressed one
                            cannot be, and is refused with the way to save it
``.parquet``                read through Arrow one row group at a time (numeric columns)
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
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from vizvae.data.user import IMAGE_SUFFIXES, open_image, to_model_image
from vizvae.errors import DataError

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
    """A memory-mapped numeric array (from ``.npy`` or an uncompressed ``.npz`` member)."""

    def __init__(self, path: Path, array: np.ndarray, labels: np.ndarray | None = None):
        self.path, self.array, self.labels = path, array, labels
        self.name = path.stem
        self.n_features = int(math.prod(array.shape[1:]))
        self.image_shape = _image_shape(array.shape)
        self.scale = 1.0 / 255.0 if array.dtype == np.uint8 else 1.0

    def __len__(self) -> int:
        return int(self.array.shape[0])

    def read(self, start: int, stop: int) -> np.ndarray:
        block = np.asarray(self.array[start:stop], dtype=np.float32).reshape(stop - start, self.n_features)
        return block * np.float32(self.scale) if self.scale != 1.0 else block

    def digest(self) -> str:
        return _file_sha256(self.path)


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
        return _file_sha256(self.path)


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


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def open_items(path: str | Path, image_shape: tuple[int, int, int] = (1, 28, 28)) -> ItemSource:
    """The items at ``path`` (see the module docstring); ``image_shape``: the size an image folder's
    images are decoded to."""
    path = Path(path)
    if path.is_dir():
        return ImageFolderSource(path, image_shape)
    if not path.is_file():
        raise DataError(f"{path}: no such file or folder")
    suffix = path.suffix.lower()
    if suffix == ".npy":
        return open_npy(path)
    if suffix == ".npz":
        return open_npz(path)
    if suffix in (".parquet", ".pq"):
        return ParquetSource(path)
    raise DataError(f"{path}: expected a .npy, .npz or .parquet file, or a folder of images")
