"""Checkpoints: a folder with ``model.safetensors`` (weights only) and ``config.json``
(model class, constructor arguments, dataset and preprocessing, training history,
evaluation, versions, seed). SPEC §6.

Loading never unpickles anything. Every way a checkpoint can be wrong (missing file, pickle
posing as weights, truncated file, unknown model, mismatched shapes, a value of the wrong type,
a model or config over its size limit) raises one ``CheckpointError`` whose message names the
file and what is wrong. Nothing is allocated for a model before its checks pass: the network is
first built on the ``meta`` device (shapes, no memory) and compared with the safetensors header.
Both files are read once into memory (no memory map: a file rewritten under a reader cannot
crash it), through one open handle on the folder, so config and weights come from one version.

Saves are atomic: a checkpoint is written into a hidden sibling folder, synced, and renamed into
place, so a folder at the destination is always the old checkpoint whole or the new one whole.

Settings: ``$VIZVAE_MAX_MODEL_MB`` (default 512) caps the size of a model a checkpoint may
build; ``$VIZVAE_MAX_CONFIG_BYTES`` (default 4 MiB) caps a config.json.
"""

from __future__ import annotations

import json
import os
import pickle  # only for HIGHEST_PROTOCOL: vizvae never unpickles
import platform
import secrets
import shutil
import struct
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, NamedTuple

from vizvae.checkpoint_schema import (
    _positive_int_setting, check_checkpoint_config, check_header_entries, check_model_arguments, max_config_bytes,
    parse_json_bytes,
)
from vizvae.errors import CheckpointError, VizvaeError

if TYPE_CHECKING:  # torch is imported where weights are touched, so listing models stays light
    import torch

    from vizvae.models.base import LatentVariableModel

FORMAT = "vizvae.checkpoint"
FORMAT_VERSION = 1
WEIGHTS = "model.safetensors"
CONFIG = "config.json"
REPO_ROOT = Path(__file__).resolve().parent.parent
SHIPPED_DIR = REPO_ROOT / "assets" / "models"
MAX_MODEL_MB_ENV = "VIZVAE_MAX_MODEL_MB"
DEFAULT_MAX_MODEL_MB = 512  # shipped models are under 5 MB
MAX_HEADER_BYTES = 16 * 1024 * 1024  # a safetensors header: names, dtypes, shapes (kilobytes in practice)
STAGING = ".partial-"  # hidden sibling folders a save writes into: .<name>.partial-<pid>-<random>


def max_model_bytes(max_model_mb: int | None = None) -> int:
    """The largest model (parameters and buffers) a checkpoint may build: ``max_model_mb``, else
    ``$VIZVAE_MAX_MODEL_MB``, else 512 MiB."""
    mb = max_model_mb if max_model_mb is not None else _positive_int_setting(MAX_MODEL_MB_ENV, DEFAULT_MAX_MODEL_MB)
    if mb < 1:
        raise CheckpointError(f"a model size limit must be at least 1 MiB, got {mb}")
    return int(mb) * 1024 * 1024


@dataclass
class CheckpointInfo:
    """What a listing needs, read from config.json alone (cheap: no weights touched)."""

    name: str
    model: str
    dataset: str
    latent_dims: list[int]
    path: str
    size_bytes: int
    shipped: bool
    evaluation: dict[str, Any]
    data_kind: str = "image"  # "image" | "table": what the dataset's rows are

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class Checkpoint:
    model: LatentVariableModel  # in eval mode, its capabilities checked
    config: dict[str, Any]  # the whole config.json
    path: Path

    @property
    def name(self) -> str:
        return self.config.get("name", self.path.name)


def library_versions() -> dict[str, str]:
    import numpy
    import safetensors
    import torch

    from vizvae import __version__

    return {
        "vizvae": __version__, "torch": torch.__version__, "numpy": numpy.__version__,
        "safetensors": safetensors.__version__, "python": platform.python_version(),
    }


def save_checkpoint(model: LatentVariableModel, folder: str | Path, *, name: str, dataset: dict[str, Any],
                    training: dict[str, Any] | None = None, evaluation: dict[str, Any] | None = None,
                    extra: dict[str, Any] | None = None, overwrite: bool = True) -> Path:
    """Save atomically (``replacing_folder``): ``folder`` ends up holding the old checkpoint or this
    one, whole. ``overwrite`` False refuses a folder that holds anything already."""
    folder = Path(folder)
    with replacing_folder(folder, overwrite=overwrite) as staging:
        write_checkpoint(model, staging, name=name, dataset=dataset, training=training, evaluation=evaluation,
                         extra=extra)
    return folder


def write_checkpoint(model: LatentVariableModel, folder: str | Path, *, name: str, dataset: dict[str, Any],
                     training: dict[str, Any] | None = None, evaluation: dict[str, Any] | None = None,
                     extra: dict[str, Any] | None = None) -> Path:
    """Write config.json and the weights into ``folder`` (a ``replacing_folder`` staging folder),
    after refusing weights that hold NaN or infinite values: such a file could never be used."""
    folder = Path(folder)
    state = finite_state(model, folder)
    config = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "name": name,
        "model": model.model_key,
        "model_class": type(model).__name__,
        "latent_dims": model.latent_dims,
        "architecture": model.describe(),
        "config": model.config.to_json(),
        "dataset": dataset,
        "training": training or {},
        "evaluation": evaluation or {},
        "versions": library_versions(),
        **(extra or {}),
    }
    write_weights_and_config(folder, state, {"format": FORMAT, "model": model.model_key}, config)
    return folder


def finite_state(module: Any, folder: Path) -> dict[str, torch.Tensor]:
    """The module's tensors on the CPU, refused when one holds NaN or an infinity."""
    import torch

    state = {k: v.detach().to("cpu").contiguous() for k, v in module.state_dict().items()}
    for key, tensor in state.items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise CheckpointError(f"{destination_of(folder)}: not saved: tensor {key!r} holds NaN or infinite values (training "
                                  "diverged; lower the learning rate or check the data for inf)")
    return state


def write_weights_and_config(folder: Path, state: dict[str, Any], metadata: dict[str, str],
                             config: dict[str, Any]) -> None:
    from safetensors.torch import save_file

    save_file(state, str(folder / WEIGHTS), metadata=metadata)
    (folder / CONFIG).write_text(json.dumps(config, indent=1, default=_json_default))
    same_mode_as(folder / WEIGHTS, folder / CONFIG)


# -- atomic saves --------------------------------------------------------------------------------
def check_out_folder(out: str | Path, overwrite: bool = False) -> Path:
    """Refuse a destination that is a file, or (without ``overwrite``) a folder holding anything."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise CheckpointError(f"{out}: a file, not a folder; a checkpoint is a folder: choose another --out")
    if out.is_dir() and not overwrite and any(out.iterdir()):
        what = "already holds a checkpoint" if (out / CONFIG).exists() or (out / WEIGHTS).exists() else "is not empty"
        raise CheckpointError(f"{out}: {what}; pass --overwrite to replace it, or choose another --out")
    return out


@contextmanager
def replacing_folder(out: str | Path, overwrite: bool = False) -> Iterator[Path]:
    """A fresh hidden sibling of ``out`` to write a checkpoint into; when the block ends without an
    error, every file in it is synced to disk and the folder is renamed into place (swapped with an
    existing ``out`` in one step where the system can), so a kill at any moment leaves ``out``
    either as it was or whole and new. Files of an existing ``out`` that the block did not write (a
    model card, ``precomputed/``) are kept. Abandoned staging folders of killed saves are removed."""
    out = check_out_folder(out, overwrite)
    out.parent.mkdir(parents=True, exist_ok=True)
    remove_abandoned_staging(out)
    staging = out.parent / f".{out.name}{STAGING}{os.getpid()}-{secrets.token_hex(4)}"
    staging.mkdir()
    try:
        yield staging
        check_out_folder(out, overwrite)  # created meanwhile by someone else?
        fsync_tree(staging)
        if out.is_dir():
            if not exchange_folders(staging, out):  # no atomic swap here: the old folder steps aside first
                os.rename(out, staging.with_name(staging.name + "-old"))
                os.rename(staging, out)
                staging = staging.with_name(staging.name + "-old")
            for entry in staging.iterdir():  # now the old folder: what else it held moves to the new one
                if not (out / entry.name).exists() and entry.name not in (CONFIG, WEIGHTS):
                    os.rename(entry, out / entry.name)
            shutil.rmtree(staging, ignore_errors=True)
        else:
            os.rename(staging, out)
        fsync_directory(out.parent)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def destination_of(folder: str | Path) -> Path:
    """The folder a staging folder of ``replacing_folder`` will become (any other folder: itself)."""
    folder = Path(folder)
    if folder.name.startswith(".") and STAGING in folder.name:
        return folder.with_name(folder.name[1:].split(STAGING)[0])
    return folder


def exchange_folders(a: Path, b: Path) -> bool:
    """Swap two folders in one step (Linux ``renameat2(RENAME_EXCHANGE)``); False where the
    system has no such call. The one place vizvae reaches past Python's os module."""
    import ctypes
    import ctypes.util

    rename_exchange, at_fdcwd = 2, -100
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    errno = ctypes.get_errno()
    if errno in (22, 38, 95):  # EINVAL, ENOSYS, EOPNOTSUPP: the file system cannot swap
        return False
    raise OSError(errno, os.strerror(errno), str(b))


def remove_abandoned_staging(out: Path) -> None:
    """Staging folders of ``out`` left by saves whose process is gone (killed mid-save)."""
    for staged in out.parent.glob(f".{out.name}{STAGING}*"):
        pid = staged.name[len(f".{out.name}{STAGING}"):].split("-")[0]
        if pid.isdigit() and not _process_alive(int(pid)):
            shutil.rmtree(staged, ignore_errors=True)


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def fsync_tree(folder: Path) -> None:
    for root, _, files in os.walk(folder):
        for name in files:
            descriptor = os.open(os.path.join(root, name), os.O_RDONLY)
            try:
                os.fsync(descriptor)
            finally:
                os.close(descriptor)
        fsync_directory(Path(root))


def fsync_directory(folder: Path) -> None:
    descriptor = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(descriptor)
    except OSError:  # some file systems cannot sync a directory; the files themselves are synced
        pass
    finally:
        os.close(descriptor)


def same_mode_as(file: Path, reference: Path) -> None:
    """Give ``file`` the permission bits of ``reference``. safetensors writes its file through a
    private temporary file (mode 0600), while ``config.json`` and the cards get the umask's mode
    (0644 as a rule): a checkpoint copied or served from a shared folder must be readable as a whole."""
    os.chmod(file, reference.stat().st_mode & 0o777)


def _json_default(value: Any) -> Any:
    import numpy
    import torch  # a config holding a tensor was made with torch loaded: this import is free

    if isinstance(value, (numpy.ndarray, numpy.generic, torch.Tensor)):
        return value.tolist()
    raise TypeError(f"cannot store {type(value).__name__} in config.json")


def update_config(folder: str | Path, **sections: Any) -> None:
    """Merge sections (e.g. ``evaluation``) into an existing config.json, replacing the file in one
    step (a reader never sees half of it)."""
    path = Path(folder) / CONFIG
    config = parse_json_bytes(path.read_bytes(), path)
    for key, value in sections.items():
        if isinstance(value, dict) and isinstance(config.get(key), dict):
            config[key].update(value)
        else:
            config[key] = value
    text = json.dumps(config, indent=1, default=_json_default)
    staged = path.with_name(f".{CONFIG}{STAGING}{os.getpid()}-{secrets.token_hex(4)}")
    try:
        staged.write_text(text)
        os.chmod(staged, path.stat().st_mode & 0o777)
        os.replace(staged, path)
    finally:
        staged.unlink(missing_ok=True)


# -- validation -------------------------------------------------------------------------------
def _folder(path: str | Path) -> Path:
    path = Path(path)
    if path.is_file() and path.name in (WEIGHTS, CONFIG):
        path = path.parent
    if not path.exists():
        raise CheckpointError(f"{path}: no such checkpoint folder")
    if not path.is_dir():
        raise CheckpointError(f"{path}: expected a checkpoint folder holding {WEIGHTS} and {CONFIG}")
    return path


def read_json_config(file: Path, expected_format: str, what: str, missing_hint: str,
                     data: bytes | None = None) -> dict[str, Any]:
    """A config.json that must parse to an object with ``"format": expected_format`` (``data``: its
    bytes, when already read). Its size is checked before a byte is read."""
    if data is None:
        data = read_bounded(file, max_config_bytes(), missing_hint=missing_hint, setting="VIZVAE_MAX_CONFIG_BYTES")
    config = parse_json_bytes(data, file)
    if not isinstance(config, dict) or config.get("format") != expected_format:
        raise CheckpointError(f"{file}: not {what} (expected \"format\": \"{expected_format}\")")
    return config


def read_bounded(file: Path, limit: int, missing_hint: str, setting: str, dir_fd: int | None = None) -> bytes:
    """A file's bytes, read once into memory (no memory map, so a writer cannot crash the reader),
    refused before reading when it is over ``limit`` bytes (and if it grows past it while read)."""
    try:
        descriptor = os.open(file.name if dir_fd is not None else file, os.O_RDONLY, dir_fd=dir_fd)
    except FileNotFoundError:
        raise CheckpointError(f"{file}: missing; {missing_hint}") from None
    except OSError as err:
        raise CheckpointError(f"{file}: cannot be read ({err.strerror})") from None
    with os.fdopen(descriptor, "rb") as handle:
        size = os.fstat(handle.fileno()).st_size
        if size > limit:
            raise CheckpointError(f"{file}: {size:,} bytes, over the limit of {limit:,}; raise ${setting} if the "
                                  "file is genuine")
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise CheckpointError(f"{file}: grew past the limit of {limit:,} bytes while being read; raise ${setting} "
                              "if the file is genuine")
    return data


def read_config(path: str | Path, check_model: bool = True, data: bytes | None = None) -> dict[str, Any]:
    """config.json, checked for being a vizvae checkpoint (of a model this vizvae knows, unless
    ``check_model`` is False: listing models then needs no torch import) whose fields all hold
    values of their types (``vizvae.checkpoint_schema``)."""
    folder = _folder(path)
    file = folder / CONFIG
    config = read_json_config(file, FORMAT, "a vizvae checkpoint config",
                              missing_hint=f"a checkpoint folder needs {CONFIG} beside {WEIGHTS}", data=data)
    check_checkpoint_config(config, file)
    if config.get("format_version", 0) > FORMAT_VERSION:
        raise CheckpointError(
            f"{file}: format version {config['format_version']} is newer than this vizvae reads "
            f"({FORMAT_VERSION}); upgrade vizvae"
        )
    model = config.get("model")
    if check_model:
        from vizvae.models import MODEL_REGISTRY
    if check_model and model not in MODEL_REGISTRY and model not in (EXPORTED_KEY, ADAPTER_KEY):
        raise CheckpointError(
            f"{file}: unknown model class {model!r}; this vizvae knows {', '.join(sorted(MODEL_REGISTRY))}"
        )
    return config


def read_checkpoint_files(folder: Path, max_model_mb: int | None = None) -> tuple[bytes, bytes | None]:
    """(config.json, model.safetensors) bytes of one version of a checkpoint: both are read through
    one handle on the folder (a save that swaps the folder in cannot mix two versions) and read
    again when either file was replaced while being read. Weights None: the file is missing."""
    weights_limit = max_model_bytes(max_model_mb) + MAX_HEADER_BYTES
    for _ in range(3):
        directory = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        try:
            before = _versions(directory)
            try:
                config = read_bounded(folder / CONFIG, max_config_bytes(), dir_fd=directory,
                                      missing_hint=f"a checkpoint folder needs {CONFIG} beside {WEIGHTS}",
                                      setting="VIZVAE_MAX_CONFIG_BYTES")
                weights = None if before[1] is None else read_bounded(
                    folder / WEIGHTS, weights_limit, dir_fd=directory, setting=MAX_MODEL_MB_ENV,
                    missing_hint=f"a checkpoint folder needs {WEIGHTS} beside {CONFIG}")
            except CheckpointError:
                if _versions(directory) != before:  # replaced (or swapped out) while read: read the new one
                    continue
                raise
            if _versions(directory) == before:
                return config, weights
        finally:
            os.close(directory)
    raise CheckpointError(f"{folder}: rewritten while being read, three times over; load it again when the save is done")


def _versions(directory: int) -> tuple[tuple[int, int, int] | None, ...]:
    """(inode, size, mtime) of config.json and the weights in an open folder: equal means unchanged."""
    versions = []
    for name in (CONFIG, WEIGHTS):
        try:
            info = os.stat(name, dir_fd=directory)
            versions.append((info.st_ino, info.st_size, info.st_mtime_ns))
        except FileNotFoundError:
            versions.append(None)
    return tuple(versions)


class WeightsHeader(NamedTuple):
    """What a safetensors header says, read without loading a tensor."""

    tensors: dict[str, tuple[str, list[int]]]  # name -> (dtype such as "F32", shape)
    metadata: dict[str, str]  # the free-form "__metadata__" strings


def inspect_weights(file: Path) -> WeightsHeader:
    """Names, dtypes, shapes and metadata of a safetensors file, from its header alone."""
    if not file.is_file():
        raise CheckpointError(f"{file}: missing; a checkpoint folder needs {WEIGHTS} beside {CONFIG}")
    try:
        with open(file, "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            head = handle.read(8)
            length = struct.unpack("<Q", head)[0] if len(head) == 8 else 0
            head += handle.read(min(length, MAX_HEADER_BYTES))
    except OSError as err:
        raise CheckpointError(f"{file}: cannot be read ({err.strerror})") from None
    return parse_weights_header(head, size, file)


def parse_weights_header(data: bytes, size: int, file: Path) -> WeightsHeader:
    """The header of a safetensors file whose first bytes are ``data`` and whose size is ``size``.
    The format is an 8-byte little-endian length, then that many bytes of JSON (names, dtypes,
    shapes, ``data_offsets``); it is parsed here, and every field checked, because safetensors
    reads headers only through a memory map of the file."""
    if size < 8 or len(data) < 8:
        return _refuse_weights(file, data, size, "too small")
    (length,) = struct.unpack("<Q", data[:8])
    if length > size - 8 or length > MAX_HEADER_BYTES or len(data) < 8 + length:
        return _refuse_weights(file, data, size, "too large")
    try:
        header = parse_json_bytes(data[8:8 + length], file)
    except CheckpointError as err:
        return _refuse_weights(file, data, size, f"invalid JSON ({str(err).partition('(')[2].rstrip(')')})"
                               if "not valid JSON" in str(err) else str(err).removeprefix(f"{file}: "))
    try:
        tensors, metadata = check_header_entries(header, size - 8 - length)
    except ValueError as err:
        return _refuse_weights(file, data, size, str(err))
    return WeightsHeader({name: (t.dtype, list(t.shape)) for name, t in tensors.items()}, metadata)


def _refuse_weights(file: Path, head: bytes, size: int, reason: str) -> WeightsHeader:
    raise CheckpointError(_why_not_safetensors(file, head, size, reason))


def check_weights_belong(header: WeightsHeader, config: dict[str, Any], weights_file: Path) -> None:
    """The model key the weights were saved with (when they name one) is config.json's."""
    saved_by = header.metadata.get("model")
    if saved_by is not None and saved_by != config.get("model"):
        raise CheckpointError(f"{weights_file}: weights saved by a {saved_by!r} model, but {CONFIG} "
                              f"builds {config.get('model')!r}; the weights belong to a different model")


PROTOCOL_0_1_STARTS = (b"(d", b"(l", b"}q")  # a dict or list pickled by protocol 0 or 1
PROTO_OPCODE = 0x80  # protocols 2 and later open with PROTO and the protocol number
ZIP_START = b"PK\x03\x04"  # torch.save since torch 1.6


def _looks_pickled(head: bytes) -> bool:
    """Pickle magic bytes, unless the safetensors JSON header opens where it would (byte 8): a
    safetensors length prefix may itself start with 0x80 (any header of 128 mod 256 bytes)."""
    if head[8:9] == b"{":
        return False
    protocol_2_on = len(head) >= 2 and head[0] == PROTO_OPCODE and 2 <= head[1] <= pickle.HIGHEST_PROTOCOL
    return protocol_2_on or head.startswith(PROTOCOL_0_1_STARTS)


def _why_not_safetensors(file: Path, head: bytes, size: int, reason: str) -> str:
    """The one-line reason for a file whose header was refused. Magic bytes are sniffed only then,
    so a valid safetensors file is never mistaken for a pickle or a zip."""
    if head.startswith(ZIP_START):
        return (f"{file}: a zip archive (torch.save format), not safetensors; vizvae never unpickles. "
                "Convert it with safetensors.torch.save_file")
    if _looks_pickled(head):
        return (f"{file}: a Python pickle posing as weights; vizvae never unpickles (it can run code). "
                "Save the weights with safetensors instead")
    if reason == "too small":
        return f"{file}: truncated or empty ({size} bytes); not a safetensors file"
    if reason == "too large":
        return f"{file}: truncated or not a safetensors file (its header length does not fit in {size} bytes)"
    if reason == "not fully covered":
        return f"{file}: truncated (or padded): its header's tensors do not cover its {size} bytes exactly"
    if reason.startswith("invalid JSON"):
        return f"{file}: not a safetensors file (its header is not valid: {reason})"
    return f"{file}: not a safetensors file ({reason})"


def validate_checkpoint(path: str | Path) -> dict[str, Any]:
    """Everything short of building the model: config and weights headers agree. Returns config."""
    config = read_config(path)
    weights_file = _folder(path) / WEIGHTS
    check_weights_belong(inspect_weights(weights_file), config, weights_file)
    return config


def model_builder(config: dict[str, Any], source: str | Path = CONFIG) -> Callable[[], Any]:
    """A function that builds the network config.json describes (on the default device: call it
    under ``torch.device("meta")`` for the shapes alone). Its arguments are checked here, against
    the model's config dataclass, before anything is built."""
    from vizvae.models import MODEL_REGISTRY

    cls = MODEL_REGISTRY[config["model"]]
    arguments = check_model_arguments(cls.config_class, config["config"], source)
    dependency_key = getattr(cls, "dependency_key", "")  # a mixed-type model's dependency model
    if dependency_key and isinstance(arguments.get("dependency"), dict):
        check_model_arguments(MODEL_REGISTRY[dependency_key].config_class, arguments["dependency"], source,
                              "config.dependency")

    def build() -> Any:
        try:
            return cls(cls.config_class.from_json(config["config"]))
        except (TypeError, ValueError, KeyError) as err:
            raise CheckpointError(f"{source}: the model arguments under \"config\" do not build a {cls.__name__} "
                                  f"({err})") from None

    return build


def build_model(config: dict[str, Any], source: str | Path = CONFIG) -> Any:
    return model_builder(config, source)()


def safetensors_dtype(dtype: Any) -> str:
    """The safetensors name of a torch dtype: ``torch.float32`` -> ``"F32"``."""
    names = {"float32": "F32", "float16": "F16", "bfloat16": "BF16", "float64": "F64", "int64": "I64",
             "int32": "I32", "int16": "I16", "int8": "I8", "uint8": "U8", "bool": "BOOL"}
    name = str(dtype).removeprefix("torch.")
    return names.get(name, name)


def load_weights(build: Callable[[], Any], weights_file: Path, device: str | torch.device | None = None,
                 data: bytes | None = None, max_model_mb: int | None = None) -> Any:
    """The module ``build()`` makes, filled from a safetensors file (``data``: its bytes, when
    already read) after checking, on a ``meta``-device build that allocates nothing, every tensor's
    name, shape and dtype against the header and the model's size against ``max_model_bytes``;
    then eval mode, frozen, on ``device``. Never unpickles, never memory-maps."""
    import torch
    from safetensors import SafetensorError
    from safetensors.torch import load as load_safetensors

    from vizvae.device import resolve_device

    limit = max_model_bytes(max_model_mb)
    if data is None:
        data = read_bounded(weights_file, limit + MAX_HEADER_BYTES, setting=MAX_MODEL_MB_ENV,
                            missing_hint=f"a checkpoint folder needs {WEIGHTS} beside {CONFIG}")
    header = parse_weights_header(data, len(data), weights_file).tensors
    with torch.device("meta"):
        skeleton = build()
    expected = skeleton.state_dict()
    missing = sorted(set(expected) - set(header))
    unexpected = sorted(set(header) - set(expected))
    if missing or unexpected:
        detail = f"missing {missing[:3]}" if missing else f"unexpected {unexpected[:3]}"
        raise CheckpointError(f"{weights_file}: does not match {CONFIG} ({detail} tensors); "
                              "the weights belong to a different model")
    for name, tensor in expected.items():
        if list(tensor.shape) != header[name][1]:
            raise CheckpointError(
                f"{weights_file}: tensor {name!r} has shape {header[name][1]} but {CONFIG} builds "
                f"{list(tensor.shape)}; the weights belong to a different configuration"
            )
        stored = header[name][0]
        if stored != safetensors_dtype(tensor.dtype):
            raise CheckpointError(
                f"{weights_file}: tensor {name!r} is stored as {stored} but the model holds "
                f"{safetensors_dtype(tensor.dtype)}; save the weights in that dtype"
            )
    size = sum(t.numel() * t.element_size() for t in [*skeleton.parameters(), *skeleton.buffers()])
    if size > limit:
        raise CheckpointError(f"{weights_file.parent / CONFIG}: builds a model of {size / 2**20:,.0f} MiB, over the "
                              f"limit of {limit // 2**20:,} MiB; raise ${MAX_MODEL_MB_ENV} (or --max-model-mb) if "
                              "the model is genuine")
    del skeleton
    try:
        state = load_safetensors(bytes(data))
    except (SafetensorError, OSError, ValueError) as err:
        raise CheckpointError(f"{weights_file}: unreadable safetensors file ({err})") from None
    for name, tensor in state.items():
        if tensor.is_floating_point() and not torch.isfinite(tensor).all():
            raise CheckpointError(f"{weights_file}: tensor {name!r} holds NaN or infinite values")
    module = build()
    module.load_state_dict(state)
    module.to(resolve_device(device)).eval()
    for parameter in module.parameters():
        parameter.requires_grad_(False)
    return module


def load_checkpoint(path: str | Path, device: str | torch.device | None = None,
                    max_model_mb: int | None = None, trust_code: bool = False) -> Checkpoint:
    """Load a checkpoint folder safely; raises ``CheckpointError`` with a one-line reason. The
    model's declared capabilities are checked here, once, so callers may ask for them by type.
    ``max_model_mb``: the size limit (default ``$VIZVAE_MAX_MODEL_MB``, else 512). ``trust_code``:
    the operator (the command line) allows an imported adapter's Python to run; the app leaves it
    False, and then only folders in ``VIZVAE_TRUSTED_ADAPTERS`` may (``models.adapter``)."""
    import torch

    from vizvae.models.capabilities import check_capabilities

    folder = _folder(path)
    config_bytes, weights_bytes = read_checkpoint_files(folder, max_model_mb)
    config = read_config(folder, data=config_bytes)
    weights_file = folder / WEIGHTS
    if weights_bytes is None:
        raise CheckpointError(f"{weights_file}: missing; a checkpoint folder needs {WEIGHTS} beside {CONFIG}")
    check_weights_belong(parse_weights_header(weights_bytes, len(weights_bytes), weights_file), config, weights_file)
    if config["model"] == EXPORTED_KEY:
        return load_exported_checkpoint(folder, config, weights_bytes, device)
    if config["model"] == ADAPTER_KEY:
        return load_adapter_checkpoint(folder, config, weights_bytes, device, trust_code)
    build = model_builder(config, folder / CONFIG)
    with torch.device("meta"):
        skeleton = build()
    try:
        check_capabilities(skeleton)
    except CheckpointError as err:
        raise CheckpointError(f"{folder / CONFIG}: {err}") from None
    model = load_weights(build, weights_file, device, data=weights_bytes, max_model_mb=max_model_mb)
    return Checkpoint(model=model, config=config, path=folder)


EXPORTED_KEY = "exported"  # a VAE imported as two torch.export programs (models.exported)
ADAPTER_KEY = "adapter"  # a VAE imported with its own Python adapter (models.adapter): trusted code only


def load_adapter_checkpoint(folder: Path, config: dict[str, Any], weights_bytes: bytes,
                            device: str | torch.device | None = None, trust_code: bool = False) -> Checkpoint:
    """An imported adapter VAE: its adapter.py runs only if trusted and unchanged since import."""
    from safetensors.torch import load as load_tensors

    from vizvae.models.adapter import ADAPTER_FILE, TRUSTED_ENV, AdapterConfig, AdapterVAE, is_trusted, run_adapter
    from vizvae.models.capabilities import check_capabilities
    from vizvae.paths import file_sha256

    check_model_arguments(AdapterConfig, config["config"], folder / CONFIG)
    settings = AdapterConfig.from_json(config["config"])
    file = folder / ADAPTER_FILE
    if not file.is_file():
        raise CheckpointError(f"{file}: missing; this checkpoint runs its own Python adapter, which must sit beside "
                              f"{CONFIG}")
    if not (trust_code or is_trusted(folder)):
        raise CheckpointError(f"{folder}: this checkpoint runs its own Python ({ADAPTER_FILE}); vizvae runs it from "
                              f"the command line, or in the app for folders the operator lists in {TRUSTED_ENV}")
    if file_sha256(file) != settings.adapter_sha256:
        raise CheckpointError(f"{file}: changed since the checkpoint was imported (its SHA-256 differs); refused — "
                              "import it again if the change is yours")
    try:
        model = AdapterVAE(settings, run_adapter(file, settings.entry))
        model.load_state_dict(load_tensors(weights_bytes))
    except (VizvaeError, RuntimeError) as err:
        raise CheckpointError(f"{folder}: the adapter does not fit its weights ({str(err)[:200]})") from None
    model = model.to(device or "cpu").eval()
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    check_capabilities(model)
    return Checkpoint(model=model, config=config, path=folder)


def load_exported_checkpoint(folder: Path, config: dict[str, Any], weights_bytes: bytes,
                             device: str | torch.device | None = None) -> Checkpoint:
    """An imported exported-program VAE: its ``model.safetensors`` holds the SHA-256 of the two
    programs it was imported with (so the cache keys change with them), checked against the files
    before they are audited and loaded (``models.exported.load_program``: no code from them runs)."""
    from safetensors.torch import load as load_tensors

    from vizvae.models.capabilities import check_capabilities
    from vizvae.models.exported import PROGRAM_FILES, ExportedConfig, ExportedVAE, load_program
    from vizvae.paths import file_sha256

    stored = load_tensors(weights_bytes).get("program_sha256")
    for index, name in enumerate(PROGRAM_FILES):
        file = folder / name
        if not file.is_file():
            raise CheckpointError(f"{file}: missing; an imported exported-program model needs {' and '.join(PROGRAM_FILES)}")
        if stored is None or stored.shape != (len(PROGRAM_FILES), 32) or bytes(stored[index].tolist()).hex() != \
                file_sha256(file):
            raise CheckpointError(f"{file}: not the program this checkpoint was imported with (its SHA-256 differs); "
                                  "import it again")
    check_model_arguments(ExportedConfig, config["config"], folder / CONFIG)
    programs = [load_program(folder / name) for name in PROGRAM_FILES]
    model = ExportedVAE(ExportedConfig.from_json(config["config"]), *programs).to(device or "cpu").eval()
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    check_capabilities(model)
    return Checkpoint(model=model, config=config, path=folder)


# -- listing ------------------------------------------------------------------------------------
def checkpoint_info(path: str | Path, shipped: bool = False) -> CheckpointInfo:
    folder = _folder(path)
    config = read_config(folder, check_model=False)
    size = sum(f.stat().st_size for f in folder.iterdir() if f.is_file())
    return CheckpointInfo(
        name=config.get("name", folder.name),
        model=config["model"],
        dataset=(config.get("dataset") or {}).get("name", "?"),
        latent_dims=[int(d) for d in config.get("latent_dims", [])],
        path=str(folder),
        size_bytes=int(size),
        shipped=shipped,
        evaluation=config.get("evaluation", {}),
        data_kind=str((config.get("dataset") or {}).get("kind", "image")),
    )


def shipped_checkpoints(root: Path = SHIPPED_DIR) -> list[CheckpointInfo]:
    """The registry of shipped models: every valid folder under ``assets/models/``."""
    if not root.is_dir():
        return []
    infos = []
    for folder in sorted(p for p in root.iterdir() if not p.name.startswith(".") and (p / CONFIG).is_file()):
        try:
            infos.append(checkpoint_info(folder, shipped=True))
        except CheckpointError:
            continue
    return infos


def resolve_checkpoint(name_or_path: str | Path) -> Path:
    """A shipped model's name, or a path to a checkpoint folder."""
    candidate = SHIPPED_DIR / str(name_or_path)
    if (candidate / CONFIG).is_file():
        return candidate
    path = Path(name_or_path)
    if path.exists():
        return _folder(path)
    names = ", ".join(info.name for info in shipped_checkpoints()) or "none"
    raise CheckpointError(f"{name_or_path}: neither a checkpoint folder nor a shipped model (shipped: {names})")


def checkpoint_dataset(config: dict[str, Any]):
    """The dataset a checkpoint was trained on, rebuilt from config.json's ``dataset`` section
    with the same preprocessing (binarisation, image size) and the same seeded split."""
    from vizvae.data import DATASET_NAMES, load_dataset
    from vizvae.errors import DataError

    described = config.get("dataset") or {}
    name = described.get("name")
    preprocessing = described.get("preprocessing") or {}
    options: dict[str, Any] = {}
    if described.get("kind") == "image" or described.get("image_shape"):
        options["binarize"] = bool(preprocessing.get("binarize", False))
    if name == "digits" and "image_size" in preprocessing:
        options["image_size"] = int(preprocessing["image_size"])
    if name in DATASET_NAMES:
        return load_dataset(name, **options)
    source = preprocessing.get("source")
    if not isinstance(source, str) or not source:
        raise DataError(f"the dataset {name!r} this checkpoint was trained on is not available here (its config "
                        "does not record where the data was)")
    return user_dataset(source, preprocessing.get("sha256"), described, options)


def user_dataset(source: str, sha256: Any, described: dict[str, Any], options: dict[str, Any]):
    """A user's dataset a checkpoint was trained on, from the path and SHA-256 its config records:
    loaded again with the same target, column types and split, or a ``DataError`` that says the
    data has moved or changed since (a changed file would give other rows than those trained on)."""
    from vizvae.data import load_dataset
    from vizvae.data.user import data_digest
    from vizvae.errors import DataError

    path = Path(source)
    if not path.exists():
        raise DataError(f"this checkpoint was trained on {path.name!r}, which was at {source} and is not there any "
                        "more; put it back (or retrain on its new place)")
    if isinstance(sha256, str) and sha256:
        found = data_digest(path)
        if found != sha256:
            raise DataError(f"{path.name!r} has changed since this checkpoint was trained on it (SHA-256 "
                            f"{found[:12]}…, not {sha256[:12]}…); restore that version, or retrain")
    if described.get("kind") == "table" and path.suffix == ".csv":
        kinds = {column.get("name"): column.get("kind") for column in described.get("schema") or []
                 if isinstance(column, dict)}
        target = described.get("target_name")
        target_kind = (described.get("target") or {}).get("kind") if isinstance(described.get("target"), dict) else None
        columns = {name: kind for name, kind in kinds.items() if isinstance(name, str) and isinstance(kind, str)}
        if isinstance(target, str) and isinstance(target_kind, str):
            columns[target] = target_kind
        options = {"schema": {"columns": columns}, "target": target if isinstance(target, str) else None}
        test_size = (described.get("preprocessing") or {}).get("test_size")
        if isinstance(test_size, float) and 0 < test_size < 1:
            options["test_size"] = test_size
    return load_dataset(str(path), **options)
