"""Latent atlas: 10⁵–10⁶ encoded items at once — every point as a density with contour lines, a
sample of them as points (more appear as the view narrows), coloured by label, metadata or KL, a
thumbnail on hover; box, lasso or click selection over all points; the selected items, their
encoder posteriors and traversals; nearest-neighbour search from an item, a typed latent vector or
an uploaded image; one-click links to the same item in Posterior or Inpainting.

The picture is a canvas (``pages/_atlas_canvas.py``), not a plotly chart: it draws in ~0.1 s where
plotly.js takes ~1 s to load before drawing anything (``python -m vizvae bench --only atlas``).

Widget / session-state keys (used by the tests): ``atlas_data``, ``atlas_method``, ``atlas_colour``,
``atlas_points``, ``atlas_chart`` (the canvas), ``atlas_zoom``, ``atlas_reset``, ``atlas_clear``,
``atlas_focus``, ``atlas_query``, ``atlas_vector``, ``atlas_upload``, ``atlas_k``; the containers
``atlas_selected``, ``atlas_posterior``, ``atlas_selection_means`` and ``atlas_neighbours``. URL:
``data``, ``proj``, ``colour``, ``points``, ``view``, ``sel`` (``box:x0,x1,y0,y1``,
``lasso:x y;x y;…`` or ``rows:3,17``), ``focus``, ``k``.
"""

from __future__ import annotations

if __name__ == "__main__":  # a fresh server's first request for /atlas runs this file bare
    from pages._common import run_app

    run_app()  # before the imports below: the app's navigation must replace Streamlit's at once

import base64
from urllib.parse import quote
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import streamlit as st
import torch

from pages._atlas_canvas import atlas_canvas, component_value
from pages._common import (
    background_task, checkpoint_stamp, current_ref, load_model, once_per_upload, plain, require_model,
    url_bound,
)
from vizvae.checkpoint import checkpoint_dataset
from vizvae.data.user import image_from_upload
from vizvae.errors import VizvaeError
from vizvae.inference import atlas
from vizvae.inference.encodings import (
    cached_elbo, cached_encodings, encodings_directory, stored_elbo, stored_encodings,
)
from vizvae.inference.latent import decode_mean, dimensions_by_kl, reconstruct, traversal_latents, traversal_values
from vizvae.inference.neighbours import LatentNeighbours
from vizvae.jobs import format_duration
from vizvae.server import data_dirs
from vizvae.viz.atlas import Colouring, canvas_payload, with_selection
from vizvae.viz.svg import posterior_svg
from vizvae.viz.images import grid_png, paired_rows

CHART_KEY = "atlas_chart"
SELECTION_KEY = "_atlas_selection"  # the selection's text, as in the URL's ``sel``
SELECTION_IDENT_KEY = "_atlas_selection_of"  # (model, data, projection) the selection was made in
PAYLOAD_KEY = "_atlas_payload"  # (what the canvas' payload was built from, the payload)
MAX_SELECTION_TEXT = 100_000
VIEW_KEY = "_atlas_view"
UPLOAD_SLOT = "_atlas_upload_image"
ATLAS_KINDS = ("vae", "miwae", "pvae", "hmcvae", "hvae", "hhvae", "exported", "adapter")
POINT_LIMITS = (2_000, 5_000, 10_000, 20_000, 50_000)
SHOWN = 10  # selected items drawn as originals and reconstructions
CANVAS_HEIGHT = 600


@dataclass
class Atlas:
    """One model's encodings of one data source, and their projection."""

    ref: str
    name: str
    model: Any
    image_shape: tuple[int, ...]
    data: atlas.AtlasData
    mean: np.ndarray  # (n, latent) memory maps
    log_var: np.ndarray
    projection: atlas.AtlasProjection
    order: np.ndarray  # the points' drawing priority (a permutation)
    full: atlas.View  # the view holding every point
    directory: Path  # where the encodings and what is computed from them are kept

    @property
    def coords(self) -> np.ndarray:
        return self.projection.coords


# -- the data, its encodings and projection: cached per process, computed in the background ----------------------
@st.cache_resource(max_entries=4, show_spinner=False)
def _opened(key: str, image_shape: tuple[int, int, int], ref: str, stamp: tuple) -> atlas.AtlasData:
    if key == "test":
        return atlas.open_test_set(checkpoint_dataset(load_model(ref).config))
    if key.startswith("shapes-"):
        return atlas.open_generated(int(key.split("-", 1)[1]))
    name = key.split(":", 1)[1]
    return atlas.open_file(name, atlas.server_files(data_dirs())[name], image_shape)


@st.cache_resource(max_entries=16, show_spinner=False)
def _bounds(ref: str, stamp: tuple, key: str, method: str, _coords: np.ndarray) -> atlas.View:
    return atlas.full_view(_coords)


@st.cache_resource(max_entries=8, show_spinner=False)
def _order(n: int) -> tuple[np.ndarray, np.ndarray]:
    """(drawing order, each row's rank in it)."""
    order = atlas.priority_order(n)
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n)
    return order, rank


@st.cache_resource(max_entries=4, show_spinner=False)
def _kl(ref: str, stamp: tuple, key: str, n: int) -> np.ndarray:
    subject = _subject_parts(ref, stamp, key)
    return atlas.kl_per_point(subject[1], subject[2])


@st.cache_resource(max_entries=4, show_spinner=False)
def _index(ref: str, stamp: tuple, key: str, n: int) -> LatentNeighbours:
    return LatentNeighbours(_subject_parts(ref, stamp, key)[1])


def _subject_parts(ref: str, stamp: tuple, key: str) -> tuple:
    """(data, means, log-variances) once they are stored (the caller made sure)."""
    checkpoint = load_model(ref)
    data = _opened(key, tuple(checkpoint.model.config.input_shape), ref, stamp)
    stored = stored_encodings(checkpoint.path, checkpoint.model, data.items)
    return data, stored[0], stored[1]


def _generate(report, n: int) -> atlas.AtlasData:
    return atlas.open_generated(n, report)


def _encode(report, folder, model, items) -> bool:
    cached_encodings(folder, model, items, progress=lambda done, n: report(done / n, f"encoded {done:,} of {n:,}"))
    return True


def _elbo(report, directory, model, items) -> bool:
    cached_elbo(directory, model, items, progress=lambda done, n: report(done / n, f"{done:,} of {n:,} items"))
    return True


def _project(report, directory, means, method: str) -> atlas.AtlasProjection:
    return atlas.atlas_projection(directory, means, method, report=lambda f, m: report(f, m))


def data_source(checkpoint, sources: dict[str, str], key: str) -> atlas.AtlasData | None:
    """The chosen source, opened (generated in the background the first time)."""
    image_shape = tuple(checkpoint.model.config.input_shape)
    if key.startswith("shapes-") and not atlas.generated_ready(int(key.split("-", 1)[1])):
        n = int(key.split("-", 1)[1])
        done = background_task("atlas_generate", key=("generate", n), work=_generate, args=(n,),
                               label=f"Generating {n:,} shapes (once per server)", units=n, seconds_per_unit=2e-4)
        if done is None:
            return None
    try:
        data = _opened(key, image_shape, current_ref(), checkpoint_stamp(current_ref()))
    except VizvaeError as err:
        st.error(f"{plain(sources[key])} could not be opened: {plain(err)}", icon=":material/error:")
        return None
    if atlas.n_features(data.items) != int(np.prod(image_shape)):
        st.error(f"{plain(sources[key])} holds items of {atlas.n_features(data.items):,} values; this model takes "
                 f"{int(np.prod(image_shape)):,} ({' × '.join(map(str, image_shape))}). Choose another source.",
                 icon=":material/error:")
        return None
    return data


def build_atlas(checkpoint, ref: str, stamp: tuple, data: atlas.AtlasData, method: str) -> Atlas | None:
    """The encodings (computed in the background the first time) and the projection."""
    stored = stored_encodings(checkpoint.path, checkpoint.model, data.items)
    if stored is None:
        done = background_task("atlas_encode", key=(ref, stamp, data.key), work=_encode, share=False,
                               args=(checkpoint.path, checkpoint.model, data.items),
                               label=f"Encoding {len(data):,} items (once per model and data)", units=len(data),
                               seconds_per_unit=5e-5)
        if done is None:
            return None
        stored = stored_encodings(checkpoint.path, checkpoint.model, data.items)
    mean, log_var = stored
    directory = encodings_directory(checkpoint.path, data.items)[0]
    projection = atlas.stored_projection(directory, method, len(mean)) if method != "latent" else None
    if projection is None:
        if method in ("umap", "tsne"):
            if method == "tsne" and len(mean) > atlas.TSNE_MAX_POINTS:
                st.warning(f"t-SNE is offered up to {atlas.TSNE_MAX_POINTS:,} points: it has no way to place new "
                           f"points, and {len(mean):,} would take hours. Choose PCA or UMAP (fitted on a sample).",
                           icon=":material/block:")
                return None
            projection = background_task("atlas_project", key=(ref, stamp, data.key, method), work=_project,
                                         args=(directory, mean, method), share=False,
                                         label=f"{atlas.METHOD_LABELS[method]} of {len(mean):,} points (once)",
                                         units=len(mean), seconds_per_unit=2e-4)
            if projection is None:
                return None
        else:
            projection = atlas.atlas_projection(directory, mean, method)
    return Atlas(ref, checkpoint.name, checkpoint.model, tuple(checkpoint.model.config.input_shape), data, mean, log_var,
                 projection, _order(len(mean))[0], _bounds(ref, stamp, data.key, method, projection.coords), directory)


# -- the selection: text in the URL, rows computed over every point ----------------------------------------------
def selected_rows(text: str | None, coords: np.ndarray) -> np.ndarray:
    """The rows a ``sel`` text selects (an unreadable text selects nothing)."""
    return atlas.selection_rows(atlas.parse_selection(text), coords)


def _on_canvas_select() -> None:
    """A box, lasso or click in the canvas: the new selection."""
    text = component_value(CHART_KEY, "select")
    if isinstance(text, str) and len(text) <= MAX_SELECTION_TEXT:
        st.session_state[SELECTION_KEY] = text or None


def _on_canvas_view() -> None:
    """Wheel, pan or "Whole atlas" in the canvas: the view it now shows (checked; None: the whole atlas)."""
    value = component_value(CHART_KEY, "view")
    kept = st.session_state.get(VIEW_KEY)
    if kept is None:
        return
    view = None
    if isinstance(value, (list, tuple)) and len(value) == 4:
        view = atlas.View.parse(",".join(str(v) for v in value))
    st.session_state[VIEW_KEY] = (kept[0], view)  # None: the whole atlas (current_view fills it in)


def _ignore() -> None:
    """The hover state needs no callback: the canvas' fragment reads it when it reruns."""


def _set(key: str, value: Any) -> None:
    st.session_state[key] = value


# -- the page ------------------------------------------------------------------------------------------------------
def render() -> None:
    checkpoint = require_model(kinds=ATLAS_KINDS, data_kinds=("image",), purpose="The latent atlas")
    ref = current_ref()
    stamp = checkpoint_stamp(ref)
    dataset = checkpoint_dataset(checkpoint.config)
    st.title("Latent atlas")
    files = atlas.server_files(data_dirs())
    sources = atlas.atlas_sources(dataset.name, int(np.prod(checkpoint.model.config.input_shape)), files)
    controls = st.columns([2, 2, 1.4, 1.4])
    key = url_bound(controls[0].selectbox, "Data", key="atlas_data", param="data", default="test",
                    valid=lambda k: k in sources, options=list(sources), format_func=sources.get,
                    help="Generated shapes are rendered once per server; data files come from the server's data "
                         "folders (VIZVAE_DATA_DIRS).")
    methods = (["latent"] if checkpoint.model.latent_dim == 2 else []) + ["pca", "umap", "tsne"]
    method = url_bound(controls[1].radio, "Projection", key="atlas_method", param="proj", default=methods[0],
                       valid=lambda m: m in methods, options=methods, format_func=atlas.METHOD_LABELS.get,
                       horizontal=True, help="PCA is exact and instant. UMAP is fitted on a sample of 20,000 points "
                       "and places the rest; t-SNE is offered up to 100,000 points. Both are computed once.")
    data = data_source(checkpoint, sources, key)
    if data is None:
        return
    subject = build_atlas(checkpoint, ref, stamp, data, method)
    if subject is None:
        return
    st.caption(f"**{plain(subject.name)}**: {checkpoint.model.latent_dim}-D latent; {plain(data.description)}.")
    choice, limit = atlas_controls(subject, controls[2:])
    atlas_body(subject, stamp, choice, limit)


def colourings(subject: Atlas) -> dict[str, str]:
    options = {"none": "nothing"}
    if subject.data.labels is not None:
        options["label"] = "label"
    options.update({f"col:{name}": name for name in subject.data.columns})
    options["kl"] = "KL per item"
    options["elbo"] = "ELBO per item"
    return options


def colouring_of(subject: Atlas, stamp: tuple, choice: str, rows: np.ndarray) -> Colouring | None:
    data = subject.data
    if choice == "label" and data.labels is not None:
        names = data.label_names or [str(v) for v in range(int(data.labels.max()) + 1)]
        return Colouring("label", np.asarray(data.labels[rows]), names)
    if choice.startswith("col:") and choice[4:] in data.columns:
        return Colouring(choice[4:], np.asarray(data.columns[choice[4:]][rows], dtype=np.float32))
    if choice == "kl":
        return Colouring("KL (nats)", _kl(subject.ref, stamp, data.key, len(data))[rows])
    if choice == "elbo":
        values = stored_elbo(subject.directory, len(data))
        return None if values is None else Colouring("ELBO (nats)", np.asarray(values[rows]))
    return None


def _ident(subject: Atlas) -> tuple:
    """What a view or a drawn selection refers to: its model, data and projection."""
    return subject.ref, subject.data.key, subject.projection.method


def current_view(subject: Atlas) -> atlas.View:
    """The part of the plane drawn: the URL's ``view`` on a first visit, else the session's for
    this model, data and projection, else the whole atlas."""
    kept = st.session_state.get(VIEW_KEY)
    if kept is None:
        wanted = atlas.View.parse(st.query_params.get("view", "")) or subject.full
    else:
        wanted = kept[1] if kept[0] == _ident(subject) and kept[1] is not None else subject.full
    st.session_state[VIEW_KEY] = (_ident(subject), wanted)
    if wanted != subject.full:
        st.query_params["view"] = wanted.text()
    else:
        st.query_params.pop("view", None)
    return wanted


def current_selection(subject: Atlas) -> str | None:
    """The selection's text: the URL's ``sel`` on a first visit; a box or lasso is dropped when the
    data or the projection changes (its coordinates no longer mean the same points)."""
    if SELECTION_KEY not in st.session_state:
        st.session_state[SELECTION_KEY] = st.query_params.get("sel") or None
        st.session_state[SELECTION_IDENT_KEY] = _ident(subject)
    text = st.session_state[SELECTION_KEY]
    if st.session_state.get(SELECTION_IDENT_KEY) != _ident(subject):
        if text and not text.startswith("rows:") or subject.data.key != st.session_state[SELECTION_IDENT_KEY][1]:
            text = st.session_state[SELECTION_KEY] = None
        st.session_state[SELECTION_IDENT_KEY] = _ident(subject)
    return text


def atlas_controls(subject: Atlas, columns: list) -> tuple[str, int]:
    """The colouring and the number of points drawn."""
    options = colourings(subject)
    default_colour = "label" if "label" in options else "none"
    choice = url_bound(columns[0].selectbox, "Colour by", key="atlas_colour", param="colour", default=default_colour,
                       valid=lambda c: c in options, options=list(options), format_func=options.get,
                       help="KL: KL(q(z | x) ‖ p(z)) of each item. ELBO: each item's ELBO from one draw of z "
                            "(computed once in the background).")
    limit = url_bound(columns[1].select_slider, "Points drawn", key="atlas_points", param="points", default=10_000,
                      parse=int, valid=lambda p: p in POINT_LIMITS, options=POINT_LIMITS, format=str,
                      help="At most this many points are drawn as markers; the density shows every point.")
    if choice == "elbo" and stored_elbo(subject.directory, len(subject.coords)) is None:
        background_task("atlas_elbo", key=(subject.ref, subject.data.key), work=_elbo, share=False,
                        args=(subject.directory, subject.model, subject.data.items),
                        label=f"The ELBO of {len(subject.coords):,} items (once; uncoloured until then)",
                        units=len(subject.coords), seconds_per_unit=1e-4)
    return choice, limit


def atlas_canvas_view(subject: Atlas, stamp: tuple, choice: str, limit: int) -> None:
    """The canvas and its caption."""
    view = current_view(subject)
    payload, drawn, in_view = _payload(subject, stamp, view, choice, limit)
    payload = with_selection(payload, st.session_state.get(SELECTION_KEY))
    atlas_canvas(CHART_KEY, dict(payload, hover=_hover(subject)), on_select=_on_canvas_select,
                 on_view=_on_canvas_view, on_hover=_ignore)
    _chart_caption(subject, drawn, in_view)


def _payload(subject: Atlas, stamp: tuple, view: atlas.View, choice: str, limit: int):
    """(the canvas' payload without the selection, points drawn, points in view), rebuilt only when
    what it shows changes."""
    rings = st.session_state.get("_atlas_rings")
    rings = rings[1] if rings is not None and rings[0] == (subject.ref, subject.data.key) else None
    ready = choice != "elbo" or stored_elbo(subject.directory, len(subject.coords)) is not None  # coloured yet?
    key = (_ident(subject), stamp, view, choice, ready, limit, None if rings is None else tuple(rings.tolist()))
    kept = st.session_state.get(PAYLOAD_KEY)
    if kept is not None and kept[0] == key:
        return kept[1]
    counts = atlas.density(subject.coords, view, atlas.density_bins(len(subject.coords)))
    shown, in_view = atlas.shown_rows(subject.coords, view, subject.order, limit)
    shown = np.sort(shown)
    payload = canvas_payload(counts, view, subject.full, np.asarray(subject.coords[shown]), shown,
                             colouring_of(subject, stamp, choice, shown),
                             rings=None if rings is None else np.asarray(subject.coords[rings]),
                             axis_titles=axis_titles(subject.projection), height=CANVAS_HEIGHT)
    st.session_state[PAYLOAD_KEY] = key, (payload, len(shown), in_view)
    return payload, len(shown), in_view


def _hover(subject: Atlas) -> dict | None:
    """The item under the pointer: its original beside its reconstruction, for the canvas' tooltip."""
    row = component_value(CHART_KEY, "hover")
    if not isinstance(row, int) or not 0 <= row < len(subject.coords):
        return None
    original = atlas.read_rows(subject.data.items, [row])
    pair = np.concatenate([original, reconstruct(subject.model, original)])
    png = grid_png(pair[None], subject.image_shape, scale=2, gutter=2)
    return {"row": row, "src": "data:image/png;base64," + base64.b64encode(png).decode(),
            "caption": "original · reconstruction"}


@st.fragment
def atlas_body(subject: Atlas, stamp: tuple, choice: str, limit: int) -> None:
    """The canvas, the selected items and the neighbours. One fragment: a selection, a hover, a zoom
    or a button here reruns only this, not the page's controls above it. The canvas is drawn last
    (in its place at the top), once the neighbours it rings are known."""
    current_view(subject)
    text = current_selection(subject)
    rows = selected_rows(text, subject.coords)
    slot = st.container()
    _view_buttons(subject, text, current_view(subject))
    if text:
        st.query_params["sel"] = text
    else:
        st.query_params.pop("sel", None)
    selected_section(subject, rows)
    neighbours_section(subject, stamp, rows)
    with slot:
        atlas_canvas_view(subject, stamp, choice, limit)


def axis_titles(projection: atlas.AtlasProjection) -> tuple[str, str]:
    if projection.method == "latent":
        return "z0", "z1"
    if projection.method == "pca" and projection.explained:
        return f"PC1 ({projection.explained[0]:.0%} of variance)", f"PC2 ({projection.explained[1]:.0%})"
    label = atlas.METHOD_LABELS[projection.method]
    return f"{label} 1", f"{label} 2"


def _chart_caption(subject: Atlas, drawn: int, in_view: int) -> None:
    n = len(subject.coords)
    how = (f"all {in_view:,} points in view are drawn" if drawn == in_view else
           f"{drawn:,} of the {in_view:,} points in view are drawn as markers, a fixed random sample: zoom in (wheel) "
           "and more appear")
    projection = subject.projection
    timing = (" (read from the disk cache)" if projection.from_cache else
              f" (computed in {format_duration(projection.seconds)}, now cached)" if projection.seconds else "")
    st.caption(f"Grey: the density of all {n:,} encoder means, with contour lines; {how}. "
               f"{atlas.METHOD_LABELS[projection.method]}{timing}. {plain(projection.note)} "
               "Drag a box or a lasso to select among all points, drawn or not; click a point for one item, "
               "shift-click to add one; hover for its thumbnail.")


def _view_buttons(subject: Atlas, text: str | None, view: atlas.View) -> None:
    buttons = st.columns(3)
    box = atlas.View.parse(text.partition(":")[2]) if text and text.startswith("box:") else None
    buttons[0].button("Zoom to the box", key="atlas_zoom", disabled=box is None, on_click=_set,
                      args=(VIEW_KEY, (_ident(subject), box)), icon=":material/zoom_in:",
                      help="Redraw the density and the points for the selected box.")
    buttons[1].button("Whole atlas", key="atlas_reset", disabled=view == subject.full, on_click=_set,
                      args=(VIEW_KEY, (_ident(subject), subject.full)), icon=":material/zoom_out_map:")
    buttons[2].button("Clear the selection", key="atlas_clear", disabled=not text, on_click=_set,
                      args=(SELECTION_KEY, None), icon=":material/deselect:")


# -- the selected items -----------------------------------------------------------------------------------------------
def _shown_selection(subject: Atlas, rows: np.ndarray) -> np.ndarray:
    """Up to ``SHOWN`` of the selected rows: the first ones in drawing order (a fixed random sample of a
    large selection), in the order they were picked for a click selection."""
    if len(rows) <= SHOWN:
        return rows
    rank = _order(len(subject.coords))[1]
    return rows[np.argsort(rank[rows], kind="stable")[:SHOWN]]


def selected_section(subject: Atlas, rows: np.ndarray) -> None:
    st.header("Selected items")
    if len(rows) == 0:
        st.info("Select in the atlas above: drag a box, draw a lasso, or click a point.")
        return
    shown = _shown_selection(subject, rows)
    with st.container(key="atlas_selected"):
        st.markdown(f"**{len(rows):,} items selected**" + (f"; {len(shown)} of them shown, a fixed random sample."
                                                          if len(rows) > len(shown) else "."))
        originals = atlas.read_rows(subject.data.items, shown)
        pairs = grid_png(paired_rows(originals, reconstruct(subject.model, originals), columns=len(shown)),
                         subject.image_shape, scale=3)
        left, right = st.columns([2, 3])
        left.image(pairs, caption=f"items {', '.join(map(str, shown))}: originals above reconstructions")
        with right:
            focus = _focus(shown)
            mean, std = np.asarray(subject.mean[focus]), np.exp(0.5 * np.asarray(subject.log_var[focus]))
            with st.container(key="atlas_posterior"):
                st.image(posterior_svg(mean, std, f"q(z | x) of item {focus}: mean ± std; dotted: the prior's ±1"))
            _open_links(subject, focus)
        average_kl = _selection_summary(subject, rows)
        _traversal(subject, np.array(subject.mean[focus], dtype=np.float32), focus, average_kl)


def _focus(shown: np.ndarray) -> int:
    options = [int(r) for r in shown]
    wanted = st.session_state.get("atlas_focus")
    if wanted not in options:
        raw = st.query_params.get("focus")
        st.session_state["atlas_focus"] = int(raw) if raw and raw.isdigit() and int(raw) in options else options[0]
    focus = st.selectbox("Posterior of item", options, key="atlas_focus")
    st.query_params["focus"] = str(focus)
    return int(focus)


def _open_links(subject: Atlas, focus: int) -> None:
    """One click to the same item on the Posterior and Inpainting pages (a shareable URL)."""
    model = st.query_params.get("model")
    base = f"model={quote(model)}&" if model else ""
    if subject.data.key == "test":
        st.markdown(f"[Open item {focus} in Posterior](/posterior?{base}image={focus}) · "
                    f"[in Inpainting](/inpainting?{base}source=test&image={focus})")
    else:
        item = f"data={quote(subject.data.key)}&item={focus}"
        st.markdown(f"[Open item {focus} in Posterior](/posterior?{base}{item}) · "
                    f"[in Inpainting](/inpainting?{base}source=atlas&{item})")


def _selection_summary(subject: Atlas, rows: np.ndarray) -> np.ndarray:
    """The selection's encoder means, their average and spread per dimension; returns the
    selection's average KL per dimension (the traversal's row order)."""
    average, spread, average_kl = atlas.selection_statistics(subject.mean, subject.log_var, rows)
    with st.container(key="atlas_selection_means"):
        st.image(posterior_svg(average, spread, f"Encoder means of the {len(rows):,} selected items: "
                                                "average ± spread"))
    return average_kl


def _traversal(subject: Atlas, base: np.ndarray, focus: int, average_kl: np.ndarray) -> None:
    dims = dimensions_by_kl(average_kl)[: min(8, len(average_kl))]
    grid = traversal_latents(torch.as_tensor(base, dtype=torch.float32), dims, traversal_values(3.0, 9),
                             around_base=True)
    st.image(grid_png(decode_mean(subject.model, grid), subject.image_shape),
             caption=f"Traversals around item {focus}: each row moves one dimension by −3 … +3, rows by the selection's "
                     "average KL, highest first: " + ", ".join(f"z{d}" for d in dims))


# -- nearest neighbours ---------------------------------------------------------------------------------------------
QUERIES = {"item": "the item in focus", "vector": "a typed latent vector", "image": "an uploaded image"}


def neighbours_section(subject: Atlas, stamp: tuple, rows: np.ndarray) -> None:
    st.header("Nearest neighbours")
    controls = st.columns([2, 1])
    how = controls[0].segmented_control("Search from", list(QUERIES), key="atlas_query", format_func=QUERIES.get,
                                        default="item", required=True) or "item"
    k = url_bound(controls[1].slider, "k", key="atlas_k", param="k", default=20, parse=int,
                  valid=lambda v: isinstance(v, int) and 1 <= v <= 100, min_value=1, max_value=100)
    query, exclude = _query(subject, how, rows)
    if query is None:
        st.session_state.pop("_atlas_rings", None)
        return
    index = _index(subject.ref, stamp, subject.data.key, len(subject.coords))
    try:
        found, distances = index.query(query, k=min(k, len(subject.coords) - (exclude is not None)), exclude=exclude)
    except VizvaeError as err:
        st.error(plain(err), icon=":material/error:")
        return
    rings = (subject.ref, subject.data.key), found
    previous = st.session_state.get("_atlas_rings")
    if previous is None or previous[0] != rings[0] or not np.array_equal(previous[1], found):
        st.session_state["_atlas_rings"] = rings
    with st.container(key="atlas_neighbours"):
        originals = atlas.read_rows(subject.data.items, found)
        decoded = decode_mean(subject.model, torch.as_tensor(np.asarray(subject.mean[found]), dtype=torch.float32))
        st.image(grid_png(paired_rows(originals, decoded, columns=min(len(found), 10)), subject.image_shape, scale=2),
                 caption="The k nearest items by Euclidean distance between encoder means, nearest first: originals "
                         "above the decodings of their means. They are ringed in red in the atlas.")
        st.caption("Items and distances: " + ", ".join(f"{int(r)} ({d:.3g})" for r, d in zip(found, distances)))


def _query(subject: Atlas, how: str, rows: np.ndarray) -> tuple[np.ndarray | None, int | None]:
    latent_dim = subject.model.latent_dim
    if how == "item":
        if len(rows) == 0:
            st.info("Select an item in the atlas to search from it.")
            return None, None
        focus = int(st.session_state.get("atlas_focus", int(rows[0])))
        return np.asarray(subject.mean[focus]), focus
    if how == "vector":
        text = st.text_input(f"Latent vector ({latent_dim} numbers)", key="atlas_vector",
                             placeholder=", ".join(["0"] * min(latent_dim, 4)) + (", …" if latent_dim > 4 else ""))
        if not text.strip():
            return None, None
        try:
            values = np.array([float(v) for v in text.replace(",", " ").split()], dtype=np.float32)
        except ValueError:
            st.error("Type numbers separated by commas or spaces.", icon=":material/error:")
            return None, None
        if values.shape != (latent_dim,) or not np.all(np.isfinite(values)):
            st.error(f"This model's latent has {latent_dim} dimensions; got {values.size} numbers.", icon=":material/error:")
            return None, None
        return values, None
    upload = st.file_uploader("An image", type=["png", "jpg", "jpeg", "bmp", "gif", "webp"], key="atlas_upload")
    if upload is None:
        return None, None
    decoded = once_per_upload(UPLOAD_SLOT, upload, tuple(subject.image_shape),
                              lambda data: image_from_upload(data, tuple(subject.image_shape)))
    if isinstance(decoded, VizvaeError):
        st.error(f"**{plain(upload.name)}** could not be used: {plain(decoded)}.", icon=":material/error:")
        return None, None
    with torch.inference_mode():
        encoded = subject.model.encode(torch.as_tensor(decoded[0][None], device=subject.model.device))
    return encoded.mean[0].float().cpu().numpy(), None
