"""AppTest helpers: the app's entry point, the shipped models, and a plotly selection injector.

AppTests share one process, so ``st.cache_resource`` (loaded models) and ``st.cache_data``
persist between tests: only the first test pays for loading a model and encoding the test set.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from vizvae.checkpoint import SHIPPED_DIR
from vizvae.train.recipes import SHIPPED_RECIPES

ROOT = Path(__file__).resolve().parents[2]
APP = ROOT / "app.py"
TIMEOUT = 60
SHIPPED = list(SHIPPED_RECIPES)


def app(**query_params: str) -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    at.query_params.update(query_params)
    return at


def open_page(name: str, **query_params: str) -> AppTest:
    """A new session whose first request is /<name>?<query>, run once: as a shared link opens
    the page. (app.py registers pages as functions, so AppTest can switch to one by its file
    only before the first run, when it hashes the file's name like ``st.Page`` hashes url_path.)"""
    at = app(**query_params)
    return at.switch_page(f"pages/{name}.py").run()


def switch_to(at: AppTest, name: str) -> AppTest:
    """Open page ``name`` in the middle of a session, as a click in the sidebar does, and run.

    Public ``AppTest.switch_page`` refuses pages registered as functions once the app has run,
    so this sets the page hash it would set (``AppTest._page_hash``, the pinned streamlit 1.67)
    and then checks that the run really drew that page."""
    from streamlit.util import calc_hash

    assert "_page_hash" in vars(at), "AppTest no longer keeps the requested page in _page_hash"
    at._page_hash = calc_hash(name)
    at.run()
    assert at._finished_page_script_hash == calc_hash(name), f"AppTest did not open page {name}"
    return at


def finish_jobs(at: AppTest, timeout: float = TIMEOUT) -> AppTest:
    """Wait until the session's background jobs (``vizvae.jobs``, drawn by ``background_task``) have
    ended, then run again: the page as it is once its work is done (a job that a run starts is
    waited for too)."""
    for _ in range(10):
        runner = at.session_state["_vizvae_jobs"] if "_vizvae_jobs" in at.session_state else None
        running = [job for job in (runner.jobs() if runner else []) if job.state == "running"]
        bars = {f"{job.name}_progress" for job in (runner.jobs() if runner else [])}
        drawn = [c for c in at.get("flex_container") if c.key in bars]
        if not running and not drawn:
            return at  # (a job that ended after the run drew its bar still needs the run below)
        for job in running:
            assert job.wait(timeout), f"background job {job.name} still running after {timeout} s"
        at = at.run()
    raise AssertionError("background jobs kept starting")


def latent_page(**query_params: str) -> AppTest:
    return open_page("latent_space", **query_params)


def shipped(name: str) -> str:
    if not (SHIPPED_DIR / name / "model.safetensors").is_file():
        pytest.fail(f"shipped checkpoint {name} is missing; build it with `python -m vizvae rebuild`")
    return name


def elements(at: AppTest, kind: str, key: str | None = None) -> list:
    found = list(at.get(kind))
    return [e for e in found if key is None or getattr(e, "key", None) == key]


def errors(at: AppTest) -> list[str]:
    return [e.value for e in at.error] + [str(e.value) for e in at.exception]


def select_in_chart(at: AppTest, key: str, indices: list[int]) -> AppTest:
    """Send the selection event a browser sends when points of a plotly chart are clicked.

    ``st.plotly_chart`` selections cannot be written through ``session_state`` (Streamlit
    refuses: they are read-only widget values), and AppTest has no plotly widget; so this
    rebuilds the widget state the frontend would send — the JSON
    ``{"selection": {"points": [...], "point_indices": [...], "box": [], "lasso": []}}`` under
    the chart's element id — and reruns with it. Uses AppTest internals (``_tree``, ``_run``)
    of the pinned streamlit 1.67.
    """
    from streamlit.proto.WidgetStates_pb2 import WidgetState

    (chart,) = elements(at, "plotly_chart", key)
    points = [{"curve_number": 0, "point_number": i, "point_index": i, "customdata": [i, "?"]} for i in indices]
    selection = {"selection": {"points": points, "point_indices": list(indices), "box": [], "lasso": []}}
    states = at._tree.get_widget_states()
    states.widgets.append(WidgetState(id=chart.proto.id, string_value=json.dumps(selection)))
    return at._run(states)
