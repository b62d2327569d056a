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

if __name__ == "__main__":  # a fresh server's first request for /disentanglement runs this file bare
    from pages._common import run_app

    run_app()  # before the imports below: the app's navigation must replace Streamlit's at once

from dataclasses import dataclass
from typing import Any

import numpy as np
import streamlit as st

from pages._common import (
    plain, ERROR_KEY, MODEL_KEY, checkpoint_stamp, current_ref, download_png, load_model, shipped_models, url_bound,
)
from vizvae.checkpoint import Checkpoint, checkpoint_dataset
from vizvae.data.shapes import GroundTruthFactors, ground_truth_factors
from vizvae.errors import VizvaeError
from vizvae.evaluation.disentanglement import (
    ACTIVE_KL_THRESHOLD, Disentanglement, best_factor_per_latent, cached_information, encode_means,
    measure_disentanglement,
)
from vizvae.evaluation.disentanglement_view import (
    against_beta_sentence, central_test_row, code_size, inactive_dimensions, traversal_dimensions,
)
from vizvae.inference.latent import decode_mean, dimensions_by_kl, traversal_latents, traversal_values
from vizvae.models.capabilities import GroupModel
from vizvae.viz.disentanglement import (
    latent_row_labels, metrics_against_beta_figure, metrics_table, mutual_information_heatmap, traversal_gif,
    traversal_png,
)
from vizvae.viz.images import grid_png

DATASET = "shapes"
BASE_KEY = "disentanglement_base"
SPAN_KEY = "disentanglement_span"
INACTIVE_KEY = "disentanglement_inactive"
COLUMNS = 9  # traversal values per row, symmetric around 0
STORED = ("mig", "dci_disentanglement", "dci_completeness", "dci_informativeness", "active_units")


@dataclass(frozen=True)
class TraversalView:
    """Where every traversal on the page starts, how far it moves, and which latents it shows."""

    base_row: int
    span: float
    show_inactive: bool


# -- cached numbers (vizvae computes, the page shows) ---------------------------------------------------
@st.cache_data(show_spinner="Measuring the information each latent carries about each factor…", max_entries=16)
def _information(ref: str, stamp: tuple) -> Disentanglement:
    """Shipped with the shapes models (``python -m vizvae precompute``), else measured once and kept in the
    checkpoint cache."""
    checkpoint = load_model(ref)
    return cached_information(checkpoint.path, checkpoint.model, checkpoint_dataset(checkpoint.config))[0]


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
    return isinstance(load_model(ref).model, GroupModel)


def _label(ref: str) -> str:
    return "UG-VAE" if _grouped(ref) else f"β = {_beta(ref):g}"


def _rows(information: Disentanglement, show_inactive: bool) -> tuple[list[int], list[str]]:
    """Latents to traverse and their labels: the factor each shares the most information with."""
    dims = traversal_dimensions(dimensions_by_kl(information.average_kl), information.average_kl, show_inactive)
    best, value = best_factor_per_latent(information.mig.normalized_mi)
    return dims, latent_row_labels(dims, best, value, information.factor_names, information.average_kl)


def _switch(name: str) -> None:
    st.session_state[MODEL_KEY] = name
    st.session_state.pop(ERROR_KEY, None)


def _describe_row(factors: GroundTruthFactors, row: int) -> str:
    """'ellipse, scale 4.33 px, rotation 36°, x 15 px, y 16 px' for a test row."""
    values = [factors.value_labels(k)[code] for k, code in enumerate(factors.test[row])]
    return ", ".join(value if name == "shape" else f"{name} {value}" for name, value in zip(factors.names, values))


# -- the page -------------------------------------------------------------------------------------------------
def render() -> None:
    st.title("Disentanglement")
    st.caption("Does each latent dimension capture one ground-truth factor of the *shapes* images — shape, scale, "
               "rotation, x, y — and does each factor live in one dimension? (Peis §3.8.1; β-VAE, Higgins et al. 2017: "
               "a larger KL weight β squeezes the code and pushes it towards independent factors.)")
    shapes_models = [info["name"] for info in shipped_models() if info["dataset"] == DATASET]
    ref = shown_model(shapes_models)
    if ref is None:
        return
    checkpoint = load_model(ref)
    dataset = checkpoint_dataset(checkpoint.config)
    factors = ground_truth_factors(dataset)
    metric_tiles(ref, checkpoint, _metrics(ref))
    by_beta = sorted((name for name in shapes_models if not _grouped(name)), key=_beta)
    grouped = [name for name in shapes_models if _grouped(name)]  # UG-VAE: in the table, not on the β axis
    beta_title = "β = " + " / ".join(f"{_beta(name):g}" for name in by_beta) if by_beta else "β"
    traversal_tab, beta_tab, table_tab = st.tabs(["Traversal", beta_title, "All shapes models"])
    image_shape = tuple(dataset.image_shape)
    with traversal_tab:
        view = traversal_controls(dataset.x_test, factors, image_shape)
        traversal_section(ref, checkpoint.name, view, image_shape)
    with beta_tab:
        beta_section(by_beta, view, image_shape)
    with table_tab:
        table_section(by_beta + grouped, grouped, len(factors.train) + len(factors.test))


def shown_model(shapes_models: list[str]) -> str | None:
    """The sidebar's model when it was trained on shapes; else the shapes model with the highest
    stored MIG, with a button per shapes model to select it instead (None: there is none)."""
    ref = current_ref()
    checkpoint = None
    if ref is not None:
        try:
            checkpoint = load_model(ref)
        except VizvaeError:
            checkpoint = None
    if checkpoint is not None and (checkpoint.config.get("dataset") or {}).get("name") == DATASET:
        return ref
    if not shapes_models:
        st.info("No shipped model was trained on shapes. Build them with "
                "`python -m vizvae rebuild --only shapes-vae-b1 shapes-betavae-b4 shapes-betavae-b10`.")
        return None
    fallback = max(shapes_models, key=lambda name: (load_model(name).config.get("evaluation") or {}).get("mig", 0.0))
    note, *buttons = st.columns([5] + [1] * len(shapes_models))
    note.caption(f"The sidebar's model{f' ({plain(checkpoint.name)})' if checkpoint else ''} was not trained on shapes, "
                 f"whose factors are known: showing **{fallback}**. Pick a shapes model:")
    for column, name in zip(buttons, sorted(shapes_models, key=lambda name: (_grouped(name), _beta(name)))):
        column.button(_label(name), key=f"disentanglement_switch_{name}", on_click=_switch, args=(name,),
                      help=f"Select {name} in the sidebar", width="stretch")
    return fallback


def metric_tiles(ref: str, checkpoint: Checkpoint, metrics: dict[str, Any]) -> None:
    tiles = st.columns(6)
    tiles[0].metric("model · β", _label(ref), help=checkpoint.name)
    tiles[1].metric("MIG", f"{metrics['mig']:.3f}", help="Mutual information gap (Chen et al. 2018), 0–1")
    tiles[2].metric("disentanglement", f"{metrics['dci_disentanglement']:.3f}",
                    help="DCI (Eastwood & Williams 2018), 0–1: does each latent matter for one factor only?")
    tiles[3].metric("completeness", f"{metrics['dci_completeness']:.3f}",
                    help="DCI, 0–1: is each factor predicted from one latent only?")
    tiles[4].metric("informativeness", f"{metrics['dci_informativeness']:.3f}",
                    help="DCI: mean test accuracy of per-factor gradient-boosted classifiers on the latents")
    tiles[5].metric("active units", f"{metrics['active_units']} / {code_size(checkpoint.model)}",
                    help=f"Latents whose average KL exceeds {ACTIVE_KL_THRESHOLD} nats")


def traversal_controls(x_test: np.ndarray, factors: GroundTruthFactors, image_shape: tuple[int, ...]) -> TraversalView:
    n_test = len(factors.test)
    controls = st.columns([1, 5, 3, 2])
    with controls[1]:
        base_row = url_bound(st.selectbox, "Start from test image", key=BASE_KEY, param="image",
                             default=central_test_row(factors.test, factors.n_levels), parse=int,
                             valid=lambda i: isinstance(i, int) and 0 <= i < n_test, options=range(n_test),
                             format_func=lambda i: f"#{i}: {_describe_row(factors, i)}",
                             help="Every other latent stays at this image's encoder mean.")
    with controls[0]:
        st.image(grid_png(x_test[base_row][None], image_shape, scale=2), width=64)
    with controls[2]:
        span = url_bound(st.slider, "Range ±", key=SPAN_KEY, param="range", default=2.5, parse=float,
                         valid=lambda s: isinstance(s, float) and 1.0 <= s <= 4.0, format=lambda v: f"{v:g}",
                         min_value=1.0, max_value=4.0, step=0.5, help="Each row sweeps its latent over [−range, +range].")
    with controls[3]:
        show_inactive = st.toggle("Inactive latents", key=INACTIVE_KEY, help="Also show latents with average KL ≤ "
                                  f"{ACTIVE_KL_THRESHOLD} nats (they change nothing).")
    return TraversalView(int(base_row), float(span), show_inactive)


def traversal_section(ref: str, name: str, view: TraversalView, image_shape: tuple[int, ...]) -> None:
    """The model's traversal, and the information behind its labels."""
    information = _information(ref, checkpoint_stamp(ref))
    dims, labels = _rows(information, view.show_inactive)
    values = traversal_values(view.span, COLUMNS).tolist()
    images = _traversal(ref, checkpoint_stamp(ref), view.base_row, view.span, tuple(dims))
    grid = traversal_png(images, image_shape, labels, values)
    left, right = st.columns([5, 4])
    with left:
        st.image(grid, caption="Each row sweeps one latent (by average KL, highest first); its label is the "
                 "factor it shares the most information with and the fraction of that factor's entropy it explains.")
        downloads = st.columns(2)
        with downloads[0]:
            st.download_button("Traversal as animated GIF", traversal_gif(images, image_shape, labels, values),
                               file_name=f"{name}-traversal.gif", mime="image/gif",
                               key="disentanglement_gif", on_click="ignore", icon=":material/gif_box:")
        with downloads[1]:
            download_png("Traversal as PNG", grid, f"{name}-traversal.png", key="disentanglement_png")
    with right:
        order = dimensions_by_kl(information.average_kl)
        st.plotly_chart(mutual_information_heatmap(information.mig.normalized_mi, information.factor_names, order,
                                                   information.mig.per_factor,
                                                   inactive_dimensions(order, information.average_kl),
                                                   title="Mutual information I(z; v) / H(v)"),
                        key="disentanglement_heatmap")
        st.caption("Each cell: the fraction of a factor's entropy that one latent (its encoder mean, in 20 bins) "
                   "explains. Disentangled: one bright cell per row and per column. A row's *gap* between its two "
                   "brightest cells is its MIG; MIG averages the gaps. Grey labels: inactive latents, whose means "
                   "still wiggle a little with the factors; MIG counts them too.")


def beta_section(by_beta: list[str], view: TraversalView, image_shape: tuple[int, ...]) -> None:
    """The same traversal across β, and the metrics against β."""
    if not by_beta:
        st.info("No shipped shapes models to compare.")
        return
    st.caption(f"The same start image (test #{view.base_row}) and range (±{view.span:g}) for every shipped shapes "
               "model; each model's own active latents, labelled by the factor they carry.")
    for name in by_beta:  # one model a row: a third of the page would shrink the row labels past reading
        stamp = checkpoint_stamp(name)
        dims, labels = _rows(_information(name, stamp), view.show_inactive)
        images = _traversal(name, stamp, view.base_row, view.span, tuple(dims))
        metrics = _metrics(name)
        about, picture = st.columns([1, 3], vertical_alignment="center")
        about.markdown(f"**β = {_beta(name):g}**  \nMIG {metrics['mig']:.3f}  \n{metrics['active_units']} active  \n"
                       f"{name}")
        picture.image(traversal_png(images, image_shape, labels, scale=2))
    rows = [_metrics(name) for name in by_beta]
    betas = [_beta(name) for name in by_beta]
    scores = {"MIG": [r["mig"] for r in rows], "DCI disentanglement": [r["dci_disentanglement"] for r in rows],
              "DCI informativeness": [r["dci_informativeness"] for r in rows]}
    st.plotly_chart(metrics_against_beta_figure(betas, scores, title="Disentanglement against β"),
                    key="disentanglement_beta_chart")
    st.caption("A larger β trades reconstruction for a code whose dimensions follow independent factors "
               "(Higgins et al. 2017); Berger Ch. 7 reads β as tempering the observation model. "
               + against_beta_sentence(betas, scores))


def table_section(names: list[str], grouped: list[str], n_images: int) -> None:
    rows = [{"name": name, "beta": None if name in grouped else _beta(name), **_metrics(name)} for name in names]
    st.dataframe(metrics_table(rows), hide_index=True, key="disentanglement_table")
    st.caption(
        f"MIG: mutual information gap on encoder means in 20 equal-width bins, all {n_images:,} images. DCI: one "
        "gradient-boosted classifier per factor fitted on the train split; informativeness is their mean accuracy on "
        f"the test split (1 − Eastwood & Williams' error). Active units: average KL > {ACTIVE_KL_THRESHOLD} nats. "
        "Test ELBO in nats per image. UG-VAE: metrics on its local z (encoder means; KL against N(0, 1)), "
        "traversals decode with β at the mean of q(β | X) of one seeded random test batch. "
        "Reproduce: `python -m vizvae evaluate MODEL --task disentanglement --json`."
    )

