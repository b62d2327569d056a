"""A dependency-free progress bar for the CLI: step, loss, ELBO, rate and ETA on one line."""

from __future__ import annotations

import sys
import time
from typing import TextIO


def format_seconds(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    minutes, seconds = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes}:{seconds:02d}"


class ProgressBar:
    """Redraws in place on a terminal; on a pipe or log file prints about ``lines`` lines."""

    def __init__(self, total: int, label: str = "train", stream: TextIO | None = None,
                 width: int = 24, lines: int = 10, enabled: bool = True):
        self.total = max(1, total)
        self.label = label
        self.stream = stream or sys.stderr
        self.width = width
        self.enabled = enabled
        self.interactive = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.every = max(1, self.total // max(1, lines))
        self.start = time.perf_counter()
        self.last_draw = 0.0

    def update(self, step: int, **values: float) -> None:
        if not self.enabled:
            return
        now = time.perf_counter()
        done = step >= self.total
        if self.interactive:
            if not done and now - self.last_draw < 0.1:
                return
        elif not done and step % self.every:
            return
        self.last_draw = now
        elapsed = now - self.start
        rate = step / elapsed if elapsed > 0 else 0.0
        eta = (self.total - step) / rate if rate > 0 else 0.0
        filled = int(self.width * step / self.total)
        bar = "#" * filled + "." * (self.width - filled)
        shown = " ".join(f"{k} {v:.2f}" for k, v in values.items())
        line = (f"{self.label} [{bar}] step {step}/{self.total} {shown} "
                f"{rate:.0f} it/s ETA {format_seconds(eta)}")
        if self.interactive:
            self.stream.write("\r" + line + ("\n" if done else ""))
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def message(self, text: str) -> None:
        if self.enabled:
            self.stream.write(text + "\n")
            self.stream.flush()
