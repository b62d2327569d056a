"""What a shared server lets a visitor reach and start: open paths, model folders, uploads, caps.

vizvae runs on laptops and on shared lab servers. On a laptop the person at the browser owns the
filesystem; on a server the visitor does not. Every setting is an environment variable, read at the
moment it is needed (so a test or an administrator changes it without a restart of the library):

* ``VIZVAE_OPEN_PATHS`` (``1``/``on`` or ``0``/``off``): may a visitor open any folder of the
  server by typing its path or naming it in ``?model=``? Unset, it is **on** when the server listens
  on loopback only (``server.address`` 127.0.0.1, localhost or ::1) and **off** otherwise, Streamlit's
  own default of every interface included. Off, a visitor picks only shipped models, models under
  ``VIZVAE_MODEL_DIRS`` and their own uploads; any other path gets ``CLOSED_PATH_MESSAGE``, the same
  text whether the path exists, is missing or holds valid JSON.
* ``VIZVAE_MODEL_DIRS``: folders (``os.pathsep``-separated) whose checkpoints visitors may open.
* uploads: one private folder per session (``UPLOAD_PREFIX`` + random, mode 0700, under
  ``VIZVAE_UPLOAD_DIR`` or the system's temporary folder), holding at most
  ``VIZVAE_MAX_UPLOAD_MB`` per session; folders older than ``VIZVAE_UPLOAD_MAX_AGE_HOURS`` are swept
  at server start.
* compute caps (``CAPS``): the largest value of each expensive knob one session may start, each
  raised or lowered by its environment variable. A value over its cap is refused by
  ``check_caps`` with a message naming the cap and the variable, never silently clipped.
  The time cap of one job is ``vizvae.jobs.max_job_seconds``.

Nothing here imports Streamlit: the pages pass in the address the server listens on.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping

from vizvae.errors import VizvaeError

OPEN_PATHS_ENV = "VIZVAE_OPEN_PATHS"
MODEL_DIRS_ENV = "VIZVAE_MODEL_DIRS"
DATA_DIRS_ENV = "VIZVAE_DATA_DIRS"
UPLOAD_DIR_ENV = "VIZVAE_UPLOAD_DIR"
MAX_UPLOAD_MB_ENV = "VIZVAE_MAX_UPLOAD_MB"
UPLOAD_MAX_AGE_ENV = "VIZVAE_UPLOAD_MAX_AGE_HOURS"
LOOPBACK_ADDRESSES = ("127.0.0.1", "localhost", "::1")
UPLOAD_PREFIX = "vizvae-upload-"
DEFAULT_MAX_UPLOAD_MB = 200.0  # a session's uploads together; the shipped checkpoints are under 20 MB
DEFAULT_UPLOAD_MAX_AGE_HOURS = 24.0  # a session folder older than this is a leftover of a killed server
CLOSED_PATH_MESSAGE = ("This server opens only its shipped models, the models in its configured model folders "
                       "and your own uploads. Pick one of those, or upload model.safetensors and config.json.")
CLOSED_DATA_MESSAGE = ("This checkpoint was trained on a dataset of its own, named by a path outside this server's "
                       "data folders (VIZVAE_DATA_DIRS), so this server does not open it. Ask the server's operator "
                       "to add the data, or use a model trained on a built-in dataset.")
_ON, _OFF = ("1", "true", "on", "yes"), ("0", "false", "off", "no")


# -- open paths ---------------------------------------------------------------------------------------------------
def is_loopback(address: str | None) -> bool:
    """Does a server bound to ``address`` listen on this machine only? Unset or empty means every
    interface (Streamlit's default), so not loopback."""
    address = (address or "").strip().strip("[]").lower()
    return address in LOOPBACK_ADDRESSES or address.startswith("127.")


def open_paths(address: str | None) -> bool:
    """May visitors open any path of the server? ``VIZVAE_OPEN_PATHS`` when set to on or off, else
    on exactly when the server listens on loopback only."""
    raw = os.environ.get(OPEN_PATHS_ENV, "").strip().lower()
    if raw in _ON:
        return True
    if raw in _OFF:
        return False
    return is_loopback(address)


def configured_folders(env: str) -> list[Path]:
    """The folders an ``os.pathsep``-separated setting names, resolved, existing ones only."""
    folders = []
    for part in os.environ.get(env, "").split(os.pathsep):
        if part.strip():
            folder = Path(part.strip()).expanduser().resolve()
            if folder.is_dir():
                folders.append(folder)
    return folders


def model_dirs() -> list[Path]:
    """The configured model folders (``VIZVAE_MODEL_DIRS``)."""
    return configured_folders(MODEL_DIRS_ENV)


def data_dirs() -> list[Path]:
    """The configured data folders (``VIZVAE_DATA_DIRS``): on a closed server, a checkpoint trained
    on a user's dataset opens only if that data lies inside one."""
    return configured_folders(DATA_DIRS_ENV)


def data_source_allowed(config: Mapping, roots: Iterable[Path]) -> bool:
    """May a closed server follow the path a checkpoint's config records for its training data? Yes
    for the built-in datasets (no path) and for a path inside ``roots``; whether it exists is not
    looked at before that, so the answer says nothing about the server's files."""
    dataset = config.get("dataset") if isinstance(config, Mapping) else None
    preprocessing = dataset.get("preprocessing") if isinstance(dataset, Mapping) else None
    source = preprocessing.get("source") if isinstance(preprocessing, Mapping) else None
    if source is None:
        return True
    return isinstance(source, str) and Path(source).is_absolute() and any(is_within(Path(source), root)
                                                                         for root in roots)


def is_within(path: Path, root: Path) -> bool:
    """Is ``path`` inside ``root`` once symlinks and ``..`` are resolved on both?"""
    path, root = Path(os.path.realpath(path)), Path(os.path.realpath(root))
    return path == root or root in path.parents


def allowed_folder(wanted: str, roots: Iterable[Path]) -> Path | None:
    """The folder ``wanted`` names inside one of ``roots`` (an absolute path, or one relative to a
    root), resolved; None when it is inside none of them (it may exist or not: the caller must not say)."""
    for root in roots:
        candidate = Path(os.path.realpath(Path(root) / wanted))  # an absolute ``wanted`` replaces the root
        if is_within(candidate, root) and candidate.exists():
            return candidate
    return None


def public_name(path: Path, roots: Iterable[Path]) -> str | None:
    """``path`` as a visitor may see it: relative to the root that holds it (None when none does)."""
    for root in roots:
        if is_within(path, root):
            relative = Path(os.path.realpath(path)).relative_to(Path(os.path.realpath(root)))
            return relative.as_posix() or "."
    return None


# -- uploads ------------------------------------------------------------------------------------------------------
def _positive(env: str, default: float) -> float:
    try:
        value = float(os.environ.get(env, ""))
    except ValueError:
        return default
    return value if 0 < value < float("inf") else default


def upload_base() -> Path:
    """Where the session folders are made: ``VIZVAE_UPLOAD_DIR`` or the system's temporary folder."""
    return Path(os.environ.get(UPLOAD_DIR_ENV) or tempfile.gettempdir())


def max_upload_bytes() -> int:
    return int(_positive(MAX_UPLOAD_MB_ENV, DEFAULT_MAX_UPLOAD_MB) * 2**20)


class UploadRefused(VizvaeError):
    """An upload over the session's size cap."""


class SessionUploads:
    """One session's private upload folder: made with ``mkdtemp`` (mode 0700, a fresh random name),
    files created with ``O_CREAT | O_EXCL | O_NOFOLLOW`` (mode 0600) so nothing is written through a
    planted link, at most ``max_bytes`` in all, and the folder removed by ``close`` (the app calls it
    when the session ends; a finalizer calls it when the object is collected)."""

    def __init__(self, base: Path | None = None, max_bytes: int | None = None):
        base = Path(base) if base is not None else upload_base()
        base.mkdir(parents=True, exist_ok=True)
        self.folder = Path(tempfile.mkdtemp(prefix=UPLOAD_PREFIX, dir=base))
        self.max_bytes = max_upload_bytes() if max_bytes is None else max_bytes
        self.used = 0
        self._count = 0
        self._remove = weakref.finalize(self, shutil.rmtree, str(self.folder), True)  # also if never closed

    def save(self, files: Mapping[str, bytes]) -> Path:
        """Write ``files`` (name -> bytes) into a new subfolder and return it."""
        size = sum(len(data) for data in files.values())
        if self.used + size > self.max_bytes:
            raise UploadRefused(f"uploads of one session are capped at {self.max_bytes / 2**20:.0f} MB on this "
                                f"server ({MAX_UPLOAD_MB_ENV}); this one would bring the session to "
                                f"{(self.used + size) / 2**20:.1f} MB")
        self._count += 1
        folder = self.folder / f"{self._count:04d}"
        os.mkdir(folder, 0o700)  # fresh: fails if anything is already there
        for name, data in files.items():
            if Path(name).name != name:
                raise UploadRefused("an uploaded file's name must not hold a folder")
            fd = os.open(folder / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
            with os.fdopen(fd, "wb") as out:
                out.write(data)
        self.used += size
        return folder

    def close(self) -> None:
        self._remove()

    @property
    def closed(self) -> bool:
        return not self._remove.alive


def sweep_stale_uploads(base: Path | None = None, max_age_hours: float | None = None,
                        now: float | None = None) -> list[Path]:
    """Remove session upload folders older than ``max_age_hours`` (default
    ``VIZVAE_UPLOAD_MAX_AGE_HOURS``): those a killed server left. Only our own folders (the prefix,
    a real directory, owned by this user) are touched. Returns the removed folders."""
    base = Path(base) if base is not None else upload_base()
    max_age = (max_age_hours if max_age_hours is not None
               else _positive(UPLOAD_MAX_AGE_ENV, DEFAULT_UPLOAD_MAX_AGE_HOURS)) * 3600
    now = time.time() if now is None else now
    removed = []
    try:
        entries = list(os.scandir(base))
    except OSError:
        return removed
    for entry in entries:
        try:
            if not entry.name.startswith(UPLOAD_PREFIX) or not entry.is_dir(follow_symlinks=False):
                continue
            info = entry.stat(follow_symlinks=False)
            if info.st_uid != os.getuid() or now - info.st_mtime < max_age:
                continue
        except OSError:
            continue
        shutil.rmtree(entry.path, ignore_errors=True)
        removed.append(Path(entry.path))
    return removed


# -- compute caps -------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Cap:
    label: str  # what the knob is called on the pages
    env: str  # the environment variable that sets the cap
    default: int  # fits every option the pages offer: a laptop is never refused


CAPS: dict[str, Cap] = {
    "chain_transitions": Cap("HMC chains × transitions", "VIZVAE_MAX_CHAIN_TRANSITIONS", 100_000),
    "iwae_k": Cap("IWAE K (importance samples)", "VIZVAE_MAX_IWAE_K", 5_000),
    "samples": Cap("Samples", "VIZVAE_MAX_SAMPLES", 128),
    "proposals": Cap("SIR proposals", "VIZVAE_MAX_PROPOSALS", 10_000),
    "umap_points": Cap("UMAP points", "VIZVAE_MAX_UMAP_POINTS", 10_000),
}


class CapExceeded(VizvaeError):
    """A knob over this server's cap (the message names the cap and the variable that raises it)."""


def cap(name: str) -> int:
    """The cap on knob ``name``: its environment variable when a positive number, else the default."""
    spec = CAPS[name]
    return int(_positive(spec.env, spec.default))


def check_caps(**values: float) -> None:
    """Refuse, before anything starts, any knob over its cap: ``check_caps(samples=64, proposals=500)``."""
    for name, value in values.items():
        limit = cap(name)
        if value > limit:
            spec = CAPS[name]
            raise CapExceeded(f"{spec.label} = {value:,.0f} is over this server's cap of {limit:,} "
                              f"(set {spec.env} to raise it)")
