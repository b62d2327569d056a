"""vizvae benchmarks: ``python -m vizvae bench [--only NAME ...] [--json]``.

Each benchmark module has ``run(options) -> dict`` returning figures measured side by side in one
run (ratios, medians of interleaved repetitions, never single timings); the CLI merges their dicts.
The library's own (``hmc``, ``acquisition``) live here and run from an installed vizvae. Those that
drive the app (``app``, ``pages``, ``load``: Streamlit, AppTest, Chromium) live in the repository's
top-level ``bench/``, so that the library never imports Streamlit; they run from the repository root.
"""

from __future__ import annotations

import importlib
from typing import Any, Callable

# benchmark name -> module (imported only when run: each pulls in torch and a shipped model)
BENCHMARKS: dict[str, str] = {
    "acquisition": "vizvae.bench.acquisition",  # SAIA on one table row, HMC vs encoder model
    "app": "bench.app",
    "atlas": "bench.atlas",  # 10^5-10^6 generated shapes: encoding, nearest neighbours, the atlas page in Chromium
    "load": "bench.load",  # 8 concurrent heavy sessions: health and first-paint latency, peak RSS, isolation
    "pages": "bench.pages",  # every page: first render and first interaction, AppTest and Chromium
    "hmc": "vizvae.bench.hmc",  # HMC cost model and speed on the shipped HH-VAE (and on CUDA with --device cuda)
    "train": "vizvae.bench.train",  # data-parallel training: 2 gloo processes against 1
}


def benchmark(name: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """The ``run`` function of benchmark ``name`` (one of ``BENCHMARKS``)."""
    module = BENCHMARKS[name]
    try:
        return importlib.import_module(module).run
    except ModuleNotFoundError as err:
        if module.startswith("bench.") and err.name in ("bench", module):
            from vizvae.errors import VizvaeError

            raise VizvaeError(f"the {name!r} benchmark drives the app and lives in the repository's bench/ "
                              "folder: run `python -m vizvae bench` from the repository root") from None
        raise
