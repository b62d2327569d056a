"""Figures and tables for UG-VAE's global and local latent spaces (thesis Figs 4.4–4.8,
Tables 4.1–4.2). Arrays in, plotly figures or pandas tables out; no Streamlit."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from vizvae.viz.figures import CLASS_COLOURS, apply_layout


def ellipse_points(center: np.ndarray, covariance: np.ndarray, radius: float = 2.0, n: int = 40) -> np.ndarray:
    """The ``radius``-σ contour of a 2-D Gaussian: (n, 2) points, closed (first = last)."""
    values, vectors = np.linalg.eigh(np.asarray(covariance, dtype=np.float64))
    angles = np.linspace(0.0, 2 * np.pi, n)
    circle = np.stack([np.cos(angles), np.sin(angles)], 1)
    return np.asarray(center) + radius * (circle * np.sqrt(np.clip(values, 0.0, None))) @ vectors.T


def posterior_map_figure(coords: np.ndarray, kinds: np.ndarray, kind_names: Sequence[str],
                         covariances: np.ndarray | None = None, radius: float = 2.0,
                         axis_titles: tuple[str, str] = ("component 1", "component 2"),
                         title: str | None = None, highlight: dict[str, np.ndarray] | None = None) -> go.Figure:
    """Each batch's global posterior mean in 2-D, coloured by batch kind (Fig. 4.8c); with
    ``covariances`` (n, 2, 2) each gets its ``radius``-σ ellipse. ``highlight`` adds named
    marked points, e.g. an interpolation path."""
    coords, kinds = np.asarray(coords), np.asarray(kinds)
    fig = go.Figure()
    for k, name in enumerate(kind_names):
        colour = CLASS_COLOURS[k % len(CLASS_COLOURS)]
        rows = np.flatnonzero(kinds == k)
        if covariances is not None and len(rows):
            xs, ys = [], []
            for r in rows:
                contour = ellipse_points(coords[r], covariances[r], radius)
                xs += contour[:, 0].tolist() + [None]
                ys += contour[:, 1].tolist() + [None]
            fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", line=dict(color=colour, width=1), opacity=0.35,
                                     hoverinfo="skip", showlegend=False, legendgroup=name))
        fig.add_trace(go.Scatter(
            x=coords[rows, 0], y=coords[rows, 1], mode="markers", name=name, legendgroup=name,
            marker=dict(color=colour, size=7, line=dict(width=0.5, color="white")), customdata=rows,
            hovertemplate=f"{name}<br>batch %{{customdata}}<extra></extra>",
        ))
    for name, points in (highlight or {}).items():
        points = np.asarray(points)
        fig.add_trace(go.Scatter(x=points[:, 0], y=points[:, 1], mode="lines+markers", name=name,
                                 marker=dict(size=9, symbol="diamond", color="#111111"), line=dict(color="#111111")))
    fig.update_xaxes(title_text=axis_titles[0])
    fig.update_yaxes(title_text=axis_titles[1], scaleanchor="x", scaleratio=1)
    fig.update_layout(legend=dict(orientation="h", y=-0.15))
    return apply_layout(fig, title, 520)


def cluster_label_figure(counts: np.ndarray, label_names: Sequence[str] | None = None,
                         title: str | None = "Test images per cluster and label") -> go.Figure:
    """Heat map of (K, labels) counts: which digits each cluster of q(d | z) takes."""
    counts = np.asarray(counts)
    k, n_labels = counts.shape
    label_names = list(label_names) if label_names is not None else [str(i) for i in range(n_labels)]
    fig = go.Figure(go.Heatmap(
        z=counts, x=label_names, y=[f"d = {d}" for d in range(k)], colorscale="Blues", text=counts,
        texttemplate="%{text}", hovertemplate="cluster %{y}, label %{x}: %{z} images<extra></extra>",
        colorbar=dict(title="images"),
    ))
    fig.update_xaxes(title_text="label", type="category")
    fig.update_yaxes(autorange="reversed", type="category")
    return apply_layout(fig, title, 80 + 32 * k)


def batch_classification_table(results: dict, problems: Sequence) -> pd.DataFrame:
    """Table 4.2's shape: batch categories, classifier, train and test accuracy."""
    records = []
    for problem in problems:
        for accuracy in results.get(problem.name, []):
            records.append({"Batch categories": problem.label,
                            "Classifier": {"linear": "Linear SVM", "rbf": "RBF SVM"}[accuracy.classifier],
                            "Train accuracy": round(accuracy.train_accuracy, 3),
                            "Test accuracy": round(accuracy.test_accuracy, 3)})
    return pd.DataFrame(records, columns=["Batch categories", "Classifier", "Train accuracy", "Test accuracy"])


def fd_table(rows: Sequence[tuple[str, str, float, float, int]]) -> pd.DataFrame:
    """Table 4.1's shape, from (method, checkpoint, FD mean, FD std, repetitions) per model: the
    distance once, as "mean ± std" over the repetitions."""
    return pd.DataFrame(
        [{"Method": method, "Checkpoint": name, "FD (mean ± std)": f"{mean:.2f} ± {std:.2f}", "repetitions": reps}
         for method, name, mean, std, reps in rows],
        columns=["Method", "Checkpoint", "FD (mean ± std)", "repetitions"])
