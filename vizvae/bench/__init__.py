"""vizvae benchmarks: ``python -m vizvae bench [--only NAME ...] [--json]``.

Each module here has ``run(options) -> dict`` returning figures measured side by side in one run
(ratios, medians of interleaved repetitions, never single timings); the CLI merges their dicts.
They run from an installed vizvae; ``app``'s browser cold start also needs the repository's
browser-test harness (``tests/e2e``) and reports ``None`` without it.
"""

from __future__ import annotations

import importlib
from typing import Any, Callable

# benchmark name -> module (imported only when run: each pulls in torch and a shipped model)
BENCHMARKS: dict[str, str] = {
    "acquisition": "vizvae.bench.acquisition",  # SAIA on one table row, HMC vs encoder model
    "app": "vizvae.bench.app",  # cold start, traversal grid, cached projection
    "pages": "vizvae.bench.pages",  # every page: first render and first interaction, AppTest and Chromium
    "hmc": "vizvae.bench.hmc",  # HMC cost model and speed on the shipped HH-VAE
}


def benchmark(name: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """The ``run`` function of benchmark ``name`` (one of ``BENCHMARKS``)."""
    return importlib.import_module(BENCHMARKS[name]).run
