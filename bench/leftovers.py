"""Leave ``assets/`` as the benchmark found it.

The pages write caches next to the shipped checkpoints (``assets/models/<name>/cache``): a page
benchmark must meet the shipped caches as a new user does, and must not leave its own behind.
Other processes may write to ``assets/`` at the same time, so a before/after listing cannot say
which new file is the benchmark's. An audit hook can: ``WriteRecorder`` sees every ``open`` for
writing, ``os.rename``/``os.replace`` and ``os.mkdir`` under a folder made by this process (and,
through ``bootstrap_code``, by a ``streamlit run`` it starts), keeps a copy of each file before its
first overwrite, and ``undo`` deletes what was created and puts the overwritten files back.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
_RECORDERS: list["WriteRecorder"] = []  # audit hooks cannot be removed: one hook serves them all
_IN_HOOK = [False]
_HOOK_INSTALLED = [False]


def _is_write(args: tuple) -> bool:
    mode, flags = (args[1], args[2]) if len(args) >= 3 else (None, 0)
    if isinstance(mode, str):
        return any(c in mode for c in "wax+")
    return isinstance(flags, int) and bool(flags & _WRITE_FLAGS)


def _audit(event: str, args: tuple) -> None:
    if _IN_HOOK[0] or not _RECORDERS or event not in ("open", "os.rename", "os.mkdir"):
        return
    if event == "open" and not _is_write(args):
        return
    target = args[1] if event == "os.rename" else args[0]
    if not isinstance(target, (str, bytes, os.PathLike)):
        return  # a file descriptor: its path was recorded when it was opened
    _IN_HOOK[0] = True
    try:
        for recorder in _RECORDERS:
            recorder.before_write(Path(os.fsdecode(target)), is_dir=event == "os.mkdir")
    finally:
        _IN_HOOK[0] = False


class WriteRecorder:
    """Records the writes this process makes under ``root`` (a context manager), then undoes them."""

    def __init__(self, root: str | Path, log: str | Path | None = None):
        self.root = Path(root).resolve()
        self.log = Path(log) if log else None
        self.backups: Path | None = None  # a temp folder, made at the first overwrite
        self.created: list[Path] = []
        self.overwritten: dict[Path, Path] = {}  # original -> its copy taken before the first write

    def before_write(self, path: Path, is_dir: bool = False) -> None:
        path = Path(os.path.abspath(path))
        if path != self.root and self.root not in path.parents:
            return
        if path in self.overwritten or path in self.created:
            return
        if not path.exists():
            self.created.append(path)
        elif path.is_file() and not is_dir:
            self.backups = self.backups or Path(tempfile.mkdtemp(prefix="vizvae-bench-backup-"))
            copy = self.backups / str(len(self.overwritten))
            shutil.copy2(path, copy)
            self.overwritten[path] = copy
        if self.log is not None:
            self._append_log()

    def _append_log(self) -> None:
        record = {"created": [str(p) for p in self.created],
                  "overwritten": {str(k): str(v) for k, v in self.overwritten.items()}}
        self.log.write_text(json.dumps(record))

    def __enter__(self) -> "WriteRecorder":
        if not _HOOK_INSTALLED[0]:
            sys.addaudithook(_audit)
            _HOOK_INSTALLED[0] = True
        _RECORDERS.append(self)
        return self

    def __exit__(self, *exc) -> None:
        _RECORDERS.remove(self)

    def undo(self) -> list[str]:
        """Delete the files and folders this recorder saw created, restore the overwritten ones
        (bytes and times); returns what it changed, relative to ``root``."""
        return undo_writes(self.root, self.created, self.overwritten)


def undo_writes(root: Path, created: list[Path], overwritten: dict[Path, Path]) -> list[str]:
    changed = []
    for path in sorted(created, key=lambda p: len(p.parts), reverse=True):  # files before their folders
        try:
            if path.is_dir():
                path.rmdir()  # only if empty: a folder someone else filled meanwhile stays
            elif path.exists():
                path.unlink()
            else:
                continue
            changed.append(f"removed {path.relative_to(root)}")
        except OSError:
            continue
    for original, copy in overwritten.items():
        if copy.exists():
            shutil.copy2(copy, original)
            changed.append(f"restored {original.relative_to(root)}")
    for folder in {copy.parent for copy in overwritten.values()}:
        shutil.rmtree(folder, ignore_errors=True)  # the copies' temp folder
    return changed


def undo_logged(root: str | Path, log: str | Path) -> list[str]:
    """Undo the writes a child process recorded in ``log`` (see ``bootstrap_code``)."""
    log = Path(log)
    if not log.is_file():
        return []
    record = json.loads(log.read_text())
    return undo_writes(Path(root).resolve(), [Path(p) for p in record["created"]],
                       {Path(k): Path(v) for k, v in record["overwritten"].items()})


def bootstrap_code(root: str | Path, log: str | Path, argv: list[str]) -> str:
    """``python -c`` code that records writes under ``root`` into ``log``, then runs the module
    command ``argv`` (e.g. ``["streamlit", "run", "app.py", ...]``) in the same process."""
    return (
        "import runpy, sys\n"
        "from bench.leftovers import WriteRecorder\n"
        f"WriteRecorder({str(root)!r}, log={str(log)!r}).__enter__()\n"
        f"sys.argv = {argv!r}\n"
        f"runpy.run_module({argv[0]!r}, run_name='__main__', alter_sys=True)\n"
    )
