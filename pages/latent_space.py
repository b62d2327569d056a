"""Latent space: where the test set lands (the latent plane itself for 2-D models, or a PCA,
UMAP or t-SNE projection of the encoder means), one point's encoder posterior, traversals,
interpolations and the decoded manifold of a 2-D latent plane.

Widget / session-state keys (used by the tests): ``projection_method``, ``latent_projection``
(the chart), ``latent_selection`` (list of selected row indices, the source of truth),
``latent_points`` (the indices as text), ``latent_focus``, ``traversal_base``,
``traversal_span``, ``traversal_steps``, ``traversal_rows``, ``traversal_dim``,
``traversal_value``, ``interpolation_steps``, ``manifold_size``, ``manifold_range``,
``manifold_span``. URL: ``method``, ``points``, ``base``, ``span``, ``dim``, ``offset``.
"""

from __future__ import annotations

import numpy as np
import streamlit as st
import torch

from pages._common import (
    checkpoint_stamp, current_ref, download_csv, download_png, load_model, parse_indices, remember_in_url,
    require_model, run_through_entrypoint, selection_indices, url_widget_state,
)
from vizvae.checkpoint import checkpoint_dataset
from vizvae.viz import projection as projections
from vizvae.viz.figures import kl_figure, posterior_figure, projection_figure
from vizvae.viz.images import grid_png, paired_rows
from vizvae.viz.latent import (
    EncodedData, decode_mean, dimensions_by_kl, encode_dataset, lerp, manifold_grid, reconstruct, slerp,
    traversal_latents, traversal_values,
)
from vizvae.viz.tables import csv_bytes, interpolation_table, posterior_table, projection_table, traversal_table

run_through_entrypoint()  # before anything is drawn: see its docstring

CHART_KEY = "latent_projection"
METHOD_KEY = "projection_method"
SELECTION_KEY = "latent_selection"
POINTS_KEY = "latent_points"
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
LATENT_KINDS = ("vae", "miwae", "pvae", "hmcvae", "hvae", "hhvae")


@st.cache_data(show_spinner="Encoding the test set…", max_entries=16)
def _encoded(ref: str, stamp: tuple) -> EncodedData:
    checkpoint = load_model(ref)
    return encode_dataset(checkpoint.model, checkpoint_dataset(checkpoint.config).x_test)


@st.cache_data(show_spinner=False, max_entries=16)
def _weights_key(ref: str, stamp: tuple) -> str:
    return projections.weights_digest(load_model(ref).model)


def _projection(checkpoint, ref: str, stamp: tuple, method: str, means: np.ndarray) -> projections.Projection:
    if method == "latent":
        return projections.Projection(means[:, :2].astype(np.float32), "latent")
    if method not in projections.SLOW_METHODS:
        return projections.project(means, method)
    key = _weights_key(ref, stamp)
    folder = projections.cache_folder(checkpoint.path, key)
    if projections.cached_projection_exists(folder, method, key, len(means)):
        return projections.project(means, method, cache_dir=folder, weights_key=key)
    label = projections.LABELS[method]
    with st.status(f"Computing {label} of {len(means):,} encoded test points (once per model)…", expanded=True) as status:
        result = projections.project(means, method, cache_dir=folder, weights_key=key, progress=status.write)
        status.update(label=f"{label} computed in {result.seconds:.1f} s and cached on disk", state="complete",
                      expanded=False)
    return result


def _set_selection(indices: list[int]) -> None:
    st.session_state[SELECTION_KEY] = list(indices)
    st.session_state[POINTS_KEY] = ", ".join(str(i) for i in indices)


def _on_chart_select() -> None:
    _set_selection(selection_indices(st.session_state.get(CHART_KEY)))


def _on_points_typed(n: int) -> None:
    _set_selection(parse_indices(st.session_state.get(POINTS_KEY) or "", n))


# -- the model and its encoded test set -------------------------------------------------------
checkpoint = require_model(kinds=LATENT_KINDS, data_kinds=("image",), purpose="The latent-space page")
ref = current_ref()
stamp = checkpoint_stamp(ref)
model = checkpoint.model
latent_dim = model.latent_dim
dataset = checkpoint_dataset(checkpoint.config)
image_shape = tuple(dataset.image_shape)
encoded = _encoded(ref, stamp)
means, stds = encoded.mean, encoded.std
n = len(means)
if dataset.y_test is not None and dataset.target is not None:
    label_codes = dataset.y_test.astype(int)
    label_names = [f"{c:g}" for c in dataset.target.categories]
    point_labels = [label_names[c] for c in label_codes]
else:
    label_codes, label_names, point_labels = None, None, None

st.title("Latent space")
st.caption(f"**{checkpoint.name}**: {latent_dim}-D latent, {n:,} test images of {dataset.name}."
           + (f" The latent is the ε-space of all {len(model.latent_dims)} layers ({' + '.join(map(str, model.latent_dims))})."
              if len(model.latent_dims) > 1 else ""))

if SELECTION_KEY not in st.session_state:
    _set_selection(parse_indices(st.query_params.get("points", ""), n))
selection = [i for i in st.session_state[SELECTION_KEY] if 0 <= i < n]
if POINTS_KEY not in st.session_state:
    st.session_state[POINTS_KEY] = ", ".join(map(str, selection))

# -- 1. projection ------------------------------------------------------------------------------
st.header("Encoded test set")
methods = (["latent"] if latent_dim == 2 else []) + list(projections.METHODS)
url_widget_state(METHOD_KEY, "method", methods[0], valid=lambda m: m in methods)
method = st.radio("Projection", methods, key=METHOD_KEY, format_func=METHOD_LABELS.get, horizontal=True,
                  help="UMAP and t-SNE take a while the first time; they are then cached on disk.")
remember_in_url(METHOD_KEY, "method")
result = _projection(checkpoint, ref, stamp, method, means)
if method == "latent":
    axes = ("z0", "z1")
elif method == "pca":
    ratio = result.explained_variance_ratio
    axes = (f"PC1 ({ratio[0]:.0%} of variance)", f"PC2 ({ratio[1]:.0%})")
else:
    axes = (f"{METHOD_LABELS[method]} 1", f"{METHOD_LABELS[method]} 2")
figure = projection_figure(result.coords, label_codes, label_names, selected=selection, axis_titles=axes)
st.plotly_chart(figure, key=CHART_KEY, on_select=_on_chart_select, selection_mode=("points", "box", "lasso"))
how = "read from the disk cache" if result.from_cache else "computed"
st.caption(f"Encoder means, coloured by label; {METHOD_LABELS[method]} {how} in {result.seconds * 1000:.0f} ms. "
           "Click a point or draw a box or lasso to select; the camera icon saves a PNG.")
columns = st.columns([3, 1])
columns[0].text_input("Selected test rows", key=POINTS_KEY, on_change=_on_points_typed, args=(n,),
                      help="Row indices of the test set, e.g. 3, 17. The selection in the plot writes here too.")
with columns[1]:
    download_csv("Coordinates (CSV)", csv_bytes(projection_table(result.coords, point_labels, method)),
                 f"{checkpoint.name}-{method}.csv", key="projection_csv")
st.query_params["points"] = ",".join(map(str, selection))
if not selection:
    st.query_params.pop("points", None)

# -- 2. the selected points ----------------------------------------------------------------------
st.header("Selected points")
if selection:
    shown = selection[:SHOWN_SELECTED]
    originals = dataset.x_test[shown]
    pairs = grid_png(paired_rows(originals, reconstruct(model, originals), columns=len(shown)), image_shape, scale=3)
    left, right = st.columns([2, 3])
    with left:
        st.image(pairs, caption=f"rows {', '.join(map(str, shown))}: originals above reconstructions"
                 + (f" (first {SHOWN_SELECTED} of {len(selection)})" if len(selection) > SHOWN_SELECTED else ""))
        download_png("Originals and reconstructions (PNG)", pairs, f"{checkpoint.name}-selected.png",
                     key="selected_png")
    with right:
        if len(selection) > 1:
            if st.session_state.get(FOCUS_KEY) not in selection:
                st.session_state[FOCUS_KEY] = selection[0]
            focus = st.selectbox("Posterior of row", selection, key=FOCUS_KEY)
        else:
            focus = selection[0]
        label = f", label {point_labels[focus]}" if point_labels else ""
        st.plotly_chart(posterior_figure(means[focus], stds[focus], title=f"q(z | x) of test row {focus}{label}"),
                        key="posterior_chart")
        st.caption("Encoder mean ± one standard deviation per latent dimension; dotted: the prior's ±1.")
        download_csv("Encoder mean and std (CSV)", csv_bytes(posterior_table(selection, means[selection], stds[selection])),
                     f"{checkpoint.name}-posterior.csv", key="posterior_csv")
else:
    st.info("Select a point in the plot above (or type row indices) to see it, its reconstruction and its "
            "encoder posterior.")

# -- 3. traversals -------------------------------------------------------------------------------
st.header("Traversals")
average_kl = encoded.average_kl
order = dimensions_by_kl(average_kl)
controls = st.columns(4)
bases = ["selected", "origin"]
url_widget_state(BASE_KEY, "base", "selected", valid=lambda b: b in bases)
with controls[0]:
    base_choice = st.radio("Around", bases, key=BASE_KEY, horizontal=True,
                           format_func=lambda b: f"selected row {selection[0]}" if b == "selected" and selection
                           else ("selected point" if b == "selected" else "origin"))
url_widget_state(SPAN_KEY, "span", 3.0, parse=float, valid=lambda s: isinstance(s, float) and 0.5 <= s <= 5.0)
with controls[1]:
    span = st.slider("Range ±", 0.5, 5.0, key=SPAN_KEY, step=0.5, help="How far each dimension moves from the base.")
url_widget_state(STEPS_KEY, "steps", 10, parse=int, valid=lambda s: isinstance(s, int) and 3 <= s <= 15)
with controls[2]:
    steps = st.slider("Columns", 3, 15, key=STEPS_KEY)
with controls[3]:
    if latent_dim > 1:
        url_widget_state(ROWS_KEY, "rows", min(10, latent_dim), parse=int,
                         valid=lambda r: isinstance(r, int) and 1 <= r <= latent_dim)
        rows = st.slider("Rows (dimensions)", 1, latent_dim, key=ROWS_KEY)
    else:
        rows = 1
for key, param in ((BASE_KEY, "base"), (SPAN_KEY, "span"), (STEPS_KEY, "steps"), (ROWS_KEY, "rows")):
    if key in st.session_state:
        remember_in_url(key, param)

if base_choice == "selected" and selection:
    base_z, base_name = means[selection[0]], f"the encoder mean of row {selection[0]}"
else:
    base_z, base_name = np.zeros(latent_dim, dtype=np.float32), "the origin"
    if base_choice == "selected":
        st.caption("No point selected: traversing around the origin.")
dims = order[:rows]
offsets = traversal_values(span, steps)
base_tensor = torch.as_tensor(base_z)
traversal = traversal_latents(base_tensor, dims, base_tensor[dims][:, None] + offsets)  # (rows, steps, latent)
traversal_images = decode_mean(model, traversal)
traversal_png = grid_png(traversal_images, image_shape)
left, right = st.columns([3, 2])
with left:
    st.image(traversal_png, caption=f"Each row moves one dimension by −{span:g} … +{span:g} around {base_name}; "
             "rows by average KL, highest first: " + ", ".join(f"z{d}" for d in dims))
    buttons = st.columns(2)
    with buttons[0]:
        download_png("Traversal grid (PNG)", traversal_png, f"{checkpoint.name}-traversal.png", key="traversal_png")
    with buttons[1]:
        download_csv("Traversal latents (CSV)", csv_bytes(traversal_table(traversal.numpy(), dims)),
                     f"{checkpoint.name}-traversal.csv", key="traversal_csv")
with right:
    st.plotly_chart(kl_figure(average_kl), key="kl_chart")
    st.caption("Average KL(q(z_j | x) ‖ N(0, 1)) over the test set: dimensions near 0 are unused by the decoder.")

st.subheader("One dimension")
url_widget_state(DIM_KEY, "dim", order[0], parse=int, valid=lambda d: isinstance(d, int) and 0 <= d < latent_dim)
url_widget_state(VALUE_KEY, "offset", 0.0, parse=float, valid=lambda v: isinstance(v, float) and -span <= v <= span)
one = st.columns([1, 2, 1])
with one[0]:
    dim = st.selectbox("Dimension", order, key=DIM_KEY, format_func=lambda d: f"z{d} (KL {average_kl[d]:.2f})")
with one[1]:
    offset = st.slider(f"z{dim} − base", -span, span, key=VALUE_KEY, step=span / 20,
                       help="Moves the chosen dimension away from the base point; the image is re-decoded.")
remember_in_url(DIM_KEY, "dim")
remember_in_url(VALUE_KEY, "offset", format=lambda v: f"{v:g}")
z = base_z.astype(np.float32).copy()
z[dim] += offset
single = grid_png(decode_mean(model, torch.as_tensor(z)[None]), image_shape, scale=5, gutter=0)
with one[2]:
    st.image(single, caption=f"z{dim} = {z[dim]:.2f}")
    download_png("PNG", single, f"{checkpoint.name}-z{dim}.png", key="traversal_value_png")

# -- 4. interpolation ----------------------------------------------------------------------------
st.header("Interpolation")
if len(selection) >= 2:
    first, second = selection[0], selection[1]
    url_widget_state(INTERPOLATION_STEPS_KEY, "isteps", 10, parse=int, valid=lambda s: isinstance(s, int) and 3 <= s <= 16)
    steps = st.slider("Steps", 3, 16, key=INTERPOLATION_STEPS_KEY)
    remember_in_url(INTERPOLATION_STEPS_KEY, "isteps")
    z0, z1 = torch.as_tensor(means[first]), torch.as_tensor(means[second])
    paths = torch.stack([lerp(z0, z1, steps), slerp(z0, z1, steps)])  # (2, steps, latent)
    strips = decode_mean(model, paths)
    for name, strip in zip(("Linear", "Spherical (slerp)"), strips):
        st.image(grid_png(strip[None], image_shape), caption=f"{name}: row {first} → row {second}")
    buttons = st.columns(2)
    with buttons[0]:
        download_png("Both strips (PNG)", grid_png(strips, image_shape), f"{checkpoint.name}-interpolation.png",
                     key="interpolation_png")
    with buttons[1]:
        download_csv("Interpolation latents (CSV)",
                     csv_bytes(interpolation_table({"linear": paths[0].numpy(), "spherical": paths[1].numpy()})),
                     f"{checkpoint.name}-interpolation.csv", key="interpolation_csv")
    if len(selection) > 2:
        st.caption(f"Between the first two of the {len(selection)} selected rows.")
else:
    st.info("Select two points (shift-click, a box or a lasso, or type two row indices) to interpolate "
            "between their encoder means.")

# -- 5. the decoded manifold (2-D latents) -------------------------------------------------------------
st.header("Decoded manifold")
if require_model(kinds=LATENT_KINDS, min_latent=2, max_latent=2, purpose="The decoded manifold", stop=False):
    grid_controls = st.columns(3)
    with grid_controls[0]:
        url_widget_state(MANIFOLD_SIZE_KEY, "grid", 15, parse=int, valid=lambda s: isinstance(s, int) and 5 <= s <= 25)
        size = st.slider("Grid size", 5, 25, key=MANIFOLD_SIZE_KEY)
    with grid_controls[1]:
        ranges = ["quantiles", "uniform"]
        url_widget_state(MANIFOLD_RANGE_KEY, "grid_range", "quantiles", valid=lambda r: r in ranges)
        spacing = st.radio("Spacing", ranges, key=MANIFOLD_RANGE_KEY, horizontal=True,
                           format_func={"quantiles": "N(0, 1) quantiles", "uniform": "uniform"}.get)
    with grid_controls[2]:
        manifold_span = st.slider("Uniform range ±", 0.5, 5.0, 3.0, step=0.5, key=MANIFOLD_SPAN_KEY,
                                  disabled=spacing != "uniform")
    for key, param in ((MANIFOLD_SIZE_KEY, "grid"), (MANIFOLD_RANGE_KEY, "grid_range")):
        remember_in_url(key, param)
    plane = manifold_grid(size, span=manifold_span if spacing == "uniform" else None)
    manifold_png = grid_png(decode_mean(model, plane), image_shape, gutter=0)
    st.image(manifold_png, caption="Decoder means over a grid of the latent plane: z0 left → right, "
             "z1 bottom → top, as in the latent-plane plot.")
    download_png("Manifold (PNG)", manifold_png, f"{checkpoint.name}-manifold.png", key="manifold_png")
