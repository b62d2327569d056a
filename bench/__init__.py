"""vizvae benchmarks. Each ``bench/bench_*.py`` module has ``run(options) -> dict`` returning
figures measured side by side in one run (ratios, medians of interleaved repetitions).
``python -m vizvae bench [--only NAME ...] [--json]`` runs them and merges their dicts."""
