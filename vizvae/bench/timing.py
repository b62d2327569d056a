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


def paired_ratio(a: Callable[[], object], b: Callable[[], object], repeats: int = 25,
                 clock: Callable[[], float] = time.perf_counter) -> tuple[float, float, float]:
    """(median a, median b, median of the pairwise ratios a/b) over ``repeats`` pairs run in ABBA
    order — alternating which goes first cancels warm-cache and allocator order effects that a
    fixed A-B order leaves in. ``clock=time.process_time`` counts CPU time only, which keeps a
    ratio meaningful on a machine shared with other jobs."""
    a(), b()
    ratios, ta, tb = [], [], []
    for i in range(repeats):
        first, second = (a, b) if i % 2 == 0 else (b, a)
        start = clock(); first(); mid = clock(); second(); end = clock()
        t_first, t_second = mid - start, end - mid
        t_a, t_b = (t_first, t_second) if first is a else (t_second, t_first)
        ta.append(t_a); tb.append(t_b); ratios.append(t_a / t_b)
    return statistics.median(ta), statistics.median(tb), statistics.median(ratios)
