"""The latent atlas' canvas: a Streamlit v2 component (``pages/_atlas_canvas.js``) drawing the
payload of ``vizvae.viz.atlas.canvas_payload`` on a 2-D canvas, with box, lasso, click, pan and
wheel zoom, and a thumbnail on hover. It loads no charting library, so the atlas is drawn as soon
as its data arrives.

It reports a selection (trigger ``select``, as ``sel`` text), the view (state ``view``) and the
row under the pointer (state ``hover``); see the JavaScript's header."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import streamlit as st

JS = (Path(__file__).with_name("_atlas_canvas.js")).read_text(encoding="utf-8")
HTML = """<div class="atlas">
  <div class="tools">
    <button data-mode="box" title="Drag a box to select">Box</button>
    <button data-mode="lasso" title="Draw around the points to select">Lasso</button>
    <button data-mode="pan" title="Drag to move; the wheel zooms anywhere">Pan</button>
    <button class="reset" title="The whole atlas (or double-click)">Whole atlas</button>
    <button class="png" title="Save the picture as a PNG">PNG</button>
  </div>
  <canvas></canvas>
  <div class="legend"></div>
  <div class="tip"></div>
</div>"""
CSS = """
.atlas { position: relative; font-family: var(--st-font, sans-serif); user-select: none; }
.atlas canvas { display: block; cursor: crosshair; }
.atlas .tools { display: flex; gap: 4px; margin-bottom: 4px; }
.atlas .tools button { font: inherit; font-size: 12px; padding: 2px 10px; border: 1px solid #c8ccd4; border-radius: 4px;
  background: transparent; color: inherit; cursor: pointer; }
.atlas .tools button.on { background: rgba(255, 75, 75, 0.12); border-color: rgb(255, 75, 75); }
.atlas .legend { position: absolute; top: 38px; right: 18px; font-size: 12px; background: rgba(255,255,255,0.85);
  padding: 4px 8px; border-radius: 4px; color: #333; }
.atlas .legend:empty { display: none; }
.atlas .legend-title { font-weight: 600; }
.atlas .swatch { display: inline-block; width: 10px; height: 10px; margin-right: 6px; border-radius: 2px; }
.atlas .tip { position: absolute; display: none; pointer-events: none; background: white; border: 1px solid #c8ccd4;
  border-radius: 4px; padding: 4px 6px; font-size: 12px; color: #333; box-shadow: 0 1px 4px rgba(0,0,0,0.15); }
.atlas .tip img { display: block; margin-top: 4px; image-rendering: pixelated; width: 136px; }
.atlas .tip .note { color: #777; font-size: 11px; }
"""
TOOLBAR_PX = 34

# styles not isolated: every rule is under .atlas, and tests and benchmarks read the canvas from the page
_component = st.components.v2.component("vizvae_atlas", html=HTML, css=CSS, js=JS, isolate_styles=False)


def atlas_canvas(key: str, payload: dict, on_select: Callable[[], None], on_view: Callable[[], None],
                 on_hover: Callable[[], None]) -> Any:
    """Mount the canvas with ``payload`` (``vizvae.viz.atlas.canvas_payload``, plus ``hover``)."""
    return _component(key=key, data=payload, on_select_change=on_select, on_view_change=on_view,
                      on_hover_change=on_hover, height=int(payload["height"]) + TOOLBAR_PX)


def component_value(key: str, name: str) -> Any:
    """The canvas' state or trigger ``name`` (None before it reported one)."""
    result = st.session_state.get(key)
    if result is None:
        return None
    try:
        return result[name] if isinstance(result, dict) else getattr(result, name, None)
    except (KeyError, AttributeError):
        return None
