"""Small static charts as SVG text, for the places where a chart must cost nothing to draw: the
Model page is the app's first, and an interactive chart there makes the browser load plotly.js
(about 0.4 s of a cold start on a 2-core machine) before the page settles. ``st.image`` shows SVG
text as it is; no JavaScript runs."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence
from xml.sax.saxutils import escape

CLASS_COLOURS = ("#4C78A8", "#F58518", "#E45756")  # the first of figures.CLASS_COLOURS (no plotly here)


@dataclass(frozen=True)
class Series:
    name: str
    x: Sequence[float]
    y: Sequence[float]
    markers: bool = False


@dataclass(frozen=True)
class Panel:
    """One chart's plotting area in pixels: left, top, width, height."""

    left: float
    top: float
    width: float
    height: float


def finite_points(series: Series) -> list[tuple[float, float]]:
    return [(float(x), float(y)) for x, y in zip(series.x, series.y)
            if x is not None and y is not None and math.isfinite(float(x)) and math.isfinite(float(y))]


def scale(value: float, low: float, high: float, start: float, length: float, flip: bool = False) -> float:
    """``value`` in [low, high] to pixels along an axis starting at ``start`` (``flip``: y grows downwards)."""
    fraction = 0.5 if high == low else (value - low) / (high - low)
    return start + length * (1.0 - fraction if flip else fraction)


def panel_svg(title: str, series: Sequence[Series], panel: Panel, x_label: str, colour_offset: int = 0) -> list[str]:
    """One panel: title, frame, the axes' end values, and a polyline (with dots if asked) per series."""
    points = [p for s in series for p in finite_points(s)]
    parts = [f'<text x="{panel.left + panel.width / 2:.1f}" y="{panel.top - 10:.1f}" text-anchor="middle" '
             f'font-size="13">{escape(title)}</text>',
             f'<rect x="{panel.left}" y="{panel.top}" width="{panel.width}" height="{panel.height}" fill="none" '
             'stroke="#ccc"/>']
    if not points:
        return parts
    x_low, x_high = min(p[0] for p in points), max(p[0] for p in points)
    y_low, y_high = min(p[1] for p in points), max(p[1] for p in points)
    bottom = panel.top + panel.height
    parts += [f'<text x="{panel.left:.1f}" y="{bottom + 16:.1f}" font-size="11">{x_low:g}</text>',
              f'<text x="{panel.left + panel.width:.1f}" y="{bottom + 16:.1f}" text-anchor="end" '
              f'font-size="11">{x_high:g}</text>',
              f'<text x="{panel.left + panel.width / 2:.1f}" y="{bottom + 16:.1f}" text-anchor="middle" '
              f'font-size="11">{escape(x_label)}</text>',
              f'<text x="{panel.left - 4:.1f}" y="{panel.top + 4:.1f}" text-anchor="end" font-size="11">{y_high:.4g}</text>',
              f'<text x="{panel.left - 4:.1f}" y="{bottom:.1f}" text-anchor="end" font-size="11">{y_low:.4g}</text>']
    for i, s in enumerate(series):
        colour = CLASS_COLOURS[(colour_offset + i) % len(CLASS_COLOURS)]
        xy = [(scale(x, x_low, x_high, panel.left, panel.width), scale(y, y_low, y_high, panel.top, panel.height, True))
              for x, y in finite_points(s)]
        if not xy:
            continue
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y in xy)
        parts.append(f'<polyline data-name="{escape(s.name)}" points="{path}" fill="none" stroke="{colour}" '
                     'stroke-width="1.5"/>')
        if s.markers:
            parts += [f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{colour}"/>' for x, y in xy]
    return parts


def legend_svg(names: Sequence[str], left: float, top: float) -> list[str]:
    parts = []
    for i, name in enumerate(names):
        x = left + 130 * i
        colour = CLASS_COLOURS[i % len(CLASS_COLOURS)]
        parts += [f'<line x1="{x}" y1="{top}" x2="{x + 20}" y2="{top}" stroke="{colour}" stroke-width="2"/>',
                  f'<text x="{x + 26}" y="{top + 4}" font-size="12">{escape(name)}</text>']
    return parts


def training_curves_svg(history: dict[str, Sequence[float]], width: int = 900, height: int = 300) -> str:
    """Loss (left) and train and test ELBO (right) against the optimiser step, as SVG text. The loss
    is −(β-weighted ELBO), so for β = 1 it mirrors the train ELBO; for a β-VAE the gap between them
    is (β − 1)·KL. Both are running averages, logged every few steps; the test ELBO is marked at the
    evaluation steps."""
    steps = list(history.get("step", []))
    loss = [Series("loss", steps, list(history.get("loss", [])))]
    elbo = [Series("train ELBO", steps, list(history.get("train_elbo", [])))]
    if history.get("eval_step") and history.get("test_elbo"):
        elbo.append(Series("test ELBO", list(history["eval_step"]), list(history["test_elbo"]), markers=True))
    gap, left_margin, top, bottom_margin = 80, 70, 30, 60
    panel_width = (width - left_margin - gap - 20) / 2
    panels = (Panel(left_margin, top, panel_width, height - top - bottom_margin),
              Panel(left_margin + panel_width + gap, top, panel_width, height - top - bottom_margin))
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" font-family="sans-serif">',
             '<rect width="100%" height="100%" fill="white"/>']
    parts += panel_svg("loss (minimised)", loss, panels[0], "step")
    parts += panel_svg("ELBO (nats, higher is better)", elbo, panels[1], "step", colour_offset=1)
    parts += legend_svg([s.name for s in loss + elbo], left_margin, height - 14)
    return "\n".join(parts + ["</svg>"])


def posterior_svg(mean: Sequence[float], spread: Sequence[float], title: str, width: int = 620, height: int = 300,
                  colour: str = CLASS_COLOURS[0]) -> str:
    """A bar per latent dimension at ``mean`` with ±``spread`` error bars, against the prior's ±1
    (dotted), as SVG text: an encoder posterior q(z | x) (mean ± std) or a selection's means
    (average ± spread). The y range holds every bar end and ±1.5."""
    mean, spread = [float(m) for m in mean], [abs(float(s)) for s in spread]
    ends = [m + s for m, s in zip(mean, spread)] + [m - s for m, s in zip(mean, spread)]
    finite = [v for v in ends if math.isfinite(v)]
    low, high = min(finite + [-1.5]), max(finite + [1.5])
    panel = Panel(44, 34, width - 56, height - 64)
    bottom = panel.top + panel.height

    def y(value: float) -> float:
        return scale(value, low, high, panel.top, panel.height, flip=True)

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
             'font-family="sans-serif">',
             f'<text x="{width / 2:.1f}" y="18" text-anchor="middle" font-size="13">{escape(title)}</text>',
             f'<rect x="{panel.left}" y="{panel.top}" width="{panel.width}" height="{panel.height}" fill="none" stroke="#ccc"/>']
    for level in (-1.0, 0.0, 1.0):
        dash = ' stroke-dasharray="3,3"' if level else ""
        parts += [f'<line x1="{panel.left}" y1="{y(level):.1f}" x2="{panel.left + panel.width}" y2="{y(level):.1f}" '
                  f'stroke="#888" stroke-width="1"{dash}/>',
                  f'<text x="{panel.left - 5}" y="{y(level) + 4:.1f}" text-anchor="end" font-size="11">{level:g}</text>']
    slot = panel.width / max(len(mean), 1)
    for j, (m, s) in enumerate(zip(mean, spread)):
        if not (math.isfinite(m) and math.isfinite(s)):
            continue
        left, centre = panel.left + slot * (j + 0.2), panel.left + slot * (j + 0.5)
        top, base = min(y(m), y(0.0)), max(y(m), y(0.0))
        parts += [f'<rect data-dim="z{j}" x="{left:.1f}" y="{top:.1f}" width="{slot * 0.6:.1f}" height="{base - top:.1f}" '
                  f'fill="{colour}" opacity="0.85"><title>z{j}: {m:.3f} ± {s:.3f}</title></rect>',
                  f'<line x1="{centre:.1f}" y1="{y(m - s):.1f}" x2="{centre:.1f}" y2="{y(m + s):.1f}" stroke="#333"/>',
                  f'<line x1="{centre - 4:.1f}" y1="{y(m - s):.1f}" x2="{centre + 4:.1f}" y2="{y(m - s):.1f}" stroke="#333"/>',
                  f'<line x1="{centre - 4:.1f}" y1="{y(m + s):.1f}" x2="{centre + 4:.1f}" y2="{y(m + s):.1f}" stroke="#333"/>']
        if len(mean) <= 40 or j % max(1, len(mean) // 20) == 0:
            parts.append(f'<text x="{centre:.1f}" y="{bottom + 15:.1f}" text-anchor="middle" font-size="11">z{j}</text>')
    return "\n".join(parts + ["</svg>"])
