"""The load benchmark, small: two concurrent sessions for 40 s against a real ``streamlit run`` in
Chromium. It prints the promised JSON, the server stays up, a light page still paints, no session
sees another's row, and assets/ is left as it was found."""

from __future__ import annotations

import io
import json
import math
from contextlib import redirect_stdout
from pathlib import Path

import pytest

from bench.load import percentile, session_steps
from tests.e2e.conftest import require_chromium
from vizvae.__main__ import main
from vizvae.checkpoint import REPO_ROOT

KEYS = {"load_sessions", "load_sessions_done", "load_sessions_isolated", "load_health_p50_ms", "load_health_p95_ms",
        "load_first_paint_p50_ms", "load_first_paint_p95_ms", "load_first_paint_count", "load_peak_rss_mb",
        "load_server_up", "load_errors"}


def assets_listing(root: Path = REPO_ROOT / "assets") -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*")}


def positive(value) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value) and value > 0


@pytest.mark.e2e
def test_two_sessions_under_load_keep_the_server_up_and_apart():
    require_chromium()
    before = assets_listing()
    out = io.StringIO()
    with redirect_stdout(out):
        code = main(["bench", "--only", "load", "--json", "-o", "sessions=2", "-o", "timeout=40"])
    assert code == 0
    result = json.loads(out.getvalue())
    assert set(result) >= KEYS
    assert result["load_sessions"] == 2
    assert result["load_server_up"] is True
    assert positive(result["load_health_p50_ms"]) and positive(result["load_health_p95_ms"])
    assert result["load_first_paint_count"] >= 1 and positive(result["load_first_paint_p50_ms"])
    assert result["load_sessions_isolated"] is True, result.get("load_isolation_leaks")
    assert positive(result["load_peak_rss_mb"])
    assert assets_listing() == before


def test_percentiles_interpolate_and_say_none_for_nothing():
    assert percentile([], 50) is None
    assert percentile([10.0], 95) == 10.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.5
    assert percentile(list(range(101)), 95) == 95.0


def test_each_session_deep_links_its_own_row_on_the_three_heavy_pages():
    steps = session_steps(107, "mnist-hhvae", "mnist-betavae-16d-b4")
    assert [name for name, _, _ in steps] == ["posterior", "inpainting", "latent_space"]
    assert all("107" in path for _, path, _ in steps)
    assert [press for _, _, press in steps] == [False, True, False]
    assert "method=umap" in steps[2][1]


class _Shown:
    """A page stand-in whose widget and URL show ``value``."""

    def __init__(self, value: str):
        self.value, self.first = value, self

    def locator(self, selector):
        return self

    async def wait_for(self, **kwargs):
        return None

    async def input_value(self):
        return self.value

    async def evaluate(self, script, arg):
        return self.value


@pytest.mark.parametrize("shown, leaks", [("101", 0), ("102", 1)])
def test_a_row_that_is_not_the_sessions_own_is_a_leak(shown, leaks):
    import asyncio
    import time

    from bench.load import Record, read_back

    record = Record()
    asyncio.run(read_back(_Shown(shown), "posterior", 101, "session 0 posterior", time.monotonic() + 5, record))
    assert record.checks == 1 and len(record.leaks) == leaks
