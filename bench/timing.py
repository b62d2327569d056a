"""Timing helpers for benchmarks: interleaved repetitions and medians, never single runs."""

from __future__ import annotations

import statistics
import time
from typing import Callable


def interleaved_medians(functions: dict[str, Callable[[], object]], repeats: int = 7, warmup: int = 1) -> dict[str, float]:
    """Run each function in turn (A B C A B C ...) ``repeats`` times after ``warmup`` rounds and
    return each one's median wall time in seconds. Interleaving keeps a comparison fair when
    the machine's speed drifts."""
    for _ in range(warmup):
        for function in functions.values():
            function()
    times: dict[str, list[float]] = {name: [] for name in functions}
    for _ in range(repeats):
        for name, function in functions.items():
            start = time.perf_counter()
            function()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def interleaved_ratio(a: Callable[[], object], b: Callable[[], object], repeats: int = 7) -> tuple[float, float, float]:
    """(median a, median b, median of the pairwise ratios a/b), in seconds."""
    a(), b()
    ratios, ta, tb = [], [], []
    for _ in range(repeats):
        start = time.perf_counter(); a(); mid = time.perf_counter(); b(); end = time.perf_counter()
        ta.append(mid - start); tb.append(end - mid); ratios.append((mid - start) / (end - mid))
    return statistics.median(ta), statistics.median(tb), statistics.median(ratios)
