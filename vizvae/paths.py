"""Where vizvae keeps what it computes for a user (base layer: data, inference and the app all ask)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable


def user_cache_root() -> Path:
    """``$VIZVAE_CACHE_DIR``, else ``$XDG_CACHE_HOME/vizvae``, else ``~/.cache/vizvae``."""
    configured = os.environ.get("VIZVAE_CACHE_DIR")
    if configured:
        return Path(configured).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "vizvae"


def file_sha256(path: str | Path) -> str:
    """SHA-256 (hex) of a file's bytes, read in 4 MiB blocks: the one digest of a file vizvae takes
    (checkpoint weights, data files, imported programs and adapters)."""
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


DIGESTS = "digests"  # under the user cache: one small file per (file, version) already hashed


def remembered_digest(path: str | Path, what: str, compute: Callable[[], str]) -> str:
    """``compute()`` — a digest of the file at ``path`` (``what`` names which, e.g. "file" or an
    array's byte range) — once per version of the file, remembered on disk (``<user cache>/digests/``)
    under its resolved path, inode, size and modification time: a gigabyte data set is not read
    again by every new server process that opens it."""
    import hashlib
    import json

    resolved = Path(path).resolve()
    info = resolved.stat()
    version = f"{resolved}|{info.st_ino}|{info.st_size}|{info.st_mtime_ns}|{what}"
    memo = user_cache_root() / DIGESTS / f"{hashlib.sha256(version.encode()).hexdigest()}.json"
    try:
        kept = json.loads(memo.read_text())
        if kept.get("version") == version and len(str(kept.get("sha256", ""))) == 64:
            return str(kept["sha256"])
    except (OSError, ValueError, AttributeError):
        pass
    digest = compute()
    try:
        memo.parent.mkdir(parents=True, exist_ok=True)
        staged = memo.with_suffix(f".tmp-{os.getpid()}")
        staged.write_text(json.dumps({"version": version, "sha256": digest}))
        os.replace(staged, memo)
    except OSError:
        pass  # a read-only cache: computed again next time
    return digest
