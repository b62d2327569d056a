"""The latent atlas' picture: every point as a density image with contour lines, a sample of them
as markers (``inference.atlas`` says which and why), and the nearest neighbours of a query ringed,
as the payload the page's canvas (``pages/_atlas_canvas.js``) draws. No Streamlit, no plotly.js:
plotly's chart costs a 2-core browser ~1 s to load and evaluate before it draws anything, a 2-D
canvas nothing (``python -m vizvae bench --only atlas`` measures both)."""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from plotly.colors import sample_colorscale

from vizvae.inference.atlas import View, parse_selection
from vizvae.viz.figures import CLASS_COLOURS

CONTOUR_LEVELS = 6
CONTOUR_SMOOTHING = 6  # passes of the [1, 2, 1]/4 blur under the contour lines (2 left them ragged at 10⁵ points)
NUMBER_SHADES = 32
GREY_LIGHT, GREY_RANGE = 235, 150  # the density's grey: from 235 (one point) down to 85 (the densest cell)
# Viridis at 32 steps (matplotlib's, as plotly carries it), for colouring by a number
VIRIDIS = tuple(sample_colorscale("Viridis", [i / (NUMBER_SHADES - 1) for i in range(NUMBER_SHADES)]))


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


def density_png(counts: np.ndarray, upscale: int | None = None) -> bytes:
    """The density as one RGBA PNG (top row = largest y): grey by log(1 + count) from ``GREY_LIGHT``
    down by ``GREY_RANGE`` (light enough for the points drawn over it), empty cells transparent, and
    ``CONTOUR_LEVELS`` contour lines of the smoothed log density drawn as the edges between its level
    bands, one pixel wide. ``upscale`` (pixels a cell; default: about 480 pixels across) keeps the
    lines thin on a coarse grid. One image is what the browser draws fastest: a heatmap and a
    contour trace cost plotly.js ~0.3–0.5 s each to lay out on a 2-core machine."""
    from vizvae.viz.images import png_bytes

    counts = np.asarray(counts)
    upscale = max(1, int(np.ceil(480 / max(counts.shape)))) if upscale is None else int(upscale)
    shade = np.log1p(counts.astype(np.float64))
    top = max(float(shade.max()), 1e-12)
    rgba = np.zeros((*counts.shape, 4), dtype=np.uint8)
    grey = (GREY_LIGHT - GREY_RANGE * shade / top).astype(np.uint8)
    rgba[..., 0] = rgba[..., 1] = rgba[..., 2] = grey
    rgba[..., 3] = np.where(counts > 0, 255, 0)
    rgba = rgba.repeat(upscale, 0).repeat(upscale, 1)
    level = np.log1p(smoothed(counts, CONTOUR_SMOOTHING))
    steps = np.floor(level / max(float(level.max()), 1e-12) * (CONTOUR_LEVELS + 1)).clip(0, CONTOUR_LEVELS)
    steps = steps.repeat(upscale, 0).repeat(upscale, 1)
    edge = np.zeros(steps.shape, dtype=bool)
    edge[:, 1:] |= steps[:, 1:] != steps[:, :-1]
    edge[1:, :] |= steps[1:, :] != steps[:-1, :]
    rgba[edge] = (70, 70, 70, 255)
    return png_bytes(rgba[::-1])


def _b64(array: np.ndarray, dtype) -> str:
    return base64.b64encode(np.ascontiguousarray(array, dtype=dtype).tobytes()).decode()


def colour_codes(colouring: Colouring | None, n: int) -> tuple[np.ndarray, list[str], dict | None, list[str] | None]:
    """(per-point colour codes (n,) uint8, the colours they index, the legend, category names or None)."""
    if colouring is None:
        return np.zeros(n, dtype=np.uint8), [CLASS_COLOURS[0]], None, None
    if colouring.categories is not None:
        names = [str(name) for name in colouring.categories][:256]
        colours = [CLASS_COLOURS[k % len(CLASS_COLOURS)] for k in range(len(names))]
        codes = np.asarray(colouring.values).astype(np.int64).clip(0, len(names) - 1).astype(np.uint8)
        present = sorted(set(codes.tolist()))
        return codes, colours, {"title": colouring.name, "entries": [[names[k], colours[k]] for k in present]}, names
    values = np.asarray(colouring.values, dtype=np.float64)
    finite = values[np.isfinite(values)]
    low, high = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    span = high - low if high > low else 1.0
    codes = np.floor((np.nan_to_num(values, nan=low) - low) / span * (NUMBER_SHADES - 1e-6)).clip(0, NUMBER_SHADES - 1)
    stops = [low + span * f for f in (0.0, 0.25, 0.5, 0.75, 1.0)]
    entries = [[f"{v:.4g}", VIRIDIS[int(round(f * (NUMBER_SHADES - 1)))]] for v, f in zip(stops, (0, .25, .5, .75, 1))]
    return codes.astype(np.uint8), list(VIRIDIS), {"title": colouring.name, "entries": entries}, None


def selection_shape(text: str | None) -> dict | None:
    """The selection's ``sel`` text (``inference.atlas.parse_selection``) as the canvas draws it."""
    selection = parse_selection(text)
    if selection is None:
        return None
    if selection.kind == "box":
        return {"kind": "box", "box": list(selection.box)}
    if selection.kind == "lasso":
        return {"kind": "lasso", "xs": list(selection.xs), "ys": list(selection.ys)}
    return {"kind": "rows", "rows": list(selection.rows)}


def canvas_payload(counts: np.ndarray, view: View, full: View, xy: np.ndarray, rows: np.ndarray,
                   colouring: Colouring | None, rings: np.ndarray | None = None,
                   axis_titles: tuple[str, str] = ("1", "2"), height: int = 600, marker: int | None = None) -> dict:
    """What ``pages/_atlas_canvas.js`` draws, as JSON: the density image, the drawn points (float32
    x and y, int32 rows, uint8 colour codes, base64), their colours and legend, the rings and the
    view. ``token`` names it, so the canvas decodes the arrays only when they change. The selection's
    shape is added per run (``with_selection``): a new selection does not rebuild the rest."""
    codes, colours, legend, names = colour_codes(colouring, len(rows))
    xy = np.asarray(xy, dtype=np.float32).reshape(-1, 2)
    rings = np.zeros((0, 2), np.float32) if rings is None else np.asarray(rings, dtype=np.float32).reshape(-1, 2)
    payload = {
        "view": [view.x0, view.x1, view.y0, view.y1], "full": [full.x0, full.x1, full.y0, full.y1],
        "density": "data:image/png;base64," + base64.b64encode(density_png(counts)).decode(),
        "x": _b64(xy[:, 0], np.float32), "y": _b64(xy[:, 1], np.float32), "rows": _b64(rows, np.int32),
        "codes": _b64(codes, np.uint8), "rings": _b64(rings.reshape(-1), np.float32), "colours": colours,
        "legend": legend, "names": names, "colour_name": colouring.name if colouring else "",
        "axes": list(axis_titles), "height": int(height),
        "marker": marker if marker is not None else (5 if len(rows) < 2_000 else 4 if len(rows) < 10_000 else 3),
    }
    digest = hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]
    return dict(payload, token=digest)


def with_selection(payload: dict, selection: str | None) -> dict:
    """The payload with the selection's shape (``selection_shape``) to draw."""
    return dict(payload, selection=selection_shape(selection))
