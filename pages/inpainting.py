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
``inpaint_show``. Result rows are containers ``inpaint_row_0``, ``inpaint_row_1``, ...; charts:
``inpaint_labels``. URL: ``source``, ``image``, ``mask``, ``size``, ``top``, ``left``, ``half``, ``rate``,
``mseed``, ``methods``, ``models``, ``samples``, ``iters``, ``props``, ``seed``.
"""

from __future__ import annotations

import numpy as np
import streamlit as st
import torch

from pages._common import (
    checkpoint_stamp, current_ref, download_csv, download_png, load_model, remember_in_url, require_model,
    run_through_entrypoint, selection_indices, shipped_models, url_widget_state,
)
from vizvae.checkpoint import checkpoint_dataset
from vizvae.data.masks import box_mask, half_mask, mcar_mask
from vizvae.data.user import image_from_upload
from vizvae.errors import VizvaeError
from vizvae.inference.imputers import (
    METHODS, classifier_label_probs, impute, native_method, supported_methods,
)
from vizvae.viz.inpainting import (
    InpaintingRow, inpainting_figure_png, label_probabilities_figure, observed_rgb, pixel_canvas_figure, rgb_png,
    scores_table, strip_png, to_rgb, uncertainty_legend_png, uncertainty_rgb,
)
from vizvae.viz.tables import csv_bytes

run_through_entrypoint()  # before anything is drawn: see its docstring

INPAINT_KINDS = ("vae", "pvae", "hvae", "miwae", "hmcvae", "hhvae")  # one latent space that encodes masked images
SOURCES = {"test": "Test image", "upload": "Upload", "draw": "Draw"}
MASK_KINDS = {"square": "square hole", "half": "half", "mcar": "random pixels (MCAR)", "paint": "painted by hand"}
HALVES = ("top", "bottom", "left", "right")
SAMPLE_COUNTS = (8, 16, 32, 64, 128)
ITERATION_COUNTS = (10, 20, 50, 100, 200, 500)
PROPOSAL_COUNTS = (100, 500, 1000, 2000, 5000)
DEFAULT_METHODS = ["encoder", "hmc", "pseudo_gibbs", "mwg", "sir"]
FIG56_MODELS = ("mnist-pvae", "mnist-hvae", "mnist-hmcvae", "mnist-hhvae")  # VAE, H-VAE, HMC-VAE, HH-VAE
SHOWN = 8  # samples in each row's strip
DRAWING_KEY, PAINTED_KEY, ARMED_KEY = "_inpaint_drawing", "_inpaint_painted", "_inpaint_armed"
METHOD_HELP = (
    "Zero and mean fill: baselines that ignore the model. Gaussian encoder: z ~ q(z | x_O), decoded once. "
    "HMC: chains on p(z | x_O) from the encoder (trained step sizes for HMC models). Pseudo-Gibbs: alternate "
    "encoder and decoder draws — **biased** unless the encoder is the exact posterior (on a factor-analysis "
    "model with a wrong encoder it settles tens of standard errors away from the exact conditional). "
    "Metropolis-within-Gibbs: the same draws with an accept/reject step, exact for any encoder. "
    "SIR: encoder draws importance-weighted by p(x_O | z) p(z) / q(z | x_O).")


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


@st.cache_data(show_spinner=False, max_entries=256)
def _impute_row(ref: str, stamp: tuple, method: str, x: np.ndarray, mask: np.ndarray, n_samples: int,
                n_iterations: int, n_proposals: int, seed: int, image_shape: tuple) -> dict:
    """One row of the comparison: ``method`` on ``ref``'s model for image ``x`` under ``mask``."""
    model = load_model(ref).model
    feature_mean = torch.as_tensor(_feature_mean(ref, stamp))
    result = impute(model, torch.as_tensor(x)[None], torch.as_tensor(mask)[None], method, n_samples=n_samples,
                    seed=seed, n_iterations=n_iterations, n_proposals=n_proposals, feature_mean=feature_mean)
    labels, label_source = None, None
    if result.label_probs is not None and getattr(model, "target_kind", None) == "categorical":
        labels, label_source = result.label_probs[0], "predictor"
    elif tuple(image_shape) == (1, 28, 28) and (classifier := _digit_classifier()) is not None:
        labels, label_source = classifier_label_probs(classifier, result)[0], "digit classifier"

    def array(t: torch.Tensor | None) -> np.ndarray | None:
        return None if t is None else t.detach().float().cpu().numpy()

    nll = None if result.missing_nll is None else float(result.missing_nll[0])
    return {
        "mean": array(result.mean[0]), "variance": array(result.variance[0]),
        "decoded": array(result.decoded[0, :SHOWN]), "samples": array(result.samples[0, :SHOWN]),
        "missing_nll": nll, "mse": None if result.mse is None else float(result.mse[0]),
        "n_missing": int(result.n_missing[0]), "labels": array(labels), "label_source": label_source,
        "runtime": result.runtime_s, "message": result.message, "diagnostics": dict(result.diagnostics),
    }


# -- painting on a pixel grid -----------------------------------------------------------------------------------
def _dilate(indices: list[int], hw: tuple[int, int]) -> list[int]:
    """Each selected pixel and its 8 neighbours: a thicker brush."""
    height, width = hw
    grid = np.zeros(hw, dtype=bool)
    rows, cols = np.divmod(np.asarray(indices, dtype=int), width)
    for dr in (-1, 0, 1):
        for dc in (-1, 0, 1):
            r, c = rows + dr, cols + dc
            inside = (r >= 0) & (r < height) & (c >= 0) & (c < width)
            grid[r[inside], c[inside]] = True
    return np.flatnonzero(grid).tolist()


def _draw_selected(hw: tuple[int, int]) -> None:
    """Selection on the drawing canvas: paint (1) or erase (0) the selected pixels."""
    indices = selection_indices(st.session_state.get("inpaint_draw_canvas"))
    if not indices:
        return
    if st.session_state.get("inpaint_draw_thick", True):
        indices = _dilate(indices, hw)
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


def _set_state(key: str, value) -> None:
    st.session_state[key] = value


def _fig56() -> None:
    available = {info["name"] for info in shipped_models()}
    st.session_state["inpaint_models"] = [name for name in FIG56_MODELS if name in available and name != current_ref()]
    st.session_state["inpaint_methods"] = [native_method(load_model(current_ref()).model)]


def _arm() -> None:
    st.session_state["_inpaint_run_requested"] = True


# -- the model ------------------------------------------------------------------------------------------------
checkpoint = require_model(kinds=INPAINT_KINDS, data_kinds=("image",), purpose="The inpainting page")
ref = current_ref()
stamp = checkpoint_stamp(ref)
model = checkpoint.model
dataset = checkpoint_dataset(checkpoint.config)
image_shape = tuple(dataset.image_shape)
hw = image_shape[1:]
n_pixels = int(np.prod(image_shape))
n_test = len(dataset.x_test)
binarized = bool(((checkpoint.config.get("dataset") or {}).get("preprocessing") or {}).get("binarize", False))
available_methods = list(supported_methods(model))

st.title("Inpainting")
st.caption(f"**{checkpoint.name}**: hide part of an image and compare how each method fills it in — the mean "
           "imputation, samples, the per-pixel uncertainty and the scores of the hidden pixels (thesis Fig. 5.6).")

image_col, mask_col, view_col = st.columns([1.25, 1.25, 1])

# -- the image ------------------------------------------------------------------------------------------------
with image_col:
    st.subheader("Image")
    url_widget_state("inpaint_source", "source", "test", valid=lambda s: s in SOURCES)
    st.segmented_control("Image from", list(SOURCES), key="inpaint_source", format_func=SOURCES.get, required=True)
    remember_in_url("inpaint_source", "source")
    source = st.session_state["inpaint_source"] or "test"
    url_widget_state("inpaint_image", "image", 0, parse=int, valid=lambda i: isinstance(i, int) and 0 <= i < n_test)
    x: np.ndarray | None = None
    if source == "test":
        st.number_input("Test image", 0, n_test - 1, step=1, key="inpaint_image",
                        help=f"Row of the test set (0–{n_test - 1}).")
        x = np.asarray(dataset.x_test[int(st.session_state["inpaint_image"])], dtype=np.float32)
    elif source == "upload":
        upload = st.file_uploader("An image file", type=["png", "jpg", "jpeg", "bmp", "gif", "webp"],
                                  key="inpaint_upload",
                                  help="Any size or colour: it is converted to the model's input.")
        st.radio("Colours", ["auto", "no", "yes"], key="inpaint_invert", horizontal=True,
                 format_func={"auto": "invert if mostly light", "no": "keep", "yes": "invert"}.get,
                 help="MNIST digits are light on a dark background.")
        if upload is None:
            st.info("Upload an image (PNG, JPEG, ...) to inpaint.", icon=":material/upload:")
        else:
            try:
                x, notes = image_from_upload(upload.getvalue(), image_shape, binarize=binarized,
                                             invert=st.session_state["inpaint_invert"])
                if notes:
                    st.info(f"**{upload.name}**: " + "; ".join(notes) + ".", icon=":material/transform:")
            except VizvaeError as err:
                st.error(f"**{upload.name}** could not be used: {err}.", icon=":material/error:")
    else:
        if DRAWING_KEY not in st.session_state or len(st.session_state[DRAWING_KEY]) != n_pixels:
            st.session_state[DRAWING_KEY] = np.zeros(n_pixels, dtype=np.float32)
        tools = st.columns([1.2, 1])
        tools[0].segmented_control("Brush", ["Paint", "Erase"], key="inpaint_draw_mode", default="Paint",
                                   required=True)
        tools[1].checkbox("Thick", value=True, key="inpaint_draw_thick", help="Paint each pixel's neighbours too.")
        st.plotly_chart(pixel_canvas_figure(st.session_state[DRAWING_KEY], image_shape), key="inpaint_draw_canvas",
                        on_select=lambda: _draw_selected(hw), selection_mode=("points", "box", "lasso"),
                        width="content", config={"displaylogo": False, "modeBarButtonsToRemove": ["toImage"]})
        st.caption("Draw with the lasso (or box) tool: what it encloses is painted. A click paints one spot.")
        buttons = st.columns(2)
        buttons[0].button("Clear", key="inpaint_draw_clear", on_click=_set_state,
                          args=(DRAWING_KEY, np.zeros(n_pixels, dtype=np.float32)))
        buttons[1].button("From the test image", key="inpaint_draw_from_test", on_click=_set_state,
                          args=(DRAWING_KEY, np.asarray(dataset.x_test[int(st.session_state["inpaint_image"])],
                                                        dtype=np.float32).copy()))
        x = st.session_state[DRAWING_KEY].astype(np.float32)
    remember_in_url("inpaint_image", "image")

# -- the mask -------------------------------------------------------------------------------------------------
with mask_col:
    st.subheader("Mask")
    url_widget_state("inpaint_mask", "mask", "square", valid=lambda m: m in MASK_KINDS)
    st.selectbox("Hide", list(MASK_KINDS), key="inpaint_mask", format_func=MASK_KINDS.get,
                 help="Hidden pixels are left out of p(x_O | z); the methods fill them in.")
    remember_in_url("inpaint_mask", "mask")
    mask_kind = st.session_state["inpaint_mask"]
    height, width = hw
    url_widget_state("inpaint_hole_size", "size", min(14, height), parse=int,
                     valid=lambda s: isinstance(s, int) and 1 <= s <= min(hw))
    size = int(st.session_state["inpaint_hole_size"])
    url_widget_state("inpaint_half", "half", "top", valid=lambda h: h in HALVES)
    url_widget_state("inpaint_rate", "rate", 50, parse=int, valid=lambda r: isinstance(r, int) and 0 <= r <= 100)
    url_widget_state("inpaint_mask_seed", "mseed", 0, parse=int, valid=lambda s: isinstance(s, int) and 0 <= s <= 9999)
    if mask_kind == "square":
        st.slider("Hole size", 1, min(hw), key="inpaint_hole_size",
                  help=f"{min(hw)} hides everything: the imputations are then samples from the prior.")
        size = int(st.session_state["inpaint_hole_size"])
        corner = []
        for key, param, extent, label in (("inpaint_hole_top", "top", height, "Top row"),
                                          ("inpaint_hole_left", "left", width, "Left column")):
            # a larger hole can push the old position off the image: it is re-centred
            url_widget_state(key, param, (extent - size) // 2, parse=int,
                             valid=lambda v, extent=extent: isinstance(v, int) and 0 <= v <= extent - size)
            if extent > size:
                st.slider(label, 0, extent - size, key=key)
            corner.append(min(int(st.session_state[key]), extent - size))
        mask = box_mask(hw, corner[0], corner[1], size, size)[0].numpy()
        for key, param in (("inpaint_hole_size", "size"), ("inpaint_hole_top", "top"), ("inpaint_hole_left", "left")):
            remember_in_url(key, param)
    elif mask_kind == "half":
        st.selectbox("Hidden half", HALVES, key="inpaint_half")
        remember_in_url("inpaint_half", "half")
        mask = half_mask(hw, st.session_state["inpaint_half"]).numpy()
    elif mask_kind == "mcar":
        st.slider("Missing (%)", 0, 100, step=5, key="inpaint_rate",
                  help="Each pixel hidden independently with this probability (0 %: nothing hidden, 100 %: all).")
        st.number_input("Mask seed", 0, 9999, step=1, key="inpaint_mask_seed")
        remember_in_url("inpaint_rate", "rate")
        remember_in_url("inpaint_mask_seed", "mseed")
        generator = torch.Generator().manual_seed(int(st.session_state["inpaint_mask_seed"]))
        mask = mcar_mask((n_pixels,), st.session_state["inpaint_rate"] / 100, generator).numpy()
    else:
        if PAINTED_KEY not in st.session_state or len(st.session_state[PAINTED_KEY]) != n_pixels:
            st.session_state[PAINTED_KEY] = box_mask(hw, (height - size) // 2, (width - size) // 2, size,
                                                     size)[0].numpy()
        st.segmented_control("Brush", ["Hide", "Reveal"], key="inpaint_paint_mode", default="Hide", required=True)
        st.plotly_chart(pixel_canvas_figure(x if x is not None else np.zeros(n_pixels), image_shape,
                                            st.session_state[PAINTED_KEY]),
                        key="inpaint_mask_canvas", on_select=_paint_selected, selection_mode=("points", "box", "lasso"),
                        width="content", config={"displaylogo": False, "modeBarButtonsToRemove": ["toImage"]})
        st.caption("Select pixels with the lasso or box tool (or click one) to hide or reveal them.")
        buttons = st.columns(2)
        buttons[0].button("Hide all", key="inpaint_hide_all", on_click=_set_state,
                          args=(PAINTED_KEY, np.zeros(n_pixels, dtype=bool)))
        buttons[1].button("Reveal all", key="inpaint_reveal_all", on_click=_set_state,
                          args=(PAINTED_KEY, np.ones(n_pixels, dtype=bool)))
        mask = st.session_state[PAINTED_KEY].astype(bool)
    mask = np.asarray(mask, dtype=bool).reshape(-1)
    if len(mask) != n_pixels:  # one mask for every channel of a colour image
        mask = np.tile(mask, image_shape[0])

# -- the observed image ---------------------------------------------------------------------------------------
n_hidden = int((~mask).sum())
with view_col:
    st.subheader("Observed")
    if x is not None:
        pictures = st.columns(2)
        pictures[0].image(rgb_png(to_rgb(x, image_shape), scale=4), caption="original", width=112)
        pictures[1].image(rgb_png(observed_rgb(x, mask, image_shape), scale=4), caption="observed x_O", width=112)
        st.caption("Hidden pixels are blue.")
    st.caption(f"{n_hidden} of {n_pixels} pixels hidden.")
if x is None:
    st.stop()
if n_hidden == 0:
    st.info("Nothing is hidden: every method returns the image unchanged.", icon=":material/visibility:")
elif n_hidden == n_pixels:
    st.info("Everything is hidden: with nothing observed p(z | x_O) is the prior, so the imputations are samples "
            "from the model itself.", icon=":material/visibility_off:")

# -- methods and models ---------------------------------------------------------------------------------------
st.header("Methods")
method_cols = st.columns([2.2, 2.2, 1])
url_widget_state("inpaint_methods", "methods", [m for m in DEFAULT_METHODS if m in available_methods],
                 parse=lambda s: [m for m in s.split(",") if m],
                 valid=lambda v: isinstance(v, list) and all(m in available_methods for m in v))
method_cols[0].multiselect("Methods on this model", available_methods, key="inpaint_methods",
                           format_func=lambda m: METHODS[m].label, help=METHOD_HELP)
remember_in_url("inpaint_methods", "methods", format=",".join)
dataset_name = (checkpoint.config.get("dataset") or {}).get("name")
others = [info["name"] for info in shipped_models() if info["model"] in INPAINT_KINDS
          and info["data_kind"] == "image" and info["dataset"] == dataset_name and info["name"] != ref]
url_widget_state("inpaint_models", "models", [], parse=lambda s: [m for m in s.split(",") if m],
                 valid=lambda v: isinstance(v, list) and all(m in others for m in v))
method_cols[1].multiselect("Compare with models (each with its own sampler)", others, key="inpaint_models",
                           help="HMC for HMC-VAE and HH-VAE, importance sampling for MIWAE, the encoder otherwise.")
remember_in_url("inpaint_models", "models", format=",".join)
method_cols[2].button("Fig. 5.6 set-up", key="inpaint_fig56", on_click=_fig56,
                      help="VAE, H-VAE, HMC-VAE and HH-VAE, each with its own sampler.")

settings = st.columns(5)
url_widget_state("inpaint_samples", "samples", 32, parse=int, valid=lambda n: n in SAMPLE_COUNTS)
settings[0].select_slider("Samples", SAMPLE_COUNTS, key="inpaint_samples",
                          help="Draws per method: encoder draws, HMC or Gibbs chains, SIR resamples.")
url_widget_state("inpaint_iterations", "iters", 100, parse=int, valid=lambda n: n in ITERATION_COUNTS)
settings[1].select_slider("Gibbs sweeps", ITERATION_COUNTS, key="inpaint_iterations")
url_widget_state("inpaint_proposals", "props", 1000, parse=int, valid=lambda n: n in PROPOSAL_COUNTS)
settings[2].select_slider("SIR proposals", PROPOSAL_COUNTS, key="inpaint_proposals")
url_widget_state("inpaint_seed", "seed", 0, parse=int, valid=lambda s: isinstance(s, int) and 0 <= s <= 9999)
settings[3].number_input("Seed", 0, 9999, step=1, key="inpaint_seed")
for key, param in (("inpaint_samples", "samples"), ("inpaint_iterations", "iters"), ("inpaint_proposals", "props"),
                   ("inpaint_seed", "seed")):
    remember_in_url(key, param)
with settings[4]:
    st.button("Run", key="inpaint_run", type="primary", on_click=_arm, icon=":material/play_arrow:")
    st.toggle("Run on every change", key="inpaint_auto")

rows = [(ref, method) for method in st.session_state["inpaint_methods"]]
rows += [(name, native_method(load_model(name).model)) for name in st.session_state["inpaint_models"]]
n_samples = int(st.session_state["inpaint_samples"])
n_iterations = int(st.session_state["inpaint_iterations"])
n_proposals = int(st.session_state["inpaint_proposals"])
seed = int(st.session_state["inpaint_seed"])
signature = (ref, stamp, x.tobytes(), mask.tobytes(), tuple(rows), n_samples, n_iterations, n_proposals, seed)
if st.session_state.pop("_inpaint_run_requested", False) or st.session_state.get("inpaint_auto"):
    st.session_state[ARMED_KEY] = signature

# -- results --------------------------------------------------------------------------------------------------
st.header("Results")
if not rows:
    st.info("Pick at least one method or model.")
    st.stop()
armed = st.session_state.get(ARMED_KEY)
if armed is None:
    st.info("Press **Run** to impute the hidden pixels with each method.", icon=":material/play_arrow:")
    st.stop()
if armed != signature:
    st.info("The inputs changed since the last run (a run in progress stops): press **Run** again.",
            icon=":material/refresh:")
    st.stop()


def row_label(row: tuple[str, str]) -> str:
    name, method = row
    return METHODS[method].label if name == ref else f"{name} · {METHODS[method].label}"


results = []
with st.status(f"Imputing with {len(rows)} method(s)…", expanded=False) as status:
    progress = st.progress(0.0)
    for i, (name, method) in enumerate(rows):
        progress.progress(i / len(rows), text=f"{row_label((name, method))} ({i + 1} of {len(rows)})")
        try:
            results.append(_impute_row(name, checkpoint_stamp(name), method, x, mask, n_samples, n_iterations,
                                       n_proposals, seed, image_shape))
        except Exception as err:  # noqa: BLE001 - one method failing on this input must not take the page down
            results.append({"error": f"{type(err).__name__}: {err}"})
    progress.progress(1.0, text="done")
    seconds = sum(r["runtime"] for r in results if "error" not in r)
    status.update(label=f"Imputed with {len(rows)} method(s) in {seconds:.2f} s", state="complete")

for message in dict.fromkeys(r["message"] for r in results if r.get("message")):
    st.info(message, icon=":material/info:")

st.radio("Sample strip shows", ["decoded", "samples"], key="inpaint_show", horizontal=True,
         format_func={"decoded": "decoder means at each latent draw (as in Fig. 5.6)",
                      "samples": "samples x̂_U ~ p(x_U | z) themselves"}.get)
strip_key = st.session_state["inpaint_show"]
vmax = 0.25 if binarized else max([0.25] + [float(r["variance"].max()) for r in results if "error" not in r])
widths = [1.5, 1, 4.2, 1, 2.3]
header = st.columns(widths)
for col, text in zip(header, ["", "mean imputation", f"{SHOWN} samples", "uncertainty", "hidden pixels"]):
    col.caption(text)
for label, picture in (("Original", to_rgb(x, image_shape)), ("Observed", observed_rgb(x, mask, image_shape))):
    cols = st.columns(widths)
    cols[0].markdown(f"**{label}**")
    cols[1].image(rgb_png(picture, scale=3))

table_rows, figure_rows, label_rows, label_probs = [], [], [], []
for i, (row, result) in enumerate(zip(rows, results)):
    label = row_label(row)
    if "error" in result:
        with st.container(key=f"inpaint_row_{i}"):
            st.error(f"**{label}** failed on this input: {result['error']}", icon=":material/error:")
        table_rows.append({"row": label})
        continue
    with st.container(key=f"inpaint_row_{i}"):
        cols = st.columns(widths)
        cols[0].markdown(f"**{label}**")
        cols[0].caption(METHODS[row[1]].summary)
        cols[1].image(rgb_png(to_rgb(result["mean"], image_shape), scale=3))
        cols[2].image(strip_png(result[strip_key], image_shape, scale=3))
        cols[3].image(rgb_png(uncertainty_rgb(result["variance"], image_shape, vmax), scale=3))
        lines = []
        if result["missing_nll"] is not None:
            per_pixel = result["missing_nll"] / max(result["n_missing"], 1)
            lines.append(f"NLL **{result['missing_nll']:.1f}** nats ({per_pixel:.3f} per pixel)")
        else:
            lines.append("NLL —" + (" (a point fill has no likelihood)" if row[1] == "zero" else ""))
        lines.append(f"MSE **{result['mse']:.4f}**" if result["mse"] is not None else "MSE —")
        top = None
        if result["labels"] is not None:
            top = int(np.argmax(result["labels"]))
            lines.append(f"label **{top}** (p = {result['labels'][top]:.2f}, {result['label_source']})")
        else:
            lines.append("label — (no predictor)")
        diagnostics = result["diagnostics"]
        extra = ""
        if "acceptance_rate" in diagnostics:
            extra = f", acceptance {diagnostics['acceptance_rate']:.2f}"
        if "ess" in diagnostics:
            extra = f", ESS {diagnostics['ess']:.0f} of {int(diagnostics['proposals'])}"
        lines.append(f"{result['runtime']:.2f} s{extra}")
        cols[4].markdown("  \n".join(lines))
    figure_rows.append(InpaintingRow(label, result["mean"], result[strip_key], result["variance"]))
    if result["labels"] is not None:
        label_rows.append(label)
        label_probs.append(result["labels"])
    nll_per_pixel = None if result["missing_nll"] is None else result["missing_nll"] / max(result["n_missing"], 1)
    table_rows.append({
        "row": label, "hidden pixels": result["n_missing"], "NLL (nats)": result["missing_nll"],
        "NLL per hidden pixel": nll_per_pixel,
        "MSE": result["mse"], "predicted label": top,
        "p(label)": None if top is None else float(result["labels"][top]), "label from": result["label_source"],
        "runtime (s)": round(result["runtime"], 3)})

legend = st.columns([1, 3])
legend[0].image(uncertainty_legend_png(vmax))
legend[1].caption(f"Uncertainty: the per-pixel variance Var[x_U | x_O] (law of total variance over the draws), "
                  f"from 0 (black) to {vmax:g} (yellow). Observed pixels have none.")
if label_rows:
    classes = [str(c) for c in range(len(label_probs[0]))]
    st.plotly_chart(label_probabilities_figure(label_rows, np.stack(label_probs), classes,
                                               title="p(y | x_O): the predicted label per method"),
                    key="inpaint_labels")
    st.caption("From the model's predictor p(y | x̂, h_1), averaged over the method's draws; for a model without "
               "one, from vizvae's digit classifier on the decoded samples.")
st.dataframe(scores_table(table_rows), hide_index=True)
st.caption("NLL: −log p(x_U | x_O) of the true hidden pixels, by eq. (5.14) over the method's draws (importance "
           "weights for SIR). MSE: of the mean imputation over the hidden pixels. Runtimes are of the first run; "
           "repeated runs with the same inputs come from the cache.")
downloads = st.columns(2)
with downloads[0]:
    download_png("Comparison (PNG)", inpainting_figure_png(x, observed_rgb(x, mask, image_shape), figure_rows,
                                                           image_shape, n_samples=SHOWN, vmax=vmax),
                 f"{checkpoint.name}-inpainting.png", key="inpaint_png")
with downloads[1]:
    download_csv("Scores (CSV)", csv_bytes(scores_table(table_rows)), f"{checkpoint.name}-inpainting.csv",
                 key="inpaint_csv")
