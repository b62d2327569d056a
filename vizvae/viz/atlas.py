"""The latent atlas' figure: every point as a density with contour lines, a sample of them as
WebGL markers (``inference.atlas`` says which and why), and the nearest neighbours of a query
ringed. Arrays in, ``go.Figure`` out; no Streamlit."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import plotly.graph_objects as go

from vizvae.inference.atlas import View
from vizvae.viz.figures import CLASS_COLOURS, apply_layout

CONTOUR_LEVELS = 6


@dataclass
class Colouring:
    """How the drawn points are coloured: by category codes (with names) or by a number."""

    name: str
    values: np.ndarray  # (drawn,) codes (int) or numbers (float)
    categories: Sequence[str] | None = None


def smoothed(counts: np.ndarray, passes: int = 2) -> np.ndarray:
    """The counts blurred by a [1, 2, 1]/4 kernel along each axis, ``passes`` times (for contours)."""
    out = counts.astype(np.float64)
    for _ in range(passes):
        for axis in (0, 1):
            padded = np.pad(out, [(1, 1) if a == axis else (0, 0) for a in (0, 1)], mode="edge")
            low = np.take(padded, range(0, out.shape[axis]), axis=axis)
            mid = np.take(padded, range(1, out.shape[axis] + 1), axis=axis)
            high = np.take(padded, range(2, out.shape[axis] + 2), axis=axis)
            out = 0.25 * low + 0.5 * mid + 0.25 * high
    return out


def density_png(counts: np.ndarray, upscale: int = 2) -> bytes:
    """The density as one RGBA PNG (top row = largest y): grey by log(1 + count), empty cells
    transparent, and ``CONTOUR_LEVELS`` contour lines of the smoothed log density drawn as the
    edges between its level bands. One image is what the browser draws fastest: a heatmap and a
    contour trace cost plotly.js ~0.3–0.5 s each to lay out on a 2-core machine."""
    from vizvae.viz.images import png_bytes

    counts = np.asarray(counts)
    shade = np.log1p(counts.astype(np.float64))
    top = max(float(shade.max()), 1e-12)
    rgba = np.zeros((*counts.shape, 4), dtype=np.uint8)
    grey = (235 - 185 * shade / top).astype(np.uint8)
    rgba[..., 0] = rgba[..., 1] = rgba[..., 2] = grey
    rgba[..., 3] = np.where(counts > 0, 255, 0)
    rgba = rgba.repeat(upscale, 0).repeat(upscale, 1)
    level = np.log1p(smoothed(counts))
    steps = np.floor(level / max(float(level.max()), 1e-12) * (CONTOUR_LEVELS + 1)).clip(0, CONTOUR_LEVELS)
    steps = steps.repeat(upscale, 0).repeat(upscale, 1)
    edge = np.zeros(steps.shape, dtype=bool)
    edge[:, 1:] |= steps[:, 1:] != steps[:, :-1]
    edge[1:, :] |= steps[1:, :] != steps[:-1, :]
    rgba[edge] = (70, 70, 70, 255)
    return png_bytes(rgba[::-1])


def point_traces(xy: np.ndarray, rows: np.ndarray, colouring: Colouring | None,
                 selected: Sequence[int] = ()) -> list[go.Scattergl]:
    """The drawn points: one trace per category (a legend that names them), or one coloured by a
    number. ``customdata`` is the row, what a click or a selection reports."""
    selected_set = set(int(r) for r in selected)
    style = dict(selected=dict(marker=dict(size=10, opacity=1.0)), unselected=dict(marker=dict(opacity=0.35)))

    def trace(mask: np.ndarray, name: str, marker: dict, hover: str) -> go.Scattergl:
        picked = [i for i, r in enumerate(rows[mask]) if int(r) in selected_set]
        return go.Scattergl(x=xy[mask, 0], y=xy[mask, 1], mode="markers", name=name, marker=marker,
                            customdata=rows[mask], hovertemplate=hover, selectedpoints=picked or None, **style)

    base = dict(size=4, opacity=0.75)
    everything = np.ones(len(rows), dtype=bool)
    if colouring is None:
        return [trace(everything, "items", dict(base, color=CLASS_COLOURS[0]), "item %{customdata}<extra></extra>")]
    if colouring.categories is not None:
        codes = np.asarray(colouring.values).astype(np.int64)
        return [trace(codes == k, str(name), dict(base, color=CLASS_COLOURS[k % len(CLASS_COLOURS)]),
                      f"item %{{customdata}}<br>{colouring.name} {name}<extra></extra>")
                for k, name in enumerate(colouring.categories) if np.any(codes == k)]
    values = np.asarray(colouring.values, dtype=np.float32)
    marker = dict(base, color=values, colorscale="Viridis", colorbar=dict(title=colouring.name, len=0.8))
    return [trace(everything, "items", marker, f"item %{{customdata}}<br>{colouring.name} %{{marker.color:.4g}}"
                                               "<extra></extra>")]


def atlas_figure(counts: np.ndarray, view: View, xy: np.ndarray, rows: np.ndarray, colouring: Colouring | None,
                 selected: Sequence[int] = (), box: View | None = None, rings: np.ndarray | None = None,
                 axis_titles: tuple[str, str] = ("1", "2"), height: int = 620) -> go.Figure:
    """The atlas: the density with its contours as a background image (``density_png``), the drawn
    points, ``rings`` (m, 2) around the query's nearest neighbours, and a selection box drawn as
    plotly's own selection (so it reads as one)."""
    traces: list = point_traces(xy, rows, colouring, selected)
    if rings is not None and len(rings):
        traces.append(go.Scattergl(x=rings[:, 0], y=rings[:, 1], mode="markers", name="nearest", hoverinfo="skip",
                                   marker=dict(size=13, color="rgba(0,0,0,0)", line=dict(color="#d62728", width=2))))
    fig = go.Figure(traces)
    fig.update_xaxes(title_text=axis_titles[0], range=[view.x0, view.x1])
    fig.update_yaxes(title_text=axis_titles[1], range=[view.y0, view.y1])
    source = "data:image/png;base64," + base64.b64encode(density_png(counts)).decode()
    layout: dict = dict(dragmode="select", legend=dict(itemsizing="constant", title_text=colouring.name if
                                                       colouring and colouring.categories is not None else None),
                        images=[dict(source=source, xref="x", yref="y", x=view.x0, y=view.y1, sizex=view.x1 - view.x0,
                                     sizey=view.y1 - view.y0, sizing="stretch", layer="below")])
    if box is not None:
        layout["selections"] = [dict(type="rect", x0=box.x0, x1=box.x1, y0=box.y0, y1=box.y1, xref="x", yref="y")]
    fig.update_layout(**layout)
    return apply_layout(fig, None, height)
