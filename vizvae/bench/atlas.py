"""The latent atlas at scale, library side: ``python -m vizvae bench --only atlas --json
[-o sizes=100000,1000000] [-o model=shapes-betavae-b4] [-o batch=4096] [-o queries=50]``.

On generated ``shapes`` (``data.shapes_scale``, rendered once into the user cache) and a shipped
shapes β-VAE, for each size n:

* ``encode_items_per_s_<n>`` — ``inference.encodings.cached_encodings`` from scratch: items read
  from the memory map, encoded batch by batch, written to float32 memory maps (mean of two runs);
* ``encode_forward_ratio_<n>`` — that throughput ÷ the model's bare batched ``encode`` on all n
  items, in batches already in memory as tensors (timed in the same run): 1 would mean reading
  and writing the memory maps cost nothing, and over 1 that reading the next batch in a second
  thread (``encodings._blocks``) hides it. Timed A B B A (forward, encoding, encoding, forward) so
  that the load's drift over the minutes at 10⁶ weighs on both sides alike;
* ``nn_query_ms_<n>`` — median time of an exact k = 20 nearest-neighbour query
  (``inference.neighbours``) from a random item's mean.

The page-side figures of the atlas (first paint, selection round trip, server RSS) come with the
atlas page.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vizvae.checkpoint import load_checkpoint, resolve_checkpoint
from vizvae.data.shapes_scale import large_shapes
from vizvae.inference.cache import user_cache_root
from vizvae.inference.encodings import cached_encodings
from vizvae.inference.neighbours import LatentNeighbours


def bare_forward_s(model, items: np.ndarray, batch: int, chunk: int = 100_000) -> float:
    """Seconds of ``model.encode`` over every batch of ``items``, the batches already float32 tensors
    in memory: they are prepared ``chunk`` items at a time, outside the clock, so that 10⁶ items
    need not all be in memory at once."""
    total = 0.0
    for begin in range(0, len(items), chunk):
        part = items[begin: begin + chunk]
        tensors = [torch.from_numpy(np.array(part[s: s + batch], dtype=np.float32)) for s in range(0, len(part), batch)]
        started = time.perf_counter()
        with torch.inference_mode():
            for tensor in tensors:
                model.encode(tensor.to(model.device))
        total += time.perf_counter() - started
    return total


def encode_cold(folder, model, items: np.ndarray, batch: int) -> tuple[float, np.ndarray]:
    """(seconds, the means) of ``cached_encodings`` into an empty scratch cache: really computed."""
    with tempfile.TemporaryDirectory() as scratch:
        started = time.perf_counter()
        means, _, _ = cached_encodings(folder, model, items, batch_size=batch, root=scratch)
        seconds = time.perf_counter() - started
        return seconds, np.array(means)  # read into memory before the scratch folder goes


def run(options: dict[str, Any]) -> dict[str, Any]:
    sizes = [int(s) for s in str(options.get("sizes", "100000,1000000")).split(",")]
    name, batch = str(options.get("model", "shapes-betavae-b4")), int(options.get("batch", 4096))
    folder = resolve_checkpoint(name)
    model = load_checkpoint(folder, device="cpu").model
    results: dict[str, Any] = {"atlas_model": name, "atlas_threads": torch.get_num_threads()}
    for n in sizes:
        items, _ = large_shapes(n, seed=0, folder=user_cache_root() / "generated")
        # A B B A: the bare forward, the encoding twice, the bare forward again, so that a drift of the
        # machine's load over these minutes weighs on both sides alike
        forward_s = bare_forward_s(model, items, batch)
        encode_s, means = encode_cold(folder, model, items, batch)
        again_s, _ = encode_cold(folder, model, items, batch)
        forward_s, encode_s = forward_s + bare_forward_s(model, items, batch), encode_s + again_s
        index = LatentNeighbours(means)
        rng = np.random.default_rng(0)
        times = []
        for row in rng.integers(0, n, size=int(options.get("queries", 50))):
            started = time.perf_counter()
            index.query(means[row], k=20, exclude=int(row))
            times.append(time.perf_counter() - started)
        results.update({f"encode_items_per_s_{n}": round(2 * n / encode_s, 1),
                        f"encode_forward_ratio_{n}": round(forward_s / encode_s, 3),  # both are sums of two
                        f"nn_query_ms_{n}": round(1000 * statistics.median(times), 2)})
    results["atlas_generated_in"] = str(Path(user_cache_root()) / "generated")
    return results
