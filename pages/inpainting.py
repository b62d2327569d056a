"""Inpainting: hide part of an image, let each method (or model) fill it in, and compare them side by
side as in the thesis' Fig. 5.6 — mean imputation, samples, per-pixel uncertainty, the NLL of the
hidden pixels, the MSE, the predicted label and the runtime (Mattei's slides: pseudo-Gibbs,
Metropolis-within-Gibbs, importance sampling).

Widget / session-state keys (used by the tests): ``inpaint_source``, ``inpaint_image``,
``inpaint_upload``, ``inpaint_invert``, ``inpaint_draw_canvas``, ``inpaint_draw_mode``,
``inpaint_draw_thick``, ``inpaint_draw_clear``, ``inpaint_draw_from_test``, ``inpaint_mask``,
``inpaint_hole_size``, ``inpaint_hole_top``, ``inpaint_hole_left``, ``inpaint_half``, ``inpaint_rate``,
``inpaint_mask_seed``, ``inpaint_mask_canvas``, ``inpaint_paint_mode``, ``inpaint_hide_all``,
``inpaint_reveal_all``, ``inpaint_methods``, ``inpaint_models``, ``inpaint_fig56``, ``inpaint_samples``,
``inpaint_iterations``, ``inpaint_proposals``, ``inpaint_seed``, ``inpaint_run``, ``inpaint_auto``,
``inpaint_show``; while a run is in progress the container ``inpaint_progress`` holds its bar and the
button ``inpaint_cancel`` (after a cancel: ``inpaint_cancelled``, ``inpaint_again``). Result rows are
containers ``inpaint_row_0``, ``inpaint_row_1``, ...; charts:
``inpaint_labels``. URL: ``source``, ``image``, ``mask``, ``size``, ``top``, ``left``, ``half``, ``rate``,
``mseed``, ``methods``, ``models``, ``samples``, ``iters``, ``props``, ``seed``; with ``source=atlas``, ``data`` and
``item`` name an item of the Latent atlas.
"""

from __future__ import annotations

if __name__ == "__main__":  # a fresh server's first request for /inpainting runs this file bare
    from pages._common import run_app

    run_app()  # before the imports below: the app's navigation must replace Streamlit's at once

from typing import Any, Callable

import numpy as np
import streamlit as st

from pages._common import (
    plain, background_task, checkpoint_stamp, current_ref, download_csv, download_png, job_runner, load_model,
    once_per_upload, require_model, restart_task, selection_indices, shipped_models, url_bound, url_value,
)
from vizvae.checkpoint import Checkpoint, checkpoint_dataset
from vizvae.data.user import image_from_upload
from vizvae.errors import VizvaeError
from vizvae.jobs import format_duration
from vizvae.evaluation import inpainting_store
from vizvae.inference import atlas
from vizvae.evaluation.inpainting_view import (
    SHOWN, InpaintingMask, InpaintingResult, centred_square, inpaint_rows, inpainting_work_units, thick_brush,
    uncertainty_vmax,
)
from vizvae.inference.imputers import (
    METHODS, ImputationSettings, native_method, supported_methods, trust_warning,
)
from vizvae.viz.inpainting import (
    InpaintingRow, inpainting_figure_png, label_probabilities_figure, observed_rgb, pixel_canvas_figure, rgb_png,
    scores_table, strip_png, to_rgb, uncertainty_legend_png, uncertainty_rgb,
)
from vizvae.server import data_dirs
from vizvae.viz.tables import csv_bytes

INPAINT_KINDS = ("vae", "pvae", "hvae", "miwae", "hmcvae", "hhvae", "exported", "adapter")  # one latent space that encodes masked images
SOURCES = {"test": "Test image", "upload": "Upload", "draw": "Draw", "atlas": "Atlas item"}
MASK_KINDS = {"square": "square hole", "half": "half", "mcar": "random pixels (MCAR)", "paint": "painted by hand"}
HALVES = ("top", "bottom", "left", "right")
SAMPLE_COUNTS = (8, 16, 32, 64, 128)
ITERATION_COUNTS = (10, 20, 50, 100, 200, 500)
PROPOSAL_COUNTS = (100, 500, 1000, 2000, 5000)
DEFAULT_METHODS = list(inpainting_store.DEFAULT_VIEW["methods"])
DEFAULTS = inpainting_store.DEFAULT_VIEW["settings"]  # the first view, as shipped
FIG56_MODELS = ("mnist-pvae", "mnist-hvae", "mnist-hmcvae", "mnist-hhvae")  # VAE, H-VAE, HMC-VAE, HH-VAE
DRAWING_KEY, PAINTED_KEY, ARMED_KEY = "_inpaint_drawing", "_inpaint_painted", "_inpaint_armed"
RUN_REQUEST_KEY = "_inpaint_run_requested"
UPLOAD_KEY = "_inpaint_upload_decoded"  # pages._common.once_per_upload
JOB = "inpaint"  # the background task of a run
ROW_WIDTHS = [1.5, 1, 4.2, 1, 2.3]
CANVAS_CONFIG = {"displaylogo": False, "modeBarButtonsToRemove": ["toImage"]}
METHOD_HELP = (
    "Zero and mean fill: baselines that ignore the model. Gaussian encoder: z ~ q(z | x_O), decoded once. "
    "HMC: chains on p(z | x_O) from the encoder (trained step sizes for HMC models). Pseudo-Gibbs: alternate "
    "encoder and decoder draws — **biased** unless the encoder is the exact posterior (on a factor-analysis "
    "model with a wrong encoder it settles tens of standard errors away from the exact conditional). "
    "Metropolis-within-Gibbs: the same draws with an accept/reject step, exact for any encoder. "
    "SIR: encoder draws importance-weighted by p(x_O | z) p(z) / q(z | x_O).")


def _in_range(low: int, high: int) -> Callable[[Any], bool]:
    return lambda value: isinstance(value, int) and low <= value <= high


def _names(text: str) -> list[str]:
    return [name for name in text.split(",") if name]


# -- cached numbers ------------------------------------------------------------------------------------------
@st.cache_data(show_spinner=False, max_entries=8)
def _feature_mean(ref: str, stamp: tuple) -> np.ndarray:
    return checkpoint_dataset(load_model(ref).config).x_train.mean(0)


@st.cache_resource(show_spinner=False)
def _digit_classifier():
    """The shipped MNIST digit classifier, for the labels of models without a predictor (None if absent)."""
    from vizvae.evaluation.classifier import default_classifier_folder, load_classifier

    try:
        return load_classifier(default_classifier_folder())
    except VizvaeError:
        return None


# -- callbacks ------------------------------------------------------------------------------------------------
def _draw_selected(hw: tuple[int, int]) -> None:
    """Selection on the drawing canvas: paint (1) or erase (0) the selected pixels."""
    indices = selection_indices(st.session_state.get("inpaint_draw_canvas"))
    if not indices:
        return
    if st.session_state.get("inpaint_draw_thick", True):
        indices = thick_brush(indices, hw)
    drawing = st.session_state[DRAWING_KEY].copy()
    drawing[indices] = 1.0 if st.session_state.get("inpaint_draw_mode", "Paint") == "Paint" else 0.0
    st.session_state[DRAWING_KEY] = drawing


def _paint_selected() -> None:
    """Selection on the mask canvas: hide or reveal the selected pixels."""
    indices = selection_indices(st.session_state.get("inpaint_mask_canvas"))
    if not indices:
        return
    painted = st.session_state[PAINTED_KEY].copy()
    painted[indices] = st.session_state.get("inpaint_paint_mode", "Hide") == "Reveal"
    st.session_state[PAINTED_KEY] = painted


def _set_state(key: str, value: Any) -> None:
    st.session_state[key] = value


def _fig56(ref: str) -> None:
    available = {info["name"] for info in shipped_models()}
    st.session_state["inpaint_models"] = [name for name in FIG56_MODELS if name in available and name != ref]
    st.session_state["inpaint_methods"] = [native_method(load_model(ref).model)]


def _arm() -> None:
    st.session_state[RUN_REQUEST_KEY] = True
    restart_task(JOB)  # Run after a cancel runs again


def inpainting_caps(methods: list[str], imputation: ImputationSettings) -> dict[str, int]:
    """The compute caps a run of ``methods`` is held to: samples always, SIR's proposals only with SIR,
    and HMC's chains × transitions only with HMC (counting the warm-up an untrained sampler runs first: an
    upper bound for a model with trained HMC)."""
    caps = {"samples": imputation.n_samples}
    if "sir" in methods:
        caps["proposals"] = imputation.n_proposals
    if "hmc" in methods:
        caps["chain_transitions"] = imputation.n_samples * (imputation.n_transitions + imputation.n_warmup)
    return caps


# -- the image ------------------------------------------------------------------------------------------------
def image_input(x_test: np.ndarray, image_shape: tuple, binarized: bool) -> np.ndarray | None:
    """The image to inpaint, (features,): a test image, an upload or a drawing (None until there is one)."""
    st.subheader("Image")
    source = url_bound(st.segmented_control, "Image from", key="inpaint_source", param="source", default="test",
                       valid=lambda s: s in SOURCES, options=list(SOURCES), format_func=SOURCES.get,
                       required=True) or "test"
    n_test = len(x_test)
    image_valid = _in_range(0, n_test - 1)
    if source == "test":
        image = url_bound(st.number_input, "Test image", key="inpaint_image", param="image", default=0, parse=int,
                          valid=image_valid, min_value=0, max_value=n_test - 1, step=1,
                          help=f"Row of the test set (0–{n_test - 1}).")
        return np.asarray(x_test[int(image)], dtype=np.float32)
    image = url_value("inpaint_image", param="image", default=0, parse=int, valid=image_valid, remember=True)
    if source == "atlas":
        return atlas_image(image_shape)
    if source == "upload":
        return uploaded_image(image_shape, binarized)
    return drawn_image(np.asarray(x_test[int(image)], dtype=np.float32), image_shape)


def atlas_image(image_shape: tuple) -> np.ndarray | None:
    """The item a link from the Latent atlas names (``?source=atlas&data=<source>&item=<row>``)."""
    key, item = st.query_params.get("data"), st.query_params.get("item")
    if not key or not item or not item.isdigit():
        st.info("Follow an item's link from the Latent atlas page to inpaint it here.", icon=":material/travel_explore:")
        return None
    dataset = checkpoint_dataset(load_model(current_ref()).config)
    try:
        x = atlas.atlas_item(key, int(item), dataset.name, tuple(image_shape), atlas.server_files(data_dirs()))
    except VizvaeError as err:
        st.error(f"That atlas item could not be opened: {plain(err)}.", icon=":material/error:")
        return None
    st.caption(f"Item {int(item):,} of the atlas' {plain(key)}.")
    return x


def uploaded_image(image_shape: tuple, binarized: bool) -> np.ndarray | None:
    upload = st.file_uploader("An image file", type=["png", "jpg", "jpeg", "bmp", "gif", "webp"],
                              key="inpaint_upload", help="Any size or colour: it is converted to the model's input.")
    st.radio("Colours", ["auto", "no", "yes"], key="inpaint_invert", horizontal=True,
             format_func={"auto": "invert if mostly light", "no": "keep", "yes": "invert"}.get,
             help="MNIST digits are light on a dark background.")
    if upload is None:
        st.info("Upload an image (PNG, JPEG, ...) to inpaint.", icon=":material/upload:")
        return None
    invert = st.session_state["inpaint_invert"]
    decoded = once_per_upload(UPLOAD_KEY, upload, (tuple(image_shape), binarized, invert),
                              lambda data: image_from_upload(data, image_shape, binarize=binarized, invert=invert))
    if isinstance(decoded, VizvaeError):
        st.error(f"**{plain(upload.name)}** could not be used: {plain(decoded)}.", icon=":material/error:")
        return None
    x, notes = decoded
    if notes:
        st.info(f"**{plain(upload.name)}**: " + plain("; ".join(notes)) + ".", icon=":material/transform:")
    return x


def drawn_image(test_image: np.ndarray, image_shape: tuple) -> np.ndarray:
    """A digit drawn on a pixel canvas (``test_image`` is what "From the test image" copies)."""
    n_pixels = int(np.prod(image_shape))
    if DRAWING_KEY not in st.session_state or len(st.session_state[DRAWING_KEY]) != n_pixels:
        st.session_state[DRAWING_KEY] = np.zeros(n_pixels, dtype=np.float32)
    tools = st.columns([1.2, 1])
    tools[0].segmented_control("Brush", ["Paint", "Erase"], key="inpaint_draw_mode", default="Paint", required=True)
    tools[1].checkbox("Thick", value=True, key="inpaint_draw_thick", help="Paint each pixel's neighbours too.")
    st.plotly_chart(pixel_canvas_figure(st.session_state[DRAWING_KEY], image_shape), key="inpaint_draw_canvas",
                    on_select=lambda: _draw_selected(tuple(image_shape[1:])),
                    selection_mode=("points", "box", "lasso"), width="content", config=CANVAS_CONFIG)
    st.caption("Draw with the lasso (or box) tool: what it encloses is painted. A click paints one spot.")
    buttons = st.columns(2)
    buttons[0].button("Clear", key="inpaint_draw_clear", on_click=_set_state,
                      args=(DRAWING_KEY, np.zeros(n_pixels, dtype=np.float32)))
    buttons[1].button("From the test image", key="inpaint_draw_from_test", on_click=_set_state,
                      args=(DRAWING_KEY, test_image.copy()))
    return st.session_state[DRAWING_KEY].astype(np.float32)


# -- the mask -------------------------------------------------------------------------------------------------
def mask_input(image_shape: tuple, x: np.ndarray | None) -> np.ndarray:
    """The observed pixels, (features,) bool: a square hole, a half, random pixels or a painted mask."""
    st.subheader("Mask")
    kind = url_bound(st.selectbox, "Hide", key="inpaint_mask", param="mask", default="square",
                     valid=lambda m: m in MASK_KINDS, options=list(MASK_KINDS), format_func=MASK_KINDS.get,
                     help="Hidden pixels are left out of p(x_O | z); the methods fill them in.")
    hw = tuple(image_shape[1:])
    size_args = dict(default=min(14, hw[0]), parse=int, valid=_in_range(1, min(hw)))
    if kind == "square":
        size = int(url_bound(st.slider, "Hole size", key="inpaint_hole_size", param="size", min_value=1,
                             max_value=min(hw), help=f"{min(hw)} hides everything: the imputations are then "
                                                     "samples from the prior.", **size_args))
        top, left = hole_corner(hw, size)
        return InpaintingMask("square", size=size, top=top, left=left).observed(image_shape)
    if kind == "half":
        half = url_bound(st.selectbox, "Hidden half", key="inpaint_half", param="half", default="top",
                         valid=lambda h: h in HALVES, options=HALVES)
        return InpaintingMask("half", half=half).observed(image_shape)
    if kind == "mcar":
        rate = url_bound(st.slider, "Missing (%)", key="inpaint_rate", param="rate", default=50, parse=int,
                         valid=_in_range(0, 100), min_value=0, max_value=100, step=5,
                         help="Each pixel hidden independently with this probability (0 %: nothing hidden, "
                              "100 %: all).")
        seed = url_bound(st.number_input, "Mask seed", key="inpaint_mask_seed", param="mseed", default=0, parse=int,
                         valid=_in_range(0, 9999), min_value=0, max_value=9999, step=1)
        return InpaintingMask("mcar", rate=rate / 100, seed=int(seed)).observed(image_shape)
    size = int(url_value("inpaint_hole_size", param="size", **size_args))
    return InpaintingMask("paint").observed(image_shape, painted_mask(image_shape, x, size))


def hole_corner(hw: tuple[int, int], size: int) -> tuple[int, int]:
    """The square hole's top row and left column; a larger hole re-centres a position it pushed off."""
    corner = []
    for key, param, extent, label in (("inpaint_hole_top", "top", hw[0], "Top row"),
                                      ("inpaint_hole_left", "left", hw[1], "Left column")):
        args = dict(default=(extent - size) // 2, parse=int, valid=_in_range(0, extent - size))
        if extent > size:
            value = url_bound(st.slider, label, key=key, param=param, min_value=0, max_value=extent - size, **args)
        else:
            value = url_value(key, param=param, remember=True, **args)
        corner.append(min(int(value), extent - size))
    return corner[0], corner[1]


def painted_mask(image_shape: tuple, x: np.ndarray | None, size: int) -> np.ndarray:
    """A mask painted on the image (it starts as a centred ``size`` × ``size`` hole)."""
    n_pixels = int(np.prod(image_shape))
    if PAINTED_KEY not in st.session_state or len(st.session_state[PAINTED_KEY]) != n_pixels:
        st.session_state[PAINTED_KEY] = centred_square(tuple(image_shape[1:]), size)
    st.segmented_control("Brush", ["Hide", "Reveal"], key="inpaint_paint_mode", default="Hide", required=True)
    st.plotly_chart(pixel_canvas_figure(x if x is not None else np.zeros(n_pixels), image_shape,
                                        st.session_state[PAINTED_KEY]),
                    key="inpaint_mask_canvas", on_select=_paint_selected, selection_mode=("points", "box", "lasso"),
                    width="content", config=CANVAS_CONFIG)
    st.caption("Select pixels with the lasso or box tool (or click one) to hide or reveal them.")
    buttons = st.columns(2)
    buttons[0].button("Hide all", key="inpaint_hide_all", on_click=_set_state,
                      args=(PAINTED_KEY, np.zeros(n_pixels, dtype=bool)))
    buttons[1].button("Reveal all", key="inpaint_reveal_all", on_click=_set_state,
                      args=(PAINTED_KEY, np.ones(n_pixels, dtype=bool)))
    return st.session_state[PAINTED_KEY].astype(bool)


def observed_view(x: np.ndarray | None, observed: np.ndarray, image_shape: tuple) -> None:
    st.subheader("Observed")
    if x is not None:
        pictures = st.columns(2)
        pictures[0].image(rgb_png(to_rgb(x, image_shape), scale=4), caption="original", width=112)
        pictures[1].image(rgb_png(observed_rgb(x, observed, image_shape), scale=4), caption="observed x_O", width=112)
        st.caption("Hidden pixels are blue.")
    st.caption(f"{int((~observed).sum())} of {observed.size} pixels hidden.")


def edge_mask_note(observed: np.ndarray) -> None:
    if observed.all():
        st.info("Nothing is hidden: every method returns the image unchanged.", icon=":material/visibility:")
    elif not observed.any():
        st.info("Everything is hidden: with nothing observed p(z | x_O) is the prior, so the imputations are samples "
                "from the model itself.", icon=":material/visibility_off:")


# -- methods and models ---------------------------------------------------------------------------------------
def method_controls(checkpoint: Checkpoint, ref: str) -> tuple[list[tuple[str, str]], dict[str, int]]:
    """The rows to compute — (model reference, method) — and the sampler settings."""
    st.header("Methods")
    method_cols = st.columns([2.2, 2.2, 1])
    available = list(supported_methods(checkpoint.model))
    methods = url_bound(method_cols[0].multiselect, "Methods on this model", key="inpaint_methods", param="methods",
                        default=[m for m in DEFAULT_METHODS if m in available], parse=_names, format=",".join,
                        valid=lambda v: isinstance(v, list) and all(m in available for m in v),
                        options=available, format_func=lambda m: METHODS[m].label, help=METHOD_HELP)
    dataset_name = (checkpoint.config.get("dataset") or {}).get("name")
    others = [info["name"] for info in shipped_models() if info["model"] in INPAINT_KINDS
              and info["data_kind"] == "image" and info["dataset"] == dataset_name and info["name"] != ref]
    models = url_bound(method_cols[1].multiselect, "Compare with models (each with its own sampler)",
                       key="inpaint_models", param="models", default=[], parse=_names, format=",".join,
                       valid=lambda v: isinstance(v, list) and all(m in others for m in v), options=others,
                       help="HMC for HMC-VAE and HH-VAE, importance sampling for MIWAE, the encoder otherwise.")
    method_cols[2].button("Fig. 5.6 set-up", key="inpaint_fig56", on_click=_fig56, args=(ref,),
                          help="VAE, H-VAE, HMC-VAE and HH-VAE, each with its own sampler.")
    rows = [(ref, method) for method in methods] + [(name, native_method(load_model(name).model)) for name in models]
    return rows, sampler_settings()


def sampler_settings() -> dict[str, int]:
    settings = st.columns(5)
    n_samples = url_bound(settings[0].select_slider, "Samples", key="inpaint_samples", param="samples", default=DEFAULTS["n_samples"],
                          parse=int, valid=lambda n: n in SAMPLE_COUNTS, options=SAMPLE_COUNTS,
                          help="Draws per method: encoder draws, HMC or Gibbs chains, SIR resamples.")
    n_iterations = url_bound(settings[1].select_slider, "Gibbs sweeps", key="inpaint_iterations", param="iters",
                             default=DEFAULTS["n_iterations"], parse=int, valid=lambda n: n in ITERATION_COUNTS, options=ITERATION_COUNTS)
    n_proposals = url_bound(settings[2].select_slider, "SIR proposals", key="inpaint_proposals", param="props",
                            default=DEFAULTS["n_proposals"], parse=int, valid=lambda n: n in PROPOSAL_COUNTS, options=PROPOSAL_COUNTS)
    seed = url_bound(settings[3].number_input, "Seed", key="inpaint_seed", param="seed", default=DEFAULTS["seed"], parse=int,
                     valid=_in_range(0, 9999), min_value=0, max_value=9999, step=1)
    with settings[4]:
        st.button("Run", key="inpaint_run", type="primary", on_click=_arm, icon=":material/play_arrow:")
        st.toggle("Run on every change", key="inpaint_auto")
    return dict(n_samples=int(n_samples), n_iterations=int(n_iterations), n_proposals=int(n_proposals),
                seed=int(seed))


def ready_to_run(rows: list, signature: tuple) -> bool:
    """Whether the results of exactly these inputs were asked for (Run, or run on every change)."""
    if st.session_state.pop(RUN_REQUEST_KEY, False) or st.session_state.get("inpaint_auto"):
        st.session_state[ARMED_KEY] = signature
    st.header("Results")
    armed = st.session_state.get(ARMED_KEY)
    if not rows:
        st.info("Pick at least one method or model.")
    elif armed is None:
        st.info("Press **Run** to impute the hidden pixels with each method.", icon=":material/play_arrow:")
    elif armed != signature:
        st.info("The inputs changed since the last run (a run in progress stops): press **Run** again.",
                icon=":material/refresh:")
    ready = bool(rows) and armed == signature
    if not ready:
        job_runner().cancel(JOB, "the inputs changed")
    return ready


# -- results --------------------------------------------------------------------------------------------------
def row_label(row: tuple[str, str], ref: str) -> str:
    name, method = row
    return METHODS[method].label if name == ref else f"{name} · {METHODS[method].label}"


def run_rows(rows: list[tuple[str, str]], labels: list[str], x: np.ndarray, observed: np.ndarray,
             settings: dict[str, int], image_shape: tuple, signature: tuple) -> list[InpaintingResult | str] | None:
    """Each row's result, or the message of its failure, computed in the background (None while it
    runs, with its progress, or after a cancel)."""
    names = list(dict.fromkeys(name for name, _ in rows))
    # one model's rows are stored with its checkpoint (shipped for the first view, else the user cache)
    folder = load_model(names[0]).path if len(names) == 1 else None
    params = inpainting_store.result_params(x, observed, rows, settings)
    stored = inpainting_store.load(folder, params)
    if stored is not None:
        return stored
    imputation = ImputationSettings(**settings)
    results = background_task(
        JOB, key=(*signature, *(checkpoint_stamp(name) for name in names)), work=inpaint_rows,
        label=f"Imputing with {len(rows)} method(s)",
        args=({name: load_model(name).model for name in names}, rows, labels, x, observed, image_shape),
        kwargs=dict(settings=imputation, classifier=_digit_classifier(),
                    feature_means={name: _feature_mean(name, checkpoint_stamp(name)) for name in names}),
        units=sum(inpainting_work_units(method, imputation) for _, method in rows),
        caps=inpainting_caps([method for _, method in rows], imputation))
    if results is not None and not any(isinstance(r, str) for r in results):  # a failure is not kept
        inpainting_store.store(folder, params, results)
    return results


def score_lines(result: InpaintingResult, method: str) -> str:
    """The scores beside a result row, in words."""
    if result.missing_nll is not None:
        nll = f"NLL **{result.missing_nll:.1f}** nats ({result.missing_nll_per_entry:.3f} per pixel)"
    else:
        nll = "NLL —" + (" (a point fill has no likelihood)" if method == "zero" else "")
    mse = f"MSE **{result.mse:.4f}**" if result.mse is not None else "MSE —"
    if result.labels is not None:
        label = (f"label **{result.predicted_label}** (p = {result.label_probability:.2f}, "
                 f"{result.label_source})")
    else:
        label = "label — (no predictor)"
    diagnostics, extra = result.diagnostics, ""
    if "acceptance_rate" in diagnostics:
        extra = f", acceptance {diagnostics['acceptance_rate']:.2f}"
    if "ess" in diagnostics:
        extra = f", ESS {diagnostics['ess']:.0f} of {int(diagnostics['proposals'])}"
    return "  \n".join([nll, mse, label, f"{result.runtime:.2f} s{extra}"])


def result_row(i: int, label: str, method: str, result: InpaintingResult | str, strip_key: str,
               image_shape: tuple, vmax: float) -> None:
    with st.container(key=f"inpaint_row_{i}"):
        if isinstance(result, str):
            st.error(f"**{plain(label)}** failed on this input: {plain(result)}", icon=":material/error:")
            return
        cols = st.columns(ROW_WIDTHS)
        cols[0].markdown(f"**{plain(label)}**")
        cols[0].caption(METHODS[method].summary)
        cols[1].image(rgb_png(to_rgb(result.mean, image_shape), scale=3))
        cols[2].image(strip_png(result.strip(strip_key), image_shape, scale=3))
        cols[3].image(rgb_png(uncertainty_rgb(result.variance, image_shape, vmax), scale=3))
        cols[4].markdown(score_lines(result, method))
        untrusted = trust_warning(result.diagnostics)
        if untrusted:
            st.warning(untrusted, icon=":material/warning:")


def results_view(rows: list[tuple[str, str]], labels: list[str], results: list[InpaintingResult | str],
                 x: np.ndarray, observed: np.ndarray, image_shape: tuple, vmax: float) -> str:
    """Original, observed, then one row per method; returns which strip is shown ("decoded" | "samples")."""
    for message in dict.fromkeys(r.message for r in results if isinstance(r, InpaintingResult) and r.message):
        st.info(message, icon=":material/info:")
    strip_key = st.radio("Sample strip shows", ["decoded", "samples"], key="inpaint_show", horizontal=True,
                         format_func={"decoded": "decoder means at each latent draw (as in Fig. 5.6)",
                                      "samples": "samples x̂_U ~ p(x_U | z) themselves"}.get)
    for col, text in zip(st.columns(ROW_WIDTHS), ["", "mean imputation", f"{SHOWN} samples", "uncertainty",
                                                  "hidden pixels"]):
        col.caption(text)
    for label, picture in (("Original", to_rgb(x, image_shape)), ("Observed", observed_rgb(x, observed, image_shape))):
        cols = st.columns(ROW_WIDTHS)
        cols[0].markdown(f"**{plain(label)}**")
        cols[1].image(rgb_png(picture, scale=3))
    for i, ((_, method), label, result) in enumerate(zip(rows, labels, results)):
        result_row(i, label, method, result, strip_key, image_shape, vmax)
    legend = st.columns([1, 3])
    legend[0].image(uncertainty_legend_png(vmax))
    legend[1].caption(f"Uncertainty: the per-pixel variance Var[x_U | x_O] (law of total variance over the draws), "
                      f"from 0 (black) to {vmax:g} (yellow). Observed pixels have none.")
    return strip_key


def labels_view(labels: list[str], results: list[InpaintingResult | str]) -> None:
    labelled = [(label, r.labels) for label, r in zip(labels, results)
                if isinstance(r, InpaintingResult) and r.labels is not None]
    if not labelled:
        return
    probs = np.stack([p for _, p in labelled])
    st.plotly_chart(label_probabilities_figure([label for label, _ in labelled], probs,
                                               [str(c) for c in range(probs.shape[1])],
                                               title="p(y | x_O): the predicted label per method"),
                    key="inpaint_labels")
    st.caption("From the model's predictor p(y | x̂, h_1), averaged over the method's draws; for a model without "
               "one, from vizvae's digit classifier on the decoded samples.")


def scores_view(name: str, labels: list[str], results: list[InpaintingResult | str], x: np.ndarray,
                observed: np.ndarray, image_shape: tuple, strip_key: str, vmax: float) -> None:
    table = scores_table([r.scores(label) if isinstance(r, InpaintingResult) else {"row": label}
                          for label, r in zip(labels, results)])
    st.dataframe(table, hide_index=True)
    st.caption("NLL: −log p(x_U | x_O) of the true hidden pixels, by eq. (5.14) over the method's draws (importance "
               "weights for SIR). MSE: of the mean imputation over the hidden pixels. Runtimes are of the first run; "
               "repeated runs with the same inputs come from the cache.")
    figure_rows = [InpaintingRow(label, r.mean, r.strip(strip_key), r.variance)
                   for label, r in zip(labels, results) if isinstance(r, InpaintingResult)]
    downloads = st.columns(2)
    with downloads[0]:
        download_png("Comparison (PNG)", inpainting_figure_png(x, observed_rgb(x, observed, image_shape), figure_rows,
                                                               image_shape, n_samples=SHOWN, vmax=vmax),
                     f"{name}-inpainting.png", key="inpaint_png")
    with downloads[1]:
        download_csv("Scores (CSV)", csv_bytes(table), f"{name}-inpainting.csv", key="inpaint_csv")


# -- the page -------------------------------------------------------------------------------------------------
def render() -> None:
    checkpoint = require_model(kinds=INPAINT_KINDS, data_kinds=("image",), purpose="The inpainting page")
    ref = current_ref()
    dataset = checkpoint_dataset(checkpoint.config)
    image_shape = tuple(dataset.image_shape)
    binarized = bool(((checkpoint.config.get("dataset") or {}).get("preprocessing") or {}).get("binarize", False))
    st.title("Inpainting")
    st.caption(f"**{plain(checkpoint.name)}**: hide part of an image and compare how each method fills it in — the mean "
               "imputation, samples, the per-pixel uncertainty and the scores of the hidden pixels (thesis Fig. 5.6).")
    image_col, mask_col, view_col = st.columns([1.25, 1.25, 1])
    with image_col:
        x = image_input(dataset.x_test, image_shape, binarized)
    with mask_col:
        observed = mask_input(image_shape, x)
    with view_col:
        observed_view(x, observed, image_shape)
    if x is None:
        st.stop()
    edge_mask_note(observed)
    rows, settings = method_controls(checkpoint, ref)
    signature = (ref, checkpoint_stamp(ref), x.tobytes(), observed.tobytes(), tuple(rows), *settings.values())
    if not ready_to_run(rows, signature):
        st.stop()
    labels = [row_label(row, ref) for row in rows]
    results = run_rows(rows, labels, x, observed, settings, image_shape, signature)
    if results is None:
        st.stop()
    seconds = sum(r.runtime for r in results if isinstance(r, InpaintingResult))
    st.caption(f"Imputed with {len(rows)} method(s) in {format_duration(seconds)}.")
    vmax = uncertainty_vmax([r for r in results if isinstance(r, InpaintingResult)], binarized)
    strip_key = results_view(rows, labels, results, x, observed, image_shape, vmax)
    labels_view(labels, results)
    scores_view(checkpoint.name, labels, results, x, observed, image_shape, strip_key, vmax)

