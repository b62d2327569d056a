"""Figures and exports for the disentanglement page (no Streamlit): a traversal grid whose rows
are labelled with the ground-truth factor each latent carries, the same traversal as an animated
GIF, the factor × latent mutual-information heat map, MIG against β, and the metrics table."""

from __future__ import annotations

import io
from typing import Any, Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from vizvae.viz.figures import apply_layout
from vizvae.viz.images import image_grid, png_bytes

LABEL_FONT_SIZE = 13
KL_WEIGHT_COLUMN = "KL weight β"
METRIC_COLUMNS = {
    "mig": "MIG",
    "dci_disentanglement": "DCI disentanglement",
    "dci_completeness": "DCI completeness",
    "dci_informativeness": "DCI informativeness",  # mean held-out accuracy
    "active_units": "active units",  # average KL > 0.01 nats
    "test_elbo": "test ELBO",  # nats
}


def _font(size: int = LABEL_FONT_SIZE):
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1 has only the fixed bitmap font
        return ImageFont.load_default()


def latent_row_labels(dims: Sequence[int], best_factor: Sequence[int], best_value: Sequence[float],
                      factor_names: Sequence[str], average_kl: Sequence[float], threshold: float = 0.01) -> list[str]:
    """'z3 · x (0.71)': each latent with the factor it shares the most information with and the
    fraction of that factor's entropy it explains; 'z7 · inactive' below the KL threshold."""
    labels = []
    for j in dims:
        if average_kl[j] <= threshold:
            labels.append(f"z{j} · inactive")
        else:
            labels.append(f"z{j} · {factor_names[best_factor[j]]} ({best_value[j]:.2f})")
    return labels


def labelled_grid(images: np.ndarray, image_shape: tuple[int, ...], row_labels: Sequence[str],
                  column_labels: Sequence[str] | None = None, scale: int = 2, gutter: int = 1) -> np.ndarray:
    """A (rows, columns, features) image grid with a text label left of every row and, when
    given, one above every column: uint8 (H, W), white margins, black text."""
    from PIL import Image, ImageDraw

    images = np.asarray(images)
    rows, columns = images.shape[:2]
    if len(row_labels) != rows:
        raise ValueError(f"{rows} rows of images but {len(row_labels)} row labels")
    grid = image_grid(images, image_shape, gutter=gutter, scale=scale)
    height, width = image_shape[-2:]
    font = _font()
    measure = ImageDraw.Draw(Image.new("L", (1, 1)))
    label_width = int(max((measure.textlength(label, font=font) for label in row_labels), default=0)) + 12
    header = LABEL_FONT_SIZE + 10 if column_labels is not None else 0
    canvas = Image.new("L", (label_width + grid.shape[1], header + grid.shape[0]), 255)
    canvas.paste(Image.fromarray(grid), (label_width, header))
    draw = ImageDraw.Draw(canvas)
    pitch_y, pitch_x = (height + gutter) * scale, (width + gutter) * scale
    for r, label in enumerate(row_labels):
        centre = header + gutter * scale + r * pitch_y + height * scale / 2
        draw.text((6, centre), label, fill=0, font=font, anchor="lm")
    for c, label in enumerate(column_labels or []):
        centre = label_width + gutter * scale + c * pitch_x + width * scale / 2
        draw.text((centre, header / 2), label, fill=0, font=font, anchor="mm")
    return np.asarray(canvas)


def traversal_png(images: np.ndarray, image_shape: tuple[int, ...], row_labels: Sequence[str],
                  values: Sequence[float] | None = None, scale: int = 2) -> bytes:
    """The labelled traversal grid as PNG bytes; ``values`` label the columns."""
    columns = [f"{v:+.1f}" for v in values] if values is not None else None
    return png_bytes(labelled_grid(images, image_shape, row_labels, columns, scale=scale))


def traversal_gif(images: np.ndarray, image_shape: tuple[int, ...], row_labels: Sequence[str],
                  values: Sequence[float], scale: int = 3, frame_ms: int = 120) -> bytes:
    """The traversal as an animation: frame c shows column c of every row (all latents at the
    same value, which is printed on top), played forwards then backwards, looping."""
    from PIL import Image

    images = np.asarray(images)
    frames = [Image.fromarray(labelled_grid(images[:, c:c + 1], image_shape, row_labels, [f"z = {values[c]:+.1f}"],
                                            scale=scale)) for c in range(images.shape[1])]
    frames = frames + frames[-2:0:-1]  # ping-pong
    buffer = io.BytesIO()
    frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:], duration=frame_ms, loop=0)
    return buffer.getvalue()


def mutual_information_heatmap(normalized_mi: np.ndarray, factor_names: Sequence[str], latent_order: Sequence[int],
                               mig_per_factor: Sequence[float] | None = None, inactive: Sequence[int] = (),
                               title: str | None = None) -> go.Figure:
    """Factors (rows) × latents (columns, in ``latent_order``; ``inactive`` ones labelled in grey)
    coloured by I(z_j; v_k) / H(v_k). A disentangled model shows one bright cell per row and per
    column; MIG is each row's gap between its brightest and second-brightest cell."""
    normalized_mi = np.asarray(normalized_mi, dtype=float)
    order = list(latent_order)
    values = normalized_mi[order].T  # (factors, latents)
    # inactive latents keep their column (MIG counts them) but their labels are greyed out
    columns = [f"<span style='color:#b0b0b0'>z{j}</span>" if j in set(inactive) else f"z{j}" for j in order]
    rows = [f"{name} · gap {gap:.2f}" if mig_per_factor is not None else name
            for name, gap in zip(factor_names, mig_per_factor if mig_per_factor is not None else factor_names)]
    fig = go.Figure(go.Heatmap(
        z=values, x=columns, y=rows, zmin=0.0, zmax=1.0, colorscale="Blues",
        text=np.round(values, 2), texttemplate="%{text:.2f}", textfont=dict(size=11),
        colorbar=dict(title="I / H", thickness=12),
        hovertemplate="%{y}<br>%{x}: I(z; v) / H(v) = %{z:.3f}<extra></extra>",
    ))
    fig.update_yaxes(autorange="reversed")
    return apply_layout(fig, title, 70 + 48 * len(rows))


def metrics_against_beta_figure(betas: Sequence[float], metrics: dict[str, Sequence[float]],
                                title: str | None = None) -> go.Figure:
    """One line per metric (e.g. MIG, DCI disentanglement) against β, on a log axis."""
    order = np.argsort(np.asarray(betas, dtype=float))
    betas = [float(betas[i]) for i in order]
    fig = go.Figure()
    for name, values in metrics.items():
        fig.add_trace(go.Scatter(x=betas, y=[values[i] for i in order], mode="lines+markers", name=name,
                                 hovertemplate=f"{name}<br>β = %{{x:g}}: %{{y:.3f}}<extra></extra>"))
    fig.update_xaxes(type="log", title_text="β (KL weight)", tickvals=betas, ticktext=[f"{b:g}" for b in betas])
    fig.update_yaxes(title_text="score", rangemode="tozero")
    fig.update_layout(legend=dict(orientation="h", y=-0.3))
    return apply_layout(fig, title, 320)


def metrics_table(rows: Sequence[dict[str, Any]]) -> pd.DataFrame:
    """One row per model: ``name``, ``beta`` and the metric keys of ``METRIC_COLUMNS``. The KL weight
    is text: a model without one (``beta`` None: a UG-VAE, whose β is its global latent) reads "—"."""
    records = []
    for row in rows:
        beta = row.get("beta")
        record = {"model": row.get("name"), KL_WEIGHT_COLUMN: "— (none)" if beta is None else f"{float(beta):g}"}
        record.update({label: row.get(key) for key, label in METRIC_COLUMNS.items()})
        records.append(record)
    return pd.DataFrame(records, columns=["model", KL_WEIGHT_COLUMN, *METRIC_COLUMNS.values()])
