"""Where vizvae keeps what it computes for a user (base layer: data, inference and the app all ask)."""

from __future__ import annotations

import os
from pathlib import Path


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
