"""Disentanglement: a demo for colleagues on the ``shapes`` data set, whose generative factors
(shape, scale, rotation, x, y) are known. One traversal per latent, each row labelled with the
factor it carries; the factor × latent mutual information behind those labels; the same
traversal for β = 1, 4, 10 side by side with MIG against β; the metrics of every shipped shapes
model; the traversal as an animated GIF or a PNG.

The model is the sidebar's when it was trained on shapes; otherwise the page shows the shipped
shapes model with the highest MIG and offers to switch. Metrics come from the checkpoints'
config.json ``evaluation`` (written by ``python -m vizvae evaluate MODEL --task disentanglement
-o save=1``) and are computed here, once, only for models without them.

Widget / session-state keys (used by the tests): ``disentanglement_base`` (test row the traversals
start from), ``disentanglement_span``, ``disentanglement_inactive``; downloads
``disentanglement_gif``, ``disentanglement_png``. URL: ``image``, ``range``.
"""

from __future__ import annotations

import numpy as np
import streamlit as st

from pages._common import (
    ERROR_KEY, MODEL_KEY, checkpoint_stamp, current_ref, download_png, load_model, remember_in_url,
    run_through_entrypoint, shipped_models, url_widget_state,
)
from vizvae.checkpoint import checkpoint_dataset
from vizvae.data.shapes import ground_truth_factors
from vizvae.errors import VizvaeError
from vizvae.evaluation.disentanglement import (
    ACTIVE_KL_THRESHOLD, Disentanglement, best_factor_per_latent, encode_means, measure_disentanglement,
)
from vizvae.viz.disentanglement import (
    latent_row_labels, metrics_against_beta_figure, metrics_table, mutual_information_heatmap, traversal_gif,
    traversal_png,
)
from vizvae.viz.images import grid_png
from vizvae.viz.latent import decode_mean, dimensions_by_kl, traversal_latents, traversal_values

run_through_entrypoint()  # before anything is drawn: see its docstring

DATASET = "shapes"
BASE_KEY = "disentanglement_base"
SPAN_KEY = "disentanglement_span"
INACTIVE_KEY = "disentanglement_inactive"
COLUMNS = 9  # traversal values per row, symmetric around 0
STORED = ("mig", "dci_disentanglement", "dci_completeness", "dci_informativeness", "active_units")


# -- cached numbers (vizvae computes, the page shows) ---------------------------------------------------
@st.cache_data(show_spinner="Measuring the information each latent carries about each factor…", max_entries=16)
def _information(ref: str, stamp: tuple) -> Disentanglement:
    checkpoint = load_model(ref)
    return measure_disentanglement(checkpoint.model, checkpoint_dataset(checkpoint.config), with_dci=False)


@st.cache_data(show_spinner="Computing MIG, DCI and active units (not stored in this checkpoint)…", max_entries=16)
def _computed_metrics(ref: str, stamp: tuple) -> dict:
    checkpoint = load_model(ref)
    return measure_disentanglement(checkpoint.model, checkpoint_dataset(checkpoint.config)).summary()


def _metrics(ref: str) -> dict:
    """Stored metrics when config.json has them all, else computed (and cached)."""
    checkpoint = load_model(ref)
    evaluation = dict(checkpoint.config.get("evaluation") or {})
    if not all(key in evaluation for key in STORED):
        evaluation.update(_computed_metrics(ref, checkpoint_stamp(ref)))
    return evaluation


@st.cache_data(show_spinner=False, max_entries=64)
def _traversal(ref: str, stamp: tuple, base_row: int, span: float, dims: tuple[int, ...]) -> np.ndarray:
    """Decoded traversal (rows, COLUMNS, features): row r sets z_dims[r] to each value in
    [−span, span], every other dimension at the encoder mean of test row ``base_row``."""
    import torch

    checkpoint = load_model(ref)
    dataset = checkpoint_dataset(checkpoint.config)
    base, _ = encode_means(checkpoint.model, dataset.x_test[base_row:base_row + 1])
    latents = traversal_latents(torch.as_tensor(base[0]), list(dims), traversal_values(span, COLUMNS))
    if _grouped(ref):  # UG-VAE: traverse the local z; β fixed at the mean of q(β | X) of one seeded test batch
        from vizvae.inference.global_local import decode_with_global, random_batch_centre

        beta = random_batch_centre(checkpoint.model, dataset.x_test, n_batches=1, seed=0)
        return decode_with_global(checkpoint.model, latents, beta[None].expand(len(latents), -1))
    return decode_mean(checkpoint.model, latents)


def _beta(ref: str) -> float:
    return float(load_model(ref).config.get("config", {}).get("beta", 1.0))


def _grouped(ref: str) -> bool:
    """A model with a global latent β (UG-VAE): no KL weight β, so not on the β axis."""
    return getattr(load_model(ref).model, "global_dim", 0) > 0


def _label(ref: str) -> str:
    return "UG-VAE" if _grouped(ref) else f"β = {_beta(ref):g}"


def _rows(information: Disentanglement, show_inactive: bool) -> tuple[list[int], list[str]]:
    """Latents to traverse (by average KL, highest first; inactive ones only on request) and
    their labels: the factor each shares the most information with."""
    order = dimensions_by_kl(information.average_kl)
    active = [j for j in order if information.average_kl[j] > ACTIVE_KL_THRESHOLD]
    dims = order if show_inactive or not active else active
    best, value = best_factor_per_latent(information.mig.normalized_mi)
    return dims, latent_row_labels(dims, best, value, information.factor_names, information.average_kl)


def _switch(name: str) -> None:
    st.session_state[MODEL_KEY] = name
    st.session_state.pop(ERROR_KEY, None)


def _describe_row(factors, row: int) -> str:
    """'ellipse, scale 4.33 px, rotation 36°, x 15 px, y 16 px' for a test row."""
    values = [factors.value_labels(k)[code] for k, code in enumerate(factors.test[row])]
    return ", ".join(value if name == "shape" else f"{name} {value}" for name, value in zip(factors.names, values))


def _default_base(factors) -> int:
    """A test image near the middle of the grid (medium size, central), so traversals have
    room to move it in every direction."""
    levels = np.array(factors.n_levels, dtype=float)
    distance = np.abs(factors.test[:, 1:] - (levels[1:] - 1) / 2) / levels[1:]
    distance[:, 1] = 0.0  # any rotation
    return int(np.argmin(distance.sum(axis=1) + 0.01 * (factors.test[:, 0] != 1)))  # prefer an ellipse


# -- which model ---------------------------------------------------------------------------------------------
st.title("Disentanglement")
st.caption("Does each latent dimension capture one ground-truth factor of the *shapes* images — shape, scale, "
           "rotation, x, y — and does each factor live in one dimension? (Peis §3.8.1; β-VAE, Higgins et al. 2017: "
           "a larger KL weight β squeezes the code and pushes it towards independent factors.)")

shapes_models = [info["name"] for info in shipped_models() if info["dataset"] == DATASET]
ref = current_ref()
checkpoint = None
if ref is not None:
    try:
        checkpoint = load_model(ref)
    except VizvaeError:
        checkpoint = None
if checkpoint is None or (checkpoint.config.get("dataset") or {}).get("name") != DATASET:
    if not shapes_models:
        st.info("No shipped model was trained on shapes. Build them with "
                "`python -m vizvae rebuild --only shapes-vae-b1 shapes-betavae-b4 shapes-betavae-b10`.")
        st.stop()
    fallback = max(shapes_models, key=lambda name: (load_model(name).config.get("evaluation") or {}).get("mig", 0.0))
    note, *buttons = st.columns([5] + [1] * len(shapes_models))
    note.caption(f"The sidebar's model{f' ({checkpoint.name})' if checkpoint else ''} was not trained on shapes, "
                 f"whose factors are known: showing **{fallback}**. Pick a shapes model:")
    for column, name in zip(buttons, sorted(shapes_models, key=lambda name: (_grouped(name), _beta(name)))):
        column.button(_label(name), key=f"disentanglement_switch_{name}", on_click=_switch, args=(name,),
                      help=f"Select {name} in the sidebar", width="stretch")
    ref = fallback
    checkpoint = load_model(ref)

stamp = checkpoint_stamp(ref)
dataset = checkpoint_dataset(checkpoint.config)
factors = ground_truth_factors(dataset)
image_shape = tuple(dataset.image_shape)
information = _information(ref, stamp)
metrics = _metrics(ref)

tiles = st.columns(6)
tiles[0].metric("model · β", _label(ref), help=checkpoint.name)
tiles[1].metric("MIG", f"{metrics['mig']:.3f}", help="Mutual information gap (Chen et al. 2018), 0–1")
tiles[2].metric("disentanglement", f"{metrics['dci_disentanglement']:.3f}",
                help="DCI (Eastwood & Williams 2018), 0–1: does each latent matter for one factor only?")
tiles[3].metric("completeness", f"{metrics['dci_completeness']:.3f}",
                help="DCI, 0–1: is each factor predicted from one latent only?")
tiles[4].metric("informativeness", f"{metrics['dci_informativeness']:.3f}",
                help="DCI: mean test accuracy of per-factor gradient-boosted classifiers on the latents")
tiles[5].metric("active units", f"{metrics['active_units']} / {getattr(checkpoint.model, 'local_dim', checkpoint.model.latent_dim)}",
                help=f"Latents whose average KL exceeds {ACTIVE_KL_THRESHOLD} nats")

by_beta = sorted((name for name in shapes_models if not _grouped(name)), key=_beta)
grouped = [name for name in shapes_models if _grouped(name)]  # UG-VAE: in the table, not on the β axis
beta_title = "β = " + " / ".join(f"{_beta(name):g}" for name in by_beta) if by_beta else "β"
traversal_tab, beta_tab, table_tab = st.tabs(["Traversal", beta_title, "All shapes models"])

# -- 1. traversal and the information behind its labels -------------------------------------------------------
with traversal_tab:
    n_test = len(factors.test)
    url_widget_state(BASE_KEY, "image", _default_base(factors), parse=int,
                     valid=lambda i: isinstance(i, int) and 0 <= i < n_test)
    url_widget_state(SPAN_KEY, "range", 2.5, parse=float, valid=lambda s: isinstance(s, float) and 1.0 <= s <= 4.0)
    controls = st.columns([1, 5, 3, 2])
    base_row = int(st.session_state[BASE_KEY])
    with controls[1]:
        base_row = st.selectbox("Start from test image", range(n_test), key=BASE_KEY,
                                format_func=lambda i: f"#{i}: {_describe_row(factors, i)}",
                                help="Every other latent stays at this image's encoder mean.")
    with controls[0]:
        st.image(grid_png(dataset.x_test[base_row][None], image_shape, scale=2), width=64)
    with controls[2]:
        span = st.slider("Range ±", 1.0, 4.0, key=SPAN_KEY, step=0.5,
                         help="Each row sweeps its latent over [−range, +range].")
    with controls[3]:
        show_inactive = st.toggle("Inactive latents", key=INACTIVE_KEY, help="Also show latents with average KL ≤ "
                                  f"{ACTIVE_KL_THRESHOLD} nats (they change nothing).")
    remember_in_url(BASE_KEY, "image")
    remember_in_url(SPAN_KEY, "range", format=lambda v: f"{v:g}")

    dims, labels = _rows(information, show_inactive)
    values = traversal_values(span, COLUMNS).tolist()
    images = _traversal(ref, stamp, base_row, float(span), tuple(dims))
    traversal_grid = traversal_png(images, image_shape, labels, values)
    left, right = st.columns([5, 4])
    with left:
        st.image(traversal_grid, caption="Each row sweeps one latent (by average KL, highest first); its label is the "
                 "factor it shares the most information with and the fraction of that factor's entropy it explains.")
        downloads = st.columns(2)
        with downloads[0]:
            st.download_button("Traversal as animated GIF", traversal_gif(images, image_shape, labels, values),
                               file_name=f"{checkpoint.name}-traversal.gif", mime="image/gif",
                               key="disentanglement_gif", on_click="ignore", icon=":material/gif_box:")
        with downloads[1]:
            download_png("Traversal as PNG", traversal_grid, f"{checkpoint.name}-traversal.png",
                         key="disentanglement_png")
    with right:
        order = dimensions_by_kl(information.average_kl)
        inactive = [j for j in order if information.average_kl[j] <= ACTIVE_KL_THRESHOLD]
        st.plotly_chart(mutual_information_heatmap(information.mig.normalized_mi, information.factor_names, order,
                                                   information.mig.per_factor, inactive,
                                                   title="Mutual information I(z; v) / H(v)"),
                        key="disentanglement_heatmap")
        st.caption("Each cell: the fraction of a factor's entropy that one latent (its encoder mean, in 20 bins) "
                   "explains. Disentangled: one bright cell per row and per column. A row's *gap* between its two "
                   "brightest cells is its MIG; MIG averages the gaps. Grey labels: inactive latents, whose means "
                   "still wiggle a little with the factors; MIG counts them too.")

# -- 2. the same traversal across β -------------------------------------------------------------------------------
with beta_tab:
    if by_beta:
        st.caption(f"The same start image (test #{base_row}) and range (±{span:g}) for every shipped shapes model; "
                   "each model's own active latents, labelled by the factor they carry.")
        for column, name in zip(st.columns(len(by_beta)), by_beta):
            name_stamp = checkpoint_stamp(name)
            model_information = _information(name, name_stamp)
            model_dims, model_labels = _rows(model_information, show_inactive)
            model_images = _traversal(name, name_stamp, base_row, float(span), tuple(model_dims))
            model_metrics = _metrics(name)
            with column:
                st.markdown(f"**β = {_beta(name):g}** · MIG {model_metrics['mig']:.3f} · "
                            f"{model_metrics['active_units']} active")
                st.image(traversal_png(model_images, image_shape, model_labels, scale=2), caption=name)
        betas = [_beta(name) for name in by_beta]
        rows = [_metrics(name) for name in by_beta]
        st.plotly_chart(metrics_against_beta_figure(betas, {
            "MIG": [r["mig"] for r in rows],
            "DCI disentanglement": [r["dci_disentanglement"] for r in rows],
            "DCI informativeness": [r["dci_informativeness"] for r in rows],
        }, title="Disentanglement against β"), key="disentanglement_beta_chart")
        st.caption("A larger β trades reconstruction for a code whose dimensions follow independent factors "
                   "(Higgins et al. 2017); Berger Ch. 7 reads β as tempering the observation model. Past some β the "
                   "model stops encoding the subtle factors (rotation, then shape) and informativeness drops.")
    else:
        st.info("No shipped shapes models to compare.")

# -- 3. all shapes models -----------------------------------------------------------------------------------------
with table_tab:
    rows = [{"name": name, "beta": None if name in grouped else _beta(name), **_metrics(name)}
            for name in by_beta + grouped]
    st.dataframe(metrics_table(rows), hide_index=True, key="disentanglement_table")
    st.caption(
        f"MIG: mutual information gap on encoder means in 20 equal-width bins, all {len(factors.train) + n_test:,} "
        "images. DCI: one "
        "gradient-boosted classifier per factor fitted on the train split; informativeness is their mean accuracy on "
        f"the test split (1 − Eastwood & Williams' error). Active units: average KL > {ACTIVE_KL_THRESHOLD} nats. "
        "Test ELBO in nats per image. UG-VAE: metrics on its local z (encoder means; KL against N(0, 1)), "
        "traversals decode with β at the mean of q(β | X) of one seeded random test batch. "
        "Reproduce: `python -m vizvae evaluate MODEL --task disentanglement --json`."
    )
