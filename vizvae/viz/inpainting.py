"""Images, figures and tables of the Inpainting page (thesis Fig. 5.6). Arrays in, PNG bytes, plotly
figures or pandas tables out; no Streamlit, no torch.

Images are flattened rows (features = C·H·W, values in [0, 1]); masks are bool rows, True where a
pixel is observed. Hidden pixels are drawn in ``HIDDEN_RGB`` (MNIST's background is black, so a
black hole as in the thesis' figure would not show); uncertainty maps use a dark-to-yellow scale.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from vizvae.viz.figures import apply_layout
from vizvae.viz.images import image_grid, png_bytes

HIDDEN_RGB = (0.16, 0.42, 0.85)  # the colour of a hidden pixel
# a perceptual dark → purple → orange → yellow scale (anchors of matplotlib's "inferno")
UNCERTAINTY_ANCHORS = np.array([[0.0, 0.0, 0.016], [0.341, 0.063, 0.431], [0.735, 0.216, 0.330],
                                [0.978, 0.557, 0.035], [0.988, 1.0, 0.643]])


@dataclass
class InpaintingRow:
    """One row of the Fig. 5.6 layout: a model or method's mean imputation, a few samples and the
    per-pixel variance, all flattened images."""

    label: str
    mean: np.ndarray  # (features,)
    samples: np.ndarray  # (n, features)
    variance: np.ndarray  # (features,)


def _shape(image_shape: Sequence[int]) -> tuple[int, int, int]:
    return (1, *image_shape) if len(image_shape) == 2 else tuple(image_shape)  # type: ignore[return-value]


def to_rgb(image: np.ndarray, image_shape: Sequence[int]) -> np.ndarray:
    """A flattened image -> (H, W, 3) floats in [0, 1] (grey repeated for one channel)."""
    channels, height, width = _shape(image_shape)
    array = np.clip(np.asarray(image, dtype=np.float32).reshape(channels, height, width), 0.0, 1.0)
    return np.repeat(array, 3, axis=0).transpose(1, 2, 0) if channels == 1 else array.transpose(1, 2, 0)


def observed_rgb(image: np.ndarray, mask: np.ndarray | None, image_shape: Sequence[int]) -> np.ndarray:
    """x_O as a model sees it: observed pixels as they are, hidden ones in ``HIDDEN_RGB``; (H, W, 3)."""
    rgb = to_rgb(image, image_shape)
    if mask is None:
        return rgb
    channels, height, width = _shape(image_shape)
    hidden = ~np.asarray(mask, dtype=bool).reshape(channels, height, width).all(0)
    rgb = rgb.copy()
    rgb[hidden] = HIDDEN_RGB
    return rgb


def uncertainty_rgb(variance: np.ndarray, image_shape: Sequence[int], vmax: float) -> np.ndarray:
    """Per-pixel variance (averaged over channels) on the dark-to-yellow scale, 0 to ``vmax``; (H, W, 3)."""
    channels, height, width = _shape(image_shape)
    values = np.asarray(variance, dtype=np.float64).reshape(channels, height, width).mean(0)
    position = np.clip(values / max(vmax, 1e-12), 0.0, 1.0) * (len(UNCERTAINTY_ANCHORS) - 1)
    low = np.floor(position).astype(int).clip(0, len(UNCERTAINTY_ANCHORS) - 2)
    fraction = (position - low)[..., None]
    return (1 - fraction) * UNCERTAINTY_ANCHORS[low] + fraction * UNCERTAINTY_ANCHORS[low + 1]


def rgb_png(rgb: np.ndarray, scale: int = 4) -> bytes:
    """An (H, W, 3) float image as PNG bytes, upscaled by an integer factor."""
    canvas = np.asarray(rgb, dtype=np.float64).repeat(scale, 0).repeat(scale, 1)
    return png_bytes((np.clip(canvas, 0.0, 1.0) * 255).round().astype(np.uint8))


def strip_png(images: np.ndarray, image_shape: Sequence[int], scale: int = 3) -> bytes:
    """Flattened images (n, features) side by side, as PNG bytes."""
    images = np.asarray(images, dtype=np.float32)
    return png_bytes(image_grid(images[None], _shape(image_shape), scale=scale))


def uncertainty_legend_png(vmax: float, width: int = 160, height: int = 12) -> bytes:
    """The uncertainty colour scale, 0 (left) to ``vmax`` (right), as a small PNG."""
    ramp = np.tile(np.linspace(0.0, vmax, width), (height, 1))
    return rgb_png(uncertainty_rgb(ramp.reshape(-1), (height, width), vmax), scale=1)


def inpainting_figure_png(original: np.ndarray, observed: np.ndarray, rows: Sequence[InpaintingRow],
                          image_shape: Sequence[int], n_samples: int = 8, vmax: float = 0.25, scale: int = 2,
                          gutter: int = 3) -> bytes:
    """The whole comparison as one picture, laid out like Fig. 5.6 but transposed to one row per
    method: a label column, then the mean imputation, ``n_samples`` samples and the uncertainty map.
    The first two rows hold the original and the observed image (``observed`` as from
    ``observed_rgb``)."""
    from PIL import Image, ImageDraw, ImageFont

    channels, height, width = _shape(image_shape)
    cell_h, cell_w = height * scale, width * scale
    columns = 2 + n_samples
    label_w = 150
    canvas_w = label_w + columns * (cell_w + gutter) + gutter
    canvas_h = (2 + len(rows)) * (cell_h + gutter) + gutter + 16
    canvas = Image.new("RGB", (canvas_w, canvas_h), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    font = ImageFont.load_default()

    def paste(rgb: np.ndarray, row: int, column: int) -> None:
        tile = (np.clip(rgb, 0, 1) * 255).round().astype(np.uint8).repeat(scale, 0).repeat(scale, 1)
        canvas.paste(Image.fromarray(tile), (label_w + gutter + column * (cell_w + gutter),
                                              16 + gutter + row * (cell_h + gutter)))

    headers = ["mean"] + [f"sample {i + 1}" for i in range(n_samples)] + ["variance"]
    for column, header in enumerate(headers):
        draw.text((label_w + gutter + column * (cell_w + gutter), 2), header, fill=(90, 90, 90), font=font)
    for row, (label, rgb) in enumerate((("original", to_rgb(original, image_shape)), ("observed", observed))):
        draw.text((4, 16 + gutter + row * (cell_h + gutter) + cell_h // 2 - 6), label, fill=(0, 0, 0), font=font)
        paste(rgb, row, 0)
    for index, entry in enumerate(rows):
        row = index + 2
        draw.text((4, 16 + gutter + row * (cell_h + gutter) + cell_h // 2 - 6), entry.label[:24], fill=(0, 0, 0),
                  font=font)
        paste(to_rgb(entry.mean, image_shape), row, 0)
        for column, sample in enumerate(np.asarray(entry.samples)[:n_samples]):
            paste(to_rgb(sample, image_shape), row, 1 + column)
        paste(uncertainty_rgb(entry.variance, image_shape, vmax), row, columns - 1)
    buffer = io.BytesIO()
    canvas.save(buffer, format="PNG")
    return buffer.getvalue()


def pixel_canvas_figure(image: np.ndarray, image_shape: Sequence[int], mask: np.ndarray | None = None,
                        dragmode: str = "lasso", size: int = 336) -> go.Figure:
    """A pixel grid to paint on: one square marker per pixel (grey level of ``image``; hidden pixels of
    ``mask`` in ``HIDDEN_RGB``), row-major so that point i is pixel i: a selection's ``point_index`` is
    the pixel's index. Box and lasso selections (and clicks) select pixels."""
    channels, height, width = _shape(image_shape)
    rgb = observed_rgb(image, mask, image_shape)  # (H, W, 3)
    rows, cols = np.divmod(np.arange(height * width), width)
    colours = [f"rgb({int(r * 255)},{int(g * 255)},{int(b * 255)})" for r, g, b in rgb.reshape(-1, 3)]
    cell = size / max(height, width)
    fig = go.Figure(go.Scatter(
        x=cols.tolist(), y=rows.tolist(), mode="markers",
        marker=dict(symbol="square", size=cell * 0.92, color=colours, line=dict(width=0)),
        selected=dict(marker=dict(opacity=1.0)), unselected=dict(marker=dict(opacity=1.0)),
        hovertemplate="row %{y}, column %{x}<extra></extra>"))
    fig.update_xaxes(range=[-0.5, width - 0.5], visible=False, fixedrange=True)
    fig.update_yaxes(range=[height - 0.5, -0.5], visible=False, fixedrange=True, scaleanchor="x")
    fig.update_layout(width=size + 20, height=size + 20, margin=dict(l=10, r=10, t=10, b=10), dragmode=dragmode,
                      plot_bgcolor="rgb(40,40,40)", paper_bgcolor="rgba(0,0,0,0)", showlegend=False,
                      newselection=dict(line=dict(color="#F0A202", width=2)))
    return fig


def label_probabilities_figure(labels: Sequence[str], probs: np.ndarray, classes: Sequence[str] | None = None,
                               title: str | None = None) -> go.Figure:
    """p(y | x_O) per row (a method or model): a heat map, rows × classes, with the probabilities
    written in."""
    probs = np.asarray(probs, dtype=float)
    classes = list(classes) if classes is not None else [str(c) for c in range(probs.shape[1])]
    fig = go.Figure(go.Heatmap(z=probs, x=classes, y=list(labels), zmin=0.0, zmax=1.0, colorscale="Blues",
                               text=np.round(probs, 2), texttemplate="%{text:.2f}", showscale=False,
                               hovertemplate="%{y}<br>p(y = %{x} | x_O) = %{z:.3f}<extra></extra>"))
    fig.update_yaxes(autorange="reversed")
    fig.update_xaxes(title_text="label", type="category")
    return apply_layout(fig, title, 80 + 32 * len(labels))


def scores_table(rows: Sequence[dict]) -> pd.DataFrame:
    """One line per method: label, NLL of the hidden pixels (total and per pixel), MSE, predicted
    label and its probability, runtime. Each dict may leave any score out (None)."""
    columns = ["row", "hidden pixels", "NLL (nats)", "NLL per hidden pixel", "MSE", "predicted label",
               "p(label)", "label from", "runtime (s)"]
    return pd.DataFrame([{column: row.get(column) for column in columns} for row in rows], columns=columns)
