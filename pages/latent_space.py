"""Latent space: where the test set lands (the latent plane itself for 2-D models, or a PCA,
UMAP or t-SNE projection of the encoder means), one point's encoder posterior, traversals,
interpolations and the decoded manifold of a 2-D latent plane.

Widget / session-state keys (used by the tests): ``projection_method``, ``latent_projection``
(the chart), ``latent_selection`` (list of selected row indices, the source of truth),
``latent_points`` (the indices as text), ``latent_focus``, ``traversal_base``,
``traversal_span``, ``traversal_steps``, ``traversal_rows``, ``traversal_dim``,
``traversal_value``, ``interpolation_steps``, ``manifold_size``, ``manifold_range``,
``manifold_span``. URL: ``method``, ``points``, ``base``, ``span``, ``steps``, ``rows``, ``dim``,
``offset``, ``isteps``, ``grid``, ``grid_range``.
"""

from __future__ import annotations

if __name__ == "__main__":  # a fresh server's first request for /latent_space runs this file bare
    from pages._common import run_app

    run_app()  # before the imports below: the app's navigation must replace Streamlit's at once

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import streamlit as st
import torch

from pages._common import (
    plain, checkpoint_stamp, current_ref, download_csv, download_png, load_model, parse_indices, require_model,
    selection_indices, url_bound,
)
from vizvae.checkpoint import checkpoint_dataset
from vizvae.inference import projection as projections
from vizvae.inference.latent import (
    ClassLabels, EncodedData, cached_encoding, class_labels, decode_mean, dimensions_by_kl, lerp, manifold_grid, moved,
    reconstruct, slerp, traversal_base, traversal_latents, traversal_values,
)
from vizvae.jobs import format_duration
from vizvae.server import CapExceeded, check_caps
from vizvae.viz.figures import kl_figure, posterior_figure, projection_figure
from vizvae.viz.images import grid_png, paired_rows
from vizvae.viz.tables import csv_bytes, interpolation_table, posterior_table, projection_table, traversal_table

CHART_KEY = "latent_projection"
METHOD_KEY = "projection_method"
SELECTION_KEY = "latent_selection"
POINTS_KEY = "latent_points"
ANCHOR_KEY = "_latent_chart_selection"  # (view, rows) the scatter was last drawn with as selected
FOCUS_KEY = "latent_focus"
BASE_KEY = "traversal_base"
SPAN_KEY = "traversal_span"
STEPS_KEY = "traversal_steps"
ROWS_KEY = "traversal_rows"
DIM_KEY = "traversal_dim"
VALUE_KEY = "traversal_value"
INTERPOLATION_STEPS_KEY = "interpolation_steps"
MANIFOLD_SIZE_KEY = "manifold_size"
MANIFOLD_RANGE_KEY = "manifold_range"
MANIFOLD_SPAN_KEY = "manifold_span"
METHOD_LABELS = {"latent": "latent plane (z0, z1)", **projections.LABELS}
SHOWN_SELECTED = 10  # originals/reconstructions drawn for at most this many selected points
# Families with one Gaussian latent space under a N(0, I) prior (for the hierarchical ones, the ε-space
# of all layers, SPEC §3). UG-VAE, ML-VAE and GMVAE have local and global spaces: see the Global & local page.
LATENT_KINDS = ("vae", "miwae", "pvae", "hmcvae", "hvae", "hhvae", "exported", "adapter")


@dataclass(frozen=True)
class Subject:
    """What every section draws from: the model, its test set encoded, and their labels."""

    name: str
    model: Any
    x_test: np.ndarray
    image_shape: tuple[int, ...]
    encoded: EncodedData
    labels: ClassLabels | None

    @property
    def point_labels(self) -> list[str] | None:
        return self.labels.per_point if self.labels else None


@st.cache_data(show_spinner="Encoding the test set…", max_entries=16)
def _encoded(ref: str, stamp: tuple) -> EncodedData:
    """Shipped with the model (``python -m vizvae precompute``), else encoded once and kept in its cache."""
    checkpoint = load_model(ref)
    return cached_encoding(checkpoint.path, checkpoint.model, checkpoint_dataset(checkpoint.config).x_test)[0]


def _projection(folder: Path, method: str, means: np.ndarray) -> projections.Projection | None:
    """The latent plane itself, or a projection of the encoder means (UMAP and t-SNE: shipped
    with the model, else computed once under a status box and kept in the checkpoint cache; None,
    said on the page, when that computation is over this server's cap on UMAP points)."""
    if method == "latent":
        return projections.Projection(means[:, :2].astype(np.float32), "latent")
    if method not in projections.SLOW_METHODS:
        return projections.project(means, method)
    if projections.stored_projection(folder, method, len(means)):
        return projections.project(means, method, folder=folder)
    try:
        check_caps(umap_points=len(means))  # t-SNE is as costly per point
    except CapExceeded as err:
        st.warning(f"{err}. Choose another projection.", icon=":material/block:")
        return None
    label = projections.LABELS[method]
    with st.status(f"Computing {label} of {len(means):,} encoded test points (once per model)…", expanded=True) as status:
        result = projections.project(means, method, folder=folder, progress=status.write)
        status.update(label=f"{label} computed in {format_duration(result.seconds)} and cached on disk", state="complete",
                      expanded=False)
    return result


# -- the selection: a list of test rows, fed by the chart and the text box ------------------------------
def _set_selection(indices: list[int]) -> None:
    st.session_state[SELECTION_KEY] = list(indices)
    st.session_state[POINTS_KEY] = ", ".join(str(i) for i in indices)


def _on_chart_select() -> None:
    _set_selection(selection_indices(st.session_state.get(CHART_KEY)))


def _on_points_typed(n: int) -> None:
    _set_selection(parse_indices(st.session_state.get(POINTS_KEY) or "", n))
    st.session_state.pop(ANCHOR_KEY, None)  # the chart is redrawn with the typed rows


def chart_selection(view: tuple, selection: list[int]) -> list[int]:
    """The rows the scatter is drawn with as selected. A selection made in the chart lives in plotly:
    redrawing the figure for it would wipe plotly's record of the clicks, and a shift-click would
    then start a new selection instead of adding to it. So the figure only changes for a selection
    made elsewhere (the URL, the text box) or when ``view`` (model, projection) changes."""
    anchor = st.session_state.get(ANCHOR_KEY)
    if anchor is None or anchor[0] != view:
        anchor = (view, list(selection))
        st.session_state[ANCHOR_KEY] = anchor
    return anchor[1]


def current_selection(n: int) -> list[int]:
    """The selected rows: the session's, or on a first visit the URL's ``?points=``."""
    if SELECTION_KEY not in st.session_state:
        _set_selection(parse_indices(st.query_params.get("points", ""), n))
    selection = [i for i in st.session_state[SELECTION_KEY] if 0 <= i < n]
    if POINTS_KEY not in st.session_state:
        st.session_state[POINTS_KEY] = ", ".join(map(str, selection))
    return selection


def remember_selection(selection: list[int]) -> None:
    if selection:
        st.query_params["points"] = ",".join(map(str, selection))
    else:
        st.query_params.pop("points", None)


# -- the page ---------------------------------------------------------------------------------------
def render() -> None:
    checkpoint = require_model(kinds=LATENT_KINDS, data_kinds=("image",), purpose="The latent-space page")
    ref = current_ref()
    stamp = checkpoint_stamp(ref)
    dataset = checkpoint_dataset(checkpoint.config)
    subject = Subject(checkpoint.name, checkpoint.model, dataset.x_test, tuple(dataset.image_shape), _encoded(ref, stamp),
                      class_labels(dataset.y_test, dataset.target.categories if dataset.target is not None else None))
    latent_dims = subject.model.latent_dims
    st.title("Latent space")
    st.caption(f"**{plain(subject.name)}**: {subject.model.latent_dim}-D latent, {len(subject.x_test):,} test images of "
               f"{dataset.name}." + (f" The latent is the ε-space of all {len(latent_dims)} layers "
                                     f"({' + '.join(map(str, latent_dims))})." if len(latent_dims) > 1 else ""))
    selection = current_selection(len(subject.x_test))
    projection_section(subject, checkpoint.path, ref, stamp, selection)
    selected_section(subject, selection)
    base, span = traversal_section(subject, selection)
    one_dimension_section(subject, base, span)
    interpolation_section(subject, selection)
    manifold_section(subject)


def projection_section(subject: Subject, folder: Path, ref: str, stamp: tuple, selection: list[int]) -> None:
    st.header("Encoded test set")
    means = subject.encoded.mean
    methods = (["latent"] if subject.model.latent_dim == 2 else []) + list(projections.METHODS)
    method = url_bound(st.radio, "Projection", key=METHOD_KEY, param="method", default=methods[0],
                       valid=lambda m: m in methods, options=methods, format_func=METHOD_LABELS.get, horizontal=True,
                       help="UMAP and t-SNE take a while the first time; they are then cached on disk.")
    result = _projection(folder, method, means)
    if result is None:
        return
    labels = subject.labels
    figure = projection_figure(result.coords, labels.codes if labels else None, labels.names if labels else None,
                               selected=chart_selection((ref, stamp, method), selection),
                               axis_titles=axis_titles(method, result))
    st.plotly_chart(figure, key=CHART_KEY, on_select=_on_chart_select, selection_mode=("points", "box", "lasso"))
    how = "read from the disk cache" if result.from_cache else "computed"
    st.caption(f"Encoder means, coloured by label; {METHOD_LABELS[method]} {how} in {format_duration(result.seconds)}. "
               "Click a point or draw a box or lasso to select, shift-click to add a point; the camera icon saves "
               "a PNG.")
    columns = st.columns([3, 1])
    columns[0].text_input("Selected test rows", key=POINTS_KEY, on_change=_on_points_typed, args=(len(means),),
                          help="Row indices of the test set, e.g. 3, 17. The selection in the plot writes here too.")
    with columns[1]:
        download_csv("Coordinates (CSV)", csv_bytes(projection_table(result.coords, subject.point_labels, method)),
                     f"{subject.name}-{method}.csv", key="projection_csv")
    remember_selection(selection)


def axis_titles(method: str, result: projections.Projection) -> tuple[str, str]:
    if method == "latent":
        return "z0", "z1"
    if method == "pca":
        ratio = result.explained_variance_ratio
        return f"PC1 ({ratio[0]:.0%} of variance)", f"PC2 ({ratio[1]:.0%})"
    return f"{METHOD_LABELS[method]} 1", f"{METHOD_LABELS[method]} 2"


def selected_section(subject: Subject, selection: list[int]) -> None:
    st.header("Selected points")
    if not selection:
        st.info("Select a point in the plot above (or type row indices) to see it, its reconstruction and its "
                "encoder posterior.")
        return
    shown = selection[:SHOWN_SELECTED]
    originals = subject.x_test[shown]
    pairs = grid_png(paired_rows(originals, reconstruct(subject.model, originals), columns=len(shown)),
                     subject.image_shape, scale=3)
    left, right = st.columns([2, 3])
    with left:
        st.image(pairs, caption=f"rows {', '.join(map(str, shown))}: originals above reconstructions"
                 + (f" (first {SHOWN_SELECTED} of {len(selection)})" if len(selection) > SHOWN_SELECTED else ""))
        download_png("Originals and reconstructions (PNG)", pairs, f"{subject.name}-selected.png", key="selected_png")
    with right:
        posterior_view(subject, selection)


def posterior_view(subject: Subject, selection: list[int]) -> None:
    """The encoder posterior q(z | x) of one selected row."""
    if len(selection) > 1:
        if st.session_state.get(FOCUS_KEY) not in selection:
            st.session_state[FOCUS_KEY] = selection[0]
        focus = st.selectbox("Posterior of row", selection, key=FOCUS_KEY)
    else:
        focus = selection[0]
    means, stds = subject.encoded.mean, subject.encoded.std
    label = f", label {subject.point_labels[focus]}" if subject.labels else ""
    st.plotly_chart(posterior_figure(means[focus], stds[focus], title=f"q(z | x) of test row {focus}{label}"),
                    key="posterior_chart")
    st.caption("Encoder mean ± one standard deviation per latent dimension; dotted: the prior's ±1.")
    download_csv("Encoder mean and std (CSV)", csv_bytes(posterior_table(selection, means[selection], stds[selection])),
                 f"{subject.name}-posterior.csv", key="posterior_csv")


def traversal_section(subject: Subject, selection: list[int]) -> tuple[np.ndarray, float]:
    """The traversal grid; returns its base point and range, which the one-dimension view shares."""
    st.header("Traversals")
    latent_dim = subject.model.latent_dim
    controls = st.columns(4)
    with controls[0]:
        around = url_bound(st.radio, "Around", key=BASE_KEY, param="base", default="selected",
                           valid=lambda b: b in ("selected", "origin"), options=["selected", "origin"], horizontal=True,
                           format_func=lambda b: b if b == "origin" else
                           (f"selected row {selection[0]}" if selection else "selected point"))
    with controls[1]:
        span = url_bound(st.slider, "Range ±", key=SPAN_KEY, param="span", default=3.0, parse=float,
                         valid=lambda s: isinstance(s, float) and 0.5 <= s <= 5.0, min_value=0.5, max_value=5.0,
                         step=0.5, help="How far each dimension moves from the base.")
    with controls[2]:
        steps = url_bound(st.slider, "Columns", key=STEPS_KEY, param="steps", default=10, parse=int,
                          valid=lambda s: isinstance(s, int) and 3 <= s <= 15, min_value=3, max_value=15)
    with controls[3]:
        rows = 1 if latent_dim == 1 else url_bound(
            st.slider, "Rows (dimensions)", key=ROWS_KEY, param="rows", default=min(10, latent_dim), parse=int,
            valid=lambda r: isinstance(r, int) and 1 <= r <= latent_dim, min_value=1, max_value=latent_dim)
    base, row = traversal_base(subject.encoded.mean, selection, around_selected=around == "selected")
    base_name = "the origin" if row is None else f"the encoder mean of row {row}"
    if around == "selected" and row is None:
        st.caption("No point selected: traversing around the origin.")
    dims = dimensions_by_kl(subject.encoded.average_kl)[:rows]
    traversal = traversal_latents(base, dims, traversal_values(span, steps), around_base=True)  # (rows, steps, latent)
    traversal_view(subject, traversal, dims, f"Each row moves one dimension by −{span:g} … +{span:g} around {base_name}; "
                   "rows by average KL, highest first: " + ", ".join(f"z{d}" for d in dims))
    return base, span


def traversal_view(subject: Subject, traversal: torch.Tensor, dims: list[int], caption: str) -> None:
    png = grid_png(decode_mean(subject.model, traversal), subject.image_shape)
    left, right = st.columns([3, 2])
    with left:
        st.image(png, caption=caption)
        buttons = st.columns(2)
        with buttons[0]:
            download_png("Traversal grid (PNG)", png, f"{subject.name}-traversal.png", key="traversal_png")
        with buttons[1]:
            download_csv("Traversal latents (CSV)", csv_bytes(traversal_table(traversal.numpy(), dims)),
                         f"{subject.name}-traversal.csv", key="traversal_csv")
    with right:
        st.plotly_chart(kl_figure(subject.encoded.average_kl), key="kl_chart")
        st.caption("Average KL(q(z_j | x) ‖ N(0, 1)) over the test set: dimensions near 0 are unused by the decoder.")


def one_dimension_section(subject: Subject, base: np.ndarray, span: float) -> None:
    st.subheader("One dimension")
    average_kl = subject.encoded.average_kl
    order = dimensions_by_kl(average_kl)
    latent_dim = subject.model.latent_dim
    one = st.columns([1, 2, 1])
    with one[0]:
        dim = url_bound(st.selectbox, "Dimension", key=DIM_KEY, param="dim", default=order[0], parse=int,
                        valid=lambda d: isinstance(d, int) and 0 <= d < latent_dim, options=order,
                        format_func=lambda d: f"z{d} (KL {average_kl[d]:.2f})")
    with one[1]:
        offset = url_bound(st.slider, f"z{dim} − base", key=VALUE_KEY, param="offset", default=0.0, parse=float,
                           valid=lambda v: isinstance(v, float) and -span <= v <= span, format=lambda v: f"{v:g}",
                           min_value=-span, max_value=span, step=span / 20,
                           help="Moves the chosen dimension away from the base point; the image is re-decoded.")
    z = moved(base, dim, offset)
    single = grid_png(decode_mean(subject.model, torch.as_tensor(z)[None]), subject.image_shape, scale=5, gutter=0)
    with one[2]:
        st.image(single, caption=f"z{dim} = {z[dim]:.2f}")
        download_png("PNG", single, f"{subject.name}-z{dim}.png", key="traversal_value_png")


def interpolation_section(subject: Subject, selection: list[int]) -> None:
    st.header("Interpolation")
    if len(selection) < 2:
        st.info("Select two points (shift-click, a box or a lasso, or type two row indices) to interpolate "
                "between their encoder means.")
        return
    first, second = selection[0], selection[1]
    steps = url_bound(st.slider, "Steps", key=INTERPOLATION_STEPS_KEY, param="isteps", default=10, parse=int,
                      valid=lambda s: isinstance(s, int) and 3 <= s <= 16, min_value=3, max_value=16)
    means = subject.encoded.mean
    z0, z1 = torch.as_tensor(means[first]), torch.as_tensor(means[second])
    paths = torch.stack([lerp(z0, z1, steps), slerp(z0, z1, steps)])  # (2, steps, latent)
    strips = decode_mean(subject.model, paths)
    for name, strip in zip(("Linear", "Spherical (slerp)"), strips):
        st.image(grid_png(strip[None], subject.image_shape), caption=f"{name}: row {first} → row {second}")
    buttons = st.columns(2)
    with buttons[0]:
        download_png("Both strips (PNG)", grid_png(strips, subject.image_shape), f"{subject.name}-interpolation.png",
                     key="interpolation_png")
    with buttons[1]:
        download_csv("Interpolation latents (CSV)",
                     csv_bytes(interpolation_table({"linear": paths[0].numpy(), "spherical": paths[1].numpy()})),
                     f"{subject.name}-interpolation.csv", key="interpolation_csv")
    if len(selection) > 2:
        st.caption(f"Between the first two of the {len(selection)} selected rows.")


def manifold_section(subject: Subject) -> None:
    """The decoded manifold of a 2-D latent plane (other models: offers the 2-D ones)."""
    st.header("Decoded manifold")
    if not require_model(kinds=LATENT_KINDS, min_latent=2, max_latent=2, purpose="The decoded manifold", stop=False):
        return
    grid_controls = st.columns(3)
    with grid_controls[0]:
        size = url_bound(st.slider, "Grid size", key=MANIFOLD_SIZE_KEY, param="grid", default=15, parse=int,
                         valid=lambda s: isinstance(s, int) and 5 <= s <= 25, min_value=5, max_value=25)
    with grid_controls[1]:
        spacing = url_bound(st.radio, "Spacing", key=MANIFOLD_RANGE_KEY, param="grid_range", default="quantiles",
                            valid=lambda r: r in ("quantiles", "uniform"), options=["quantiles", "uniform"],
                            horizontal=True, format_func={"quantiles": "N(0, 1) quantiles", "uniform": "uniform"}.get)
    with grid_controls[2]:
        span = st.slider("Uniform range ±", 0.5, 5.0, 3.0, step=0.5, key=MANIFOLD_SPAN_KEY, disabled=spacing != "uniform")
    plane = manifold_grid(size, span=span if spacing == "uniform" else None)
    png = grid_png(decode_mean(subject.model, plane), subject.image_shape, gutter=0)
    st.image(png, caption="Decoder means over a grid of the latent plane: z0 left → right, "
             "z1 bottom → top, as in the latent-plane plot.")
    download_png("Manifold (PNG)", png, f"{subject.name}-manifold.png", key="manifold_png")

