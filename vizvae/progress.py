"""The bookkeeping every vizvae training loop shares: smoothed scalars, a thinned history, a bar.

A loop owns its optimiser and its losses; ``TrainingLog`` owns what is printed and saved:

* ``smooth(loss=..., elbo=...)`` — exponential moving averages (weight 0.05 on the newest
  value; the first value starts the average), because single mini-batch losses are too noisy
  to read or to plot;
* ``due(step)`` / ``record(...)`` — a history thinned to every ``every``-th step (and always the
  last), the lists saved in a checkpoint's ``config.json`` or drawn by the app;
* ``advance(...)`` — one step of a ``tqdm`` bar (step, the shown scalars, rate and ETA) on stderr.

Base layer: it imports no other vizvae module, so data, inference and train can all use it.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any, Sequence, TextIO

from tqdm import tqdm

SMOOTHING = 0.05  # weight of the newest value in each moving average
BAR_FORMAT = "{desc} [{bar:24}] step {n_fmt}/{total_fmt}{postfix} {rate_fmt} ETA {remaining}"
LOGGED_LINES = 10  # progress lines written to a pipe or log file over a whole run


def moving_average(previous: float | None, value: float, weight: float = SMOOTHING) -> float:
    """``(1 - weight)·previous + weight·value``; ``value`` itself when there is no previous one."""
    return value if previous is None else (1.0 - weight) * previous + weight * value


class TrainingLog:
    """Smoothed scalars, history and progress bar of one training run of ``total`` steps.

    ``history_keys`` fixes the history's keys (and their order) up front, so that a run of zero
    steps still saves empty lists. With ``enabled=False`` nothing is printed.
    """

    def __init__(self, total: int, label: str = "train", *, every: int = 1, history_keys: Sequence[str] = (),
                 enabled: bool = True, stream: TextIO | None = None, smoothing: float = SMOOTHING):
        self.total = max(0, int(total))
        self.every = max(1, int(every))
        self.smoothing = smoothing
        self.smoothed: dict[str, float] = {}
        self.history: dict[str, list[Any]] = {key: [] for key in history_keys}
        self.bar = _bar(self.total, label, stream or sys.stderr, enabled)

    def smooth(self, **values: float | None) -> dict[str, float]:
        """Move each named average towards its new value (``None`` leaves it as it is)."""
        for name, value in values.items():
            if value is not None:
                self.smoothed[name] = moving_average(self.smoothed.get(name), float(value), self.smoothing)
        return dict(self.smoothed)

    def due(self, step: int) -> bool:
        """Whether ``step`` (counted from 1) goes into the thinned history."""
        return step % self.every == 0 or step == self.total

    def record(self, **entries: Any) -> None:
        """Append one value to each named history list."""
        for name, value in entries.items():
            self.history.setdefault(name, []).append(value)

    def advance(self, **shown: float | None) -> None:
        """One step of the bar, showing the given scalars (e.g. the smoothed loss)."""
        text = " ".join(f"{name} {value:.2f}" for name, value in shown.items() if value is not None)
        self.bar.set_postfix_str(text, refresh=False)
        self.bar.update(1)

    def message(self, text: str) -> None:
        """A line of its own, printed above the bar (nothing when the log is disabled)."""
        if not self.bar.disable:
            self.bar.write(text, file=self.bar.fp)

    def state(self) -> dict[str, Any]:
        """The smoothed scalars and the history so far (JSON), for a resumable run."""
        return {"smoothed": dict(self.smoothed), "history": {k: list(v) for k, v in self.history.items()}}

    def restore(self, state: dict[str, Any], step: int) -> None:
        """Continue from ``state()`` saved after ``step`` steps."""
        self.smoothed = {str(k): float(v) for k, v in state["smoothed"].items()}
        self.history = {str(k): list(v) for k, v in state["history"].items()}
        self.bar.update(step)

    def close(self) -> None:
        self.bar.close()

    def __enter__(self) -> TrainingLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass(frozen=True)
class Progress:
    """Whether and under what label a training command reports (``--quiet`` turns it off)."""

    label: str = "train"
    enabled: bool = True

    def log(self, total: int, *, every: int = 1, history_keys: Sequence[str] = (), stage: str = "") -> TrainingLog:
        """A ``TrainingLog`` for one loop (``stage`` is added to the bar's label)."""
        label = f"{self.label} {stage}" if stage else self.label
        return TrainingLog(total, label, every=every, history_keys=history_keys, enabled=self.enabled)

    def message(self, text: str) -> None:
        """A line on stderr, between bars."""
        if self.enabled:
            tqdm.write(text, file=sys.stderr)


def _bar(total: int, label: str, stream: TextIO, enabled: bool) -> tqdm:
    """Redrawn in place on a terminal; on a pipe or log file about ``LOGGED_LINES`` updates."""
    interactive = stream.isatty()
    pacing = {} if interactive else {"mininterval": 0.0, "miniters": max(1, total // LOGGED_LINES), "ascii": True}
    return tqdm(total=total, desc=label, file=stream, disable=not enabled, bar_format=BAR_FORMAT,
                dynamic_ncols=interactive, leave=True, **pacing)
