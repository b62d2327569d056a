"""Encodings of large data sets (10⁵–10⁶ items): the encoder's means and log-variances, written batch
by batch into float32 ``.npy`` memory maps and kept on disk, keyed by the SHA-256 of the checkpoint's
weights and the SHA-256 of the data, so that a second open maps them instantly.

Where: ``<user cache>/<weights sha256>/encodings/<data sha256>/`` holding ``mean.npy``,
``log_var.npy`` and ``meta.json``. The arrays are written under temporary names and renamed; then
``meta.json`` (the weights' and data's digests, the shape) is written last, so a folder without a
matching ``meta.json`` is an unfinished or stale encoding and is computed again.

The data's digest is of its bytes: a memory-mapped ``.npy`` is hashed from its file, once per
version of it (remembered on disk by ``paths.remembered_file_sha256``); an in-memory array from its
buffer.
"""

from __future__ import annotations

import hashlib
import json
import mmap
import os
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from functools import partial
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch

from vizvae.errors import VizvaeError
from vizvae.inference.cache import checkpoint_sha256, user_dir
from vizvae.paths import remembered_digest

META = "meta.json"
DEFAULT_BATCH = 4096


class Cancelled(VizvaeError):
    """The encoding was cancelled between two batches; nothing was stored."""


def data_sha256(items: np.ndarray) -> str:
    """SHA-256 of the items' shape, dtype and data bytes: the same for a memory map and for the same
    array in memory. A ``data.sources.ItemSource`` gives its own digest (of its file, or of an image
    folder's listing)."""
    if callable(getattr(items, "digest", None)):
        return hashlib.sha256(f"{type(items).__name__}|{len(items)}|{items.n_features}|{items.digest()}".encode()
                              ).hexdigest()
    if _mapped_file(items):
        header = f"{items.shape}|{items.dtype.str}".encode()
        offset, nbytes = int(items.offset), int(items.nbytes)
        return remembered_digest(items.filename, f"array|{header.decode()}|{offset}|{nbytes}",
                                 lambda: _bytes_digest(str(items.filename), header, offset, nbytes))
    array = np.ascontiguousarray(items)
    digest = hashlib.sha256(f"{array.shape}|{array.dtype.str}".encode())
    digest.update(memoryview(array).cast("B"))
    return digest.hexdigest()


def _mapped_file(items) -> bool:
    """Whether ``items`` is a whole memory-mapped array as ``np.load(mmap_mode=...)`` returns it (its
    ``offset`` and ``filename`` then say where its bytes are; a slice of one keeps its parent's
    offset, so a view is read as the array it is)."""
    return (isinstance(items, np.memmap) and isinstance(items.base, mmap.mmap) and bool(items.filename)
            and items.offset is not None and items.flags.c_contiguous)


def _bytes_digest(path: str, header: bytes, offset: int, nbytes: int) -> str:
    """The digest of ``header`` and the ``nbytes`` data bytes at ``offset`` (an array's, without the file's header)."""
    digest = hashlib.sha256(header)
    with open(path, "rb") as handle:
        handle.seek(offset)
        left = nbytes
        while left > 0:
            block = handle.read(min(1 << 22, left))
            if not block:
                break
            digest.update(block)
            left -= len(block)
    return digest.hexdigest()


@torch.inference_mode()
def encode_into(model, items: np.ndarray, mean: np.ndarray, log_var: np.ndarray, batch_size: int = DEFAULT_BATCH,
                progress: Callable[[int, int], None] | None = None, cancelled: Callable[[], bool] | None = None) -> None:
    """Encode ``items`` (n, features) batch by batch into the arrays ``mean`` and ``log_var`` (n, latent)."""
    device = model.device
    n = len(items)
    for start, block in _blocks(items, batch_size):
        if cancelled is not None and cancelled():
            raise Cancelled("the encoding was cancelled; nothing was stored")
        batch = torch.from_numpy(block)  # a float32 array of its own (``_blocks``)
        if device.type == "cuda":
            batch = batch.pin_memory().to(device, non_blocking=True)
        posterior = model.encode(batch.to(device))
        mean[start: start + len(batch)] = posterior.mean.float().cpu().numpy()
        log_var[start: start + len(batch)] = (2.0 * posterior.std.float().log()).cpu().numpy()
        if progress is not None:
            progress(min(start + batch_size, n), n)


def _blocks(items, batch_size: int) -> Iterator[tuple[int, np.ndarray]]:
    """(start, rows as a float32 (rows, ...) array of its own) of ``items`` batch by batch, the next
    batch read in a second thread while the model encodes this one (reading a 16 MB batch and
    converting it cost a quarter of the encoder's time when done in turn). A memory-mapped ``.npy``
    is read with ``preadv`` straight into the batch's buffer instead of through its mapping: pages
    touched through a mapping count in the process's resident memory, so encoding 10⁶ images
    (4 GB) that way would show the server at 4 GB."""
    n = len(items)
    starts = list(range(0, n, batch_size))
    if not starts:
        return
    with ExitStack() as stack:
        if _mapped_file(items):
            handle = stack.enter_context(open(items.filename, "rb"))
            read = partial(_read_mapped, items, handle.fileno(), batch_size)
        else:
            def read(start: int) -> np.ndarray:
                return np.array(items[start: start + batch_size], dtype=np.float32)  # a copy: the input stays untouched
        pool = stack.enter_context(ThreadPoolExecutor(max_workers=1, thread_name_prefix="vizvae-read"))
        pending = pool.submit(read, starts[0])
        for k, start in enumerate(starts):
            block = pending.result()
            if k + 1 < len(starts):
                pending = pool.submit(read, starts[k + 1])
            yield start, block


def _read_mapped(items: np.memmap, fd: int, batch_size: int, start: int) -> np.ndarray:
    rows = min(batch_size, len(items) - start)
    row_bytes = items.dtype.itemsize * int(np.prod(items.shape[1:]))
    buffer = bytearray(rows * row_bytes)
    got = os.preadv(fd, [buffer], int(items.offset) + start * row_bytes)
    if got != len(buffer):
        raise VizvaeError(f"{items.filename}: the file ended early (read {got:,} of {len(buffer):,} bytes)")
    block = np.frombuffer(buffer, dtype=items.dtype).reshape((rows, *items.shape[1:]))
    return block if block.dtype == np.float32 else block.astype(np.float32)


def cached_encodings(folder: str | Path, model, items: np.ndarray, batch_size: int = DEFAULT_BATCH,
                     progress: Callable[[int, int], None] | None = None,
                     cancelled: Callable[[], bool] | None = None,
                     root: str | Path | None = None) -> tuple[np.ndarray, np.ndarray, bool]:
    """(means, log-variances, read from the cache?) of every item, as read-only memory maps: from
    the cache of the checkpoint in ``folder`` when it holds them for these weights and these
    items, else encoded now (see ``encode_into``) and stored. ``root``: another cache root than
    the user cache (a benchmark's scratch folder)."""
    directory, weights, data = encodings_directory(folder, items, root)
    shape = (len(items), int(model.latent_dim))
    if _complete(directory, weights, data, shape):
        return np.load(directory / "mean.npy", mmap_mode="r"), np.load(directory / "log_var.npy", mmap_mode="r"), True
    directory.mkdir(parents=True, exist_ok=True)
    (directory / META).unlink(missing_ok=True)  # whatever was there is unfinished or stale
    tag = f".tmp-{os.getpid()}.npy"
    staged = {name: directory / f"{name}{tag}" for name in ("mean", "log_var")}
    try:
        arrays = {name: np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=shape)
                  for name, path in staged.items()}
        encode_into(model, items, arrays["mean"], arrays["log_var"], batch_size, progress, cancelled)
        for name, array in arrays.items():
            array.flush()
        del arrays
        for name, path in staged.items():
            os.replace(path, directory / f"{name}.npy")
        meta = json.dumps({"weights_sha256": weights, "data_sha256": data, "shape": list(shape)})
        (directory / f"{META}{tag}").write_text(meta)
        os.replace(directory / f"{META}{tag}", directory / META)  # the commit point
    finally:
        for path in [*staged.values(), directory / f"{META}{tag}"]:
            path.unlink(missing_ok=True)
    return np.load(directory / "mean.npy", mmap_mode="r"), np.load(directory / "log_var.npy", mmap_mode="r"), False


def encodings_directory(folder: str | Path, items: np.ndarray, root: str | Path | None = None
                        ) -> tuple[Path, str, str]:
    """(where the encodings of ``items`` by the checkpoint in ``folder`` are kept, the weights'
    digest, the data's digest). What else is computed from them (projections) is kept there too."""
    weights, data = checkpoint_sha256(folder), data_sha256(items)
    base = user_dir(weights) if root is None else Path(root) / user_dir(weights).name
    return base / "encodings" / data, weights, data


def stored_encodings(folder: str | Path, model, items: np.ndarray, root: str | Path | None = None
                     ) -> tuple[np.ndarray, np.ndarray] | None:
    """(means, log-variances) as read-only memory maps when they are stored already, else None (no wait)."""
    directory, weights, data = encodings_directory(folder, items, root)
    if not _complete(directory, weights, data, (len(items), int(model.latent_dim))):
        return None
    return np.load(directory / "mean.npy", mmap_mode="r"), np.load(directory / "log_var.npy", mmap_mode="r")


def _complete(directory: Path, weights: str, data: str, shape: tuple[int, int]) -> bool:
    try:
        meta = json.loads((directory / META).read_text())
        headers = [np.load(directory / f"{name}.npy", mmap_mode="r") for name in ("mean", "log_var")]
    except (OSError, ValueError):
        return False
    return (meta == {"weights_sha256": weights, "data_sha256": data, "shape": list(shape)}
            and all(h.shape == shape and h.dtype == np.float32 for h in headers))


ELBO_SAMPLES = 1  # z draws per item: the colour of a point, not an estimate to report


def elbo_file(directory: Path) -> Path:
    return Path(directory) / "elbo.npy"


def stored_elbo(directory: Path, n: int) -> np.ndarray | None:
    """The per-item ELBO stored beside the encodings in ``directory`` (None: none, or not whole)."""
    try:
        meta = json.loads((Path(directory) / "elbo.json").read_text())
        values = np.load(elbo_file(directory), mmap_mode="r")
    except (OSError, ValueError):
        return None
    if values.shape != (n,) or values.dtype != np.float32 or meta.get("n") != n:
        return None
    return values


@torch.inference_mode()
def cached_elbo(directory: Path, model, items: np.ndarray, seed: int = 0, batch_size: int = DEFAULT_BATCH,
                progress: Callable[[int, int], None] | None = None) -> np.ndarray:
    """Every item's ELBO (nats, ``ELBO_SAMPLES`` draw of z from q(z | x) each, the draws seeded), stored
    beside the encodings in ``directory`` (array first, then ``elbo.json``: the commit point)."""
    n = len(items)
    kept = stored_elbo(directory, n)
    if kept is not None:
        return kept
    generator = torch.Generator(device=model.device).manual_seed(int(seed))
    values = np.empty(n, dtype=np.float32)
    for start, block in _blocks(items, batch_size):
        x = torch.from_numpy(block).reshape(len(block), -1).to(model.device)
        values[start: start + len(block)] = model.elbo(x, n_samples=ELBO_SAMPLES, generator=generator).elbo.float().cpu().numpy()
        if progress is not None:
            progress(min(start + batch_size, n), n)
    directory = Path(directory)
    tag = f".tmp-{os.getpid()}"
    staged, staged_meta = directory / f"elbo{tag}.npy", directory / f"elbo.json{tag}"
    try:
        np.save(staged, values)
        os.replace(staged, elbo_file(directory))
        staged_meta.write_text(json.dumps({"n": n, "seed": int(seed), "samples": ELBO_SAMPLES}))
        os.replace(staged_meta, directory / "elbo.json")
    finally:
        staged.unlink(missing_ok=True)
        staged_meta.unlink(missing_ok=True)
    return np.load(elbo_file(directory), mmap_mode="r")
