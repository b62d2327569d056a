"""Stored results of slow computations, keyed by the SHA-256 of a checkpoint's weights.

One cache for everything derived from a checkpoint (projections, Fréchet tables, posterior
grids and chains, Fig. 4.4 grids). A result is named by a short ``name`` (``"projection-umap"``)
and the settings it was computed with (``params``, a JSON object); its file holds the arrays (or
JSON) together with the weights' SHA-256 and the settings, so that

* a file written for other weights (a retrained or replaced checkpoint) is *stale*: it is
  ignored and the result recomputed;
* two settings never share a file, even if the short hash in its name collided.

Where results live:

* ``<checkpoint>/precomputed/`` — for the shipped models ``assets/models/<name>/precomputed/`` —
  written by ``python -m vizvae precompute`` at build time and read-only for the app;
* ``$VIZVAE_CACHE_DIR/<sha256>/`` (default ``~/.cache/vizvae/<sha256>/``) for everything the app
  computes itself: user checkpoints, and views of shipped models the builder did not store.

Files are ``.npz`` (read by ``read_npz``, which checks every array's header before allocating it)
or ``.json``: never a pickle. A stored result a caller expects in a shape (``expect``) is used only
when it has that shape and finite values; otherwise it is recomputed. Writes go to
a temporary file in the same folder and are renamed into place (``os.replace``), so a reader never
sees half a file, and two processes writing the same result both leave a whole one.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import tempfile
import zipfile
from functools import lru_cache
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from vizvae.checkpoint import WEIGHTS
from vizvae.paths import file_sha256, user_cache_root

PRECOMPUTED = "precomputed"
MAX_CACHE_MB_ENV = "VIZVAE_MAX_CACHE_MB"
DEFAULT_MAX_CACHE_MB = 256  # one stored result, uncompressed (shipped ones are under 1 MB)
SHA_KEY = "weights_sha256"
PARAMS_KEY = "params"
_ARRAY_META = "__meta__"  # the .npz entry holding {weights_sha256, params} as JSON text
_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,80}$")
_SHA = re.compile(r"^[0-9a-f]{64}$")


# -- the key: the weights' SHA-256 ----------------------------------------------------------------
def checkpoint_sha256(folder: str | Path) -> str:
    """SHA-256 (hex) of ``<folder>/model.safetensors``, computed once per file version: memoised by
    (resolved path, modification time, size), so an edited or replaced file is hashed again."""
    file = (Path(folder) / WEIGHTS).resolve()
    info = file.stat()
    return _file_sha256(str(file), info.st_mtime_ns, info.st_size)


@lru_cache(maxsize=256)
def _file_sha256(path: str, mtime_ns: int, size: int) -> str:
    return file_sha256(path)


@lru_cache(maxsize=8)
def source_fingerprint(sources: tuple[str, ...]) -> str:
    """SHA-256 of vizvae source files (paths relative to the package, e.g. ``"kernels/hmc.py"``): the
    key of results that depend on the code that computed them, not on a checkpoint's weights alone."""
    digest = hashlib.sha256()
    package = Path(__file__).resolve().parent.parent
    for name in sources:
        digest.update(name.encode() + b"\0" + (package / name).read_bytes())
    return digest.hexdigest()


# -- where results live ---------------------------------------------------------------------------
def precomputed_dir(folder: str | Path) -> Path:
    return Path(folder) / PRECOMPUTED


def user_dir(sha256: str) -> Path:
    if not _SHA.match(sha256):
        raise ValueError(f"not a SHA-256 hex digest: {sha256!r}")
    return user_cache_root() / sha256


def _search_dirs(folder: Path, sha256: str) -> list[Path]:
    """Where a result may be found, first hit wins: what the builder stored beside the weights (a
    shipped model, or any folder ``precompute`` ran on), then the user cache."""
    return [precomputed_dir(folder), user_dir(sha256)]


# -- file names -------------------------------------------------------------------------------------
def canonical_params(params: Mapping[str, Any] | None) -> str:
    """Settings as canonical JSON (sorted keys, no spaces): equal settings, equal text."""
    return json.dumps(dict(params or {}), sort_keys=True, separators=(",", ":"), allow_nan=False)


def result_stem(name: str, params: Mapping[str, Any] | None) -> str:
    if not _NAME.match(name):
        raise ValueError(f"a result name is lower-case letters, digits, '.', '_' and '-': {name!r}")
    return f"{name}-{hashlib.sha256(canonical_params(params).encode()).hexdigest()[:12]}"


# -- reading ------------------------------------------------------------------------------------------
def stored_result(folder: str | Path, name: str, params: Mapping[str, Any] | None = None,
                  kind: str = "npz") -> Path | None:
    """The file holding ``name`` at ``params`` for the checkpoint in ``folder``, if one exists
    and belongs to its current weights (else None: compute it). ``kind`` is ``npz`` or ``json``."""
    folder = Path(folder)
    sha256 = checkpoint_sha256(folder)
    stem = result_stem(name, params)
    for directory in _search_dirs(folder, sha256):
        file = directory / f"{stem}.{kind}"
        if file.is_file() and _read(file, sha256, canonical_params(params)) is not None:
            return file
    return None


def load_arrays(folder: str | Path, name: str, params: Mapping[str, Any] | None = None,
                expect: Mapping[str, tuple[int | None, ...]] | None = None) -> dict[str, np.ndarray] | None:
    """The stored arrays of a result, or None when there is none for these weights and settings.
    ``expect``: array name -> shape (None: any length) each stored array must have, with numbers
    that are all finite; a file that holds anything else is passed over (recomputed)."""
    folder = Path(folder)
    sha256 = checkpoint_sha256(folder)
    stem = result_stem(name, params)
    for directory in _search_dirs(folder, sha256):
        arrays = _read(directory / f"{stem}.npz", sha256, canonical_params(params))
        if arrays is not None and conforms(arrays, expect):
            return arrays
    return None


def conforms(arrays: Mapping[str, np.ndarray], expect: Mapping[str, tuple[int | None, ...]] | None) -> bool:
    """Whether every expected array is there, of its shape, numeric, and finite where it is float."""
    for key, shape in (expect or {}).items():
        array = arrays.get(key)
        if array is None or array.ndim != len(shape) or array.dtype.kind not in "biuf":
            return False
        if any(want is not None and want != have for want, have in zip(shape, array.shape)):
            return False
        if array.dtype.kind == "f" and not np.isfinite(array).all():
            return False
    return True


def max_cache_bytes() -> int:
    """``$VIZVAE_MAX_CACHE_MB`` (default 256) MiB: the most one stored result may hold, uncompressed."""
    text = os.environ.get(MAX_CACHE_MB_ENV, "")
    return (int(text) if text.isdigit() and int(text) > 0 else DEFAULT_MAX_CACHE_MB) * 1024 * 1024


def read_npz(file: str | Path, max_bytes: int | None = None) -> dict[str, np.ndarray]:
    """The arrays of an ``.npz``, each member's ``.npy`` header read first (``numpy.lib.format``) and
    checked before a byte is allocated for it: a plain dtype (never an object, so never a pickle),
    a shape whose size is what the member holds, all members together within ``max_bytes``
    (default ``max_cache_bytes()``). ``np.load`` would allocate what a header claims (2⁴⁰ rows:
    "Unable to allocate 8.00 TiB"). Raises ``ValueError`` naming the member."""
    fmt = np.lib.format
    limit = max_cache_bytes() if max_bytes is None else max_bytes
    arrays: dict[str, np.ndarray] = {}
    total = 0
    with zipfile.ZipFile(file) as archive:
        for info in archive.infolist():
            if not info.filename.endswith(".npy"):
                raise ValueError(f"{file}: member {info.filename!r} is not an .npy array")
            with archive.open(info) as member:
                version = fmt.read_magic(member)
                if version == (1, 0):
                    shape, fortran_order, dtype = fmt.read_array_header_1_0(member)
                elif version == (2, 0):
                    shape, fortran_order, dtype = fmt.read_array_header_2_0(member)
                else:
                    raise ValueError(f"{file}: member {info.filename!r} has .npy version {version}")
                if dtype.hasobject:
                    raise ValueError(f"{file}: member {info.filename!r} holds Python objects (a pickle)")
                nbytes = math.prod(shape) * dtype.itemsize
                held = info.file_size - member.tell()
                if nbytes != held:
                    raise ValueError(f"{file}: member {info.filename!r} claims shape {shape} ({nbytes:,} bytes) "
                                     f"but holds {held:,} bytes")
                total += nbytes
                if total > limit:
                    raise ValueError(f"{file}: holds over {limit:,} bytes; raise ${MAX_CACHE_MB_ENV} if it is genuine")
                buffer = bytearray(nbytes)
                if member.readinto(buffer) != nbytes:
                    raise ValueError(f"{file}: member {info.filename!r} is truncated")
                array = np.frombuffer(buffer, dtype=dtype)
                arrays[info.filename[:-4]] = array.reshape(shape, order="F" if fortran_order else "C")
    return arrays


def load_json(folder: str | Path, name: str, params: Mapping[str, Any] | None = None) -> Any | None:
    """The stored JSON value of a result, or None."""
    folder = Path(folder)
    sha256 = checkpoint_sha256(folder)
    stem = result_stem(name, params)
    for directory in _search_dirs(folder, sha256):
        stored = _read(directory / f"{stem}.json", sha256, canonical_params(params))
        if stored is not None:
            return stored["result"]
    return None


def _read(file: Path, sha256: str, params_text: str) -> Any | None:
    """A file's content if it is whole, of these weights and of these settings; else None."""
    if not file.is_file():
        return None
    try:
        if file.suffix == ".json":
            stored = json.loads(file.read_text(encoding="utf-8"))
            meta = stored if isinstance(stored, dict) else {}
        else:
            stored = read_npz(file)
            meta = json.loads(str(stored.pop(_ARRAY_META)))
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, UnicodeDecodeError, RecursionError):
        return None  # damaged or hostile: recomputed and overwritten
    if meta.get(SHA_KEY) != sha256 or canonical_params(meta.get(PARAMS_KEY)) != params_text:
        return None  # stale: written for other weights (or, rarely, other settings)
    return stored


# -- writing ------------------------------------------------------------------------------------------
def target_dir(folder: str | Path, precomputed: bool = False) -> Path:
    """Where a new result goes: the checkpoint's ``precomputed/`` when the builder ships it, else
    the user cache of its weights."""
    return precomputed_dir(folder) if precomputed else user_dir(checkpoint_sha256(folder))


def store_arrays(folder: str | Path, name: str, params: Mapping[str, Any] | None, arrays: Mapping[str, Any], *,
                 precomputed: bool = False) -> Path | None:
    """Store named arrays (compressed .npz) stamped with the weights' SHA-256 and the settings.
    Returns the file, or None when the disk refused (a cache is an optimisation, never an error)."""
    if _ARRAY_META in arrays:
        raise ValueError(f"{_ARRAY_META!r} is reserved")
    meta = json.dumps({SHA_KEY: checkpoint_sha256(folder), PARAMS_KEY: json.loads(canonical_params(params))})
    contents = {key: np.asarray(value) for key, value in arrays.items()}
    if any(value.dtype == object for value in contents.values()):
        raise ValueError("object arrays would need pickle; store numbers or strings")
    file = target_dir(folder, precomputed) / f"{result_stem(name, params)}.npz"
    return write_atomically(file, lambda handle: np.savez_compressed(handle, **contents, **{_ARRAY_META: np.array(meta)}))


def store_json(folder: str | Path, name: str, params: Mapping[str, Any] | None, result: Any, *,
               precomputed: bool = False) -> Path | None:
    """Store a JSON value stamped with the weights' SHA-256 and the settings."""
    document = {SHA_KEY: checkpoint_sha256(folder), PARAMS_KEY: json.loads(canonical_params(params)), "result": result}
    text = json.dumps(document, indent=None, separators=(",", ":"), allow_nan=False).encode()
    file = target_dir(folder, precomputed) / f"{result_stem(name, params)}.json"
    return write_atomically(file, lambda handle: handle.write(text))


def write_atomically(file: Path, write) -> Path | None:
    """Write into a temporary file beside ``file``, then rename it into place (mode 0644)."""
    tmp = None
    try:
        file.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=file.parent, prefix=".tmp-", suffix=file.suffix, delete=False) as handle:
            tmp = Path(handle.name)
            write(handle)
        os.chmod(tmp, 0o644)
        os.replace(tmp, file)
        return file
    except OSError:
        if tmp is not None:
            tmp.unlink(missing_ok=True)
        return None


def prune_stale(folder: str | Path) -> list[Path]:
    """Delete the files under ``<folder>/precomputed/`` that belong to other weights; returns them."""
    directory = precomputed_dir(folder)
    if not directory.is_dir():
        return []
    sha256 = checkpoint_sha256(folder)
    removed = []
    for file in sorted(directory.glob("*")):
        if file.suffix in (".npz", ".json") and _stamp(file) != sha256:
            file.unlink(missing_ok=True)
            removed.append(file)
    return removed


def _stamp(file: Path) -> str | None:
    try:
        if file.suffix == ".json":
            return json.loads(file.read_text(encoding="utf-8")).get(SHA_KEY)
        return json.loads(str(read_npz(file)[_ARRAY_META])).get(SHA_KEY)
    except (OSError, ValueError, KeyError, EOFError, AttributeError, zipfile.BadZipFile, UnicodeDecodeError,
            RecursionError):
        return None


# -- read, else compute and store ---------------------------------------------------------------------
def cached_arrays(folder: str | Path | None, name: str, params: Mapping[str, Any] | None,
                  compute, *, precomputed: bool = False,
                  expect: Mapping[str, tuple[int | None, ...]] | None = None) -> tuple[dict[str, np.ndarray], bool]:
    """(arrays, whether they were read from a file): the stored result, else ``compute()`` (a
    mapping of arrays), stored for next time. ``folder`` None (a model not saved on disk): no cache.
    ``expect``: the shapes a stored result must have, finite (see ``load_arrays``)."""
    if folder is not None and not precomputed:
        stored = load_arrays(folder, name, params, expect)
        if stored is not None:
            return stored, True
    arrays = {key: np.asarray(value) for key, value in compute().items()}
    if folder is not None:
        store_arrays(folder, name, params, arrays, precomputed=precomputed)
    return arrays, False


def cached_json(folder: str | Path | None, name: str, params: Mapping[str, Any] | None,
                compute, *, precomputed: bool = False) -> tuple[Any, bool]:
    """(value, whether it was read from a file), as ``cached_arrays`` for a JSON value."""
    if folder is not None and not precomputed:
        stored = load_json(folder, name, params)
        if stored is not None:
            return stored, True
    value = compute()
    if folder is not None:
        store_json(folder, name, params, value, precomputed=precomputed)
    return value, False
