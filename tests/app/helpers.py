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


def latent_page(**query_params: str) -> AppTest:
    """The latent-space page, after a first run on the default page (AppTest needs one run to
    learn the pages that st.navigation registers)."""
    at = app(**query_params).run()
    return at.switch_page("pages/latent_space.py").run()


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
