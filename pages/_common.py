"""Streamlit helpers shared by the pages (not a page: app.py registers pages explicitly).

* ``run_app``: the hand-over that every page file starts with (see its docstring);
* the sidebar model picker: shipped checkpoints plus any the user points to or uploads;
* loading through ``vizvae.checkpoint`` into ``st.cache_resource`` (models are read-only:
  eval mode, ``requires_grad`` off, never mutated by a session);
* ``require_model``: a page states what kind of model it needs, and offers the compatible
  shipped ones when the selected model does not fit;
* URL state: ``url_bound`` draws a widget whose value lives in ``st.query_params``, so that a URL
  reproduces a view;
* long work: ``background_task`` runs it in a thread (``vizvae.jobs``) and draws its progress, the
  time left and a Cancel button while the rest of the page stays usable.

Session-state keys (stable: the AppTests and browser tests use them):
``model_picker`` (the selected checkpoint reference: a shipped name or a folder path),
``user_checkpoints`` (reference -> label), ``checkpoint_error`` (the last loader message),
``checkpoint_path`` / ``checkpoint_path_open`` / ``checkpoint_upload`` (the sidebar widgets),
``_vizvae_jobs`` (the session's ``JobRunner``); a background task ``name`` draws its bar in the
container ``{name}_progress`` with the button ``{name}_cancel``, and after a cancel the container
``{name}_cancelled`` with the button ``{name}_again``. Query parameter: ``model``.
"""

from __future__ import annotations

import importlib
import os
import re
import runpy
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterable

import streamlit as st

from vizvae.checkpoint import (
    CONFIG, SHIPPED_DIR, WEIGHTS, Checkpoint, load_checkpoint, resolve_checkpoint, shipped_checkpoints,
)
from vizvae.errors import VizvaeError
from vizvae.jobs import RESULTS, JobRefused, JobRunner, check_cap
from vizvae.server import (
    CLOSED_DATA_MESSAGE, CLOSED_PATH_MESSAGE, CapExceeded, data_dirs, data_source_allowed, SessionUploads, allowed_folder, check_caps, is_within, model_dirs, open_paths, public_name,
    sweep_stale_uploads,
)

APP_SCRIPT = Path(__file__).resolve().parents[1] / "app.py"  # the entry point a bare page run hands over to
MODEL_KEY = "model_picker"
USER_MODELS_KEY = "user_checkpoints"
ERROR_KEY = "checkpoint_error"
PATH_KEY = "checkpoint_path"
PATH_BUTTON_KEY = "checkpoint_path_open"
UPLOAD_KEY = "checkpoint_upload"
MODEL_PARAM = "model"
UPLOADS_KEY = "_vizvae_uploads"  # the session's SessionUploads (a private folder, removed when the session ends)
JOBS_KEY = "_vizvae_jobs"
JOB_POLL_S = 0.5  # how often a running job's bar is redrawn


# -- the app frame --------------------------------------------------------------------------------
def run_app() -> None:
    """Hand a bare run of a page file over to the app, and end that run.

    Until some script of a process has called ``st.navigation``, Streamlit treats the folder
    ``pages/`` as a legacy multipage app: for a fresh server's first request of /<page> it sends
    its own page list (every file in pages/) and runs that page file alone, as ``__main__``. So
    every page file starts with ``if __name__ == "__main__": run_app()``, before its imports:
    app.py's ``st.navigation`` then replaces the legacy list before the browser draws it, and
    serves the page and view the URL names. Inside the app pages are functions, never
    ``__main__``, so this runs only in that first, bare run. app.py is run as the script it is
    (not imported), so the pages and the entry point never import each other."""
    runpy.run_path(str(APP_SCRIPT), run_name="__main__")
    st.stop()  # the app has drawn the page: nothing of the bare file is left to run


# -- plain text ------------------------------------------------------------------------------------------
_MARKDOWN_SPECIAL = re.compile(r"[\\`*_{}\[\]()<>#!|~$&]")  # links, images, HTML, emphasis, code, math
# Bare http://…, www.… and e-mail addresses are links in GFM (autolink literals), and no escape stops
# them: an invisible word joiner inside "http://", before "www." and after "@" does.
_AUTOLINK = re.compile(r"(?i)(?<=http:)(?=/)|(?<=https:)(?=/)|(?=www\.)|(?<=@)")
WORD_JOINER = "\u2060"


def plain(text: Any) -> str:
    """``text`` to show as typed inside Streamlit's markdown: no link (bracketed or bare), no image,
    no emphasis, no HTML, no math. Every message that echoes what a visitor typed, uploaded or put
    in the URL goes through it (a crafted ``?model=![x](http://…)`` would otherwise make every
    visitor's browser fetch a remote image, or put a phishing link in the app's own error box).
    Characters that do nothing in running text (``-``, ``.``, ``/``, ``:``) stay as they are."""
    escaped = _MARKDOWN_SPECIAL.sub(lambda match: "\\" + match.group(0), str(text))
    return _AUTOLINK.sub(WORD_JOINER, escaped).replace("\n", " ")


# -- what a visitor may open -------------------------------------------------------------------
def server_address() -> str | None:
    return st.get_option("server.address")


def paths_open() -> bool:
    """May this server's visitors open any path (``vizvae.server.open_paths``)?"""
    return open_paths(server_address())


def session_uploads() -> SessionUploads:
    """This session's private upload folder, made on its first upload and removed when the session
    ends (``_watch_uploads``), or when its state is dropped (``SessionUploads``' own finalizer)."""
    uploads = st.session_state.get(UPLOADS_KEY)
    if uploads is None or uploads.closed:
        uploads = SessionUploads()
        st.session_state[UPLOADS_KEY] = uploads
        _watch_uploads(uploads)
    return uploads


_swept = False


def _sweep_once() -> None:
    """Once per process: remove the upload folders a killed server left (``sweep_stale_uploads``)."""
    global _swept
    if not _swept:
        _swept = True
        sweep_stale_uploads()


UPLOAD_REAP_S = 2.0  # how often the sessions holding uploads are checked for having ended
_upload_sessions: dict[str, SessionUploads] = {}
_upload_lock = threading.Lock()
_reaper: threading.Thread | None = None


def session_is_active(session_id: str) -> bool | None:
    """Is the browser of session ``session_id`` still connected? None outside a served app (AppTest).

    Streamlit has no public hook for a session's end: it keeps a closed tab's session for a
    reconnect (``server.disconnectedSessionTTL``) and drops it only when its storage is next
    written. ``Runtime.is_active_session`` says at once that the websocket is gone; this is the
    one place that asks it (tests/e2e/test_hostile.py fails if it stops answering)."""
    from streamlit.runtime import Runtime

    if not Runtime.exists():
        return None
    return Runtime.instance().is_active_session(session_id)


def _watch_uploads(uploads: SessionUploads) -> None:
    """Remove ``uploads`` once this session's browser has gone (checked every ``UPLOAD_REAP_S``)."""
    global _reaper
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    ctx = get_script_run_ctx()
    if ctx is None or session_is_active(ctx.session_id) is None:
        return  # not served (AppTest): the finalizer removes the folder with the session's state
    with _upload_lock:
        _upload_sessions[ctx.session_id] = uploads
        if _reaper is None:
            _reaper = threading.Thread(target=_reap_uploads, name="vizvae-upload-reaper", daemon=True)
            _reaper.start()


def _reap_uploads() -> None:
    while True:
        time.sleep(UPLOAD_REAP_S)
        with _upload_lock:
            ended = [sid for sid in _upload_sessions if not session_is_active(sid)]
            for session_id in ended:
                _upload_sessions.pop(session_id).close()


def visitor_roots() -> list[Path]:
    """Where a visitor of a closed server may open models: the shipped ones, the configured model
    folders and this session's uploads."""
    roots = [SHIPPED_DIR, *model_dirs()]
    uploads = st.session_state.get(UPLOADS_KEY)
    if uploads is not None:
        roots.append(uploads.folder)
    return roots


def public_ref(ref: str) -> str | None:
    """The reference as the URL may carry it: a shipped name or, on a closed server, the path
    relative to its model folder (an upload's folder is private: None)."""
    if paths_open() or ref in {info["name"] for info in shipped_models()}:
        return ref
    uploads = st.session_state.get(UPLOADS_KEY)
    if uploads is not None and is_within(Path(ref), uploads.folder):
        return None
    return public_name(Path(ref), model_dirs())


def shown_error(err: Exception, path: str | Path) -> str:
    """A loader's message as a visitor of this server may read it: on a closed server the folders
    that hold the model are cut out (no server path reaches the browser)."""
    text = str(err)
    if not paths_open():
        for root in visitor_roots():
            text = text.replace(str(root) + os.sep, "").replace(str(root), ".")
    return text


# -- loading ------------------------------------------------------------------------------------
def checkpoint_stamp(ref: str) -> tuple[str, tuple[int, ...]]:
    """(folder, file times and sizes): a model is reloaded when its files change on disk."""
    folder = resolve_checkpoint(ref)
    stats = []
    for name in (WEIGHTS, CONFIG):
        file = folder / name
        if file.is_file():
            info = file.stat()
            stats += [info.st_mtime_ns, info.st_size]
    return str(folder), tuple(stats)


@st.cache_resource(show_spinner="Loading the model…", max_entries=16)
def _load(folder: str, stamp: tuple[int, ...]) -> Checkpoint:
    return load_checkpoint(folder)


def load_model(ref: str) -> Checkpoint:
    """The checkpoint behind a picker reference, loaded once per process (raises
    ``CheckpointError`` with the loader's one-line message)."""
    folder, stamp = checkpoint_stamp(ref)
    return _load(folder, stamp)


@st.cache_data(ttl=15, show_spinner=False)
def _shipped() -> list[dict[str, Any]]:
    return [info.to_json() for info in shipped_checkpoints()]


def shipped_models() -> list[dict[str, Any]]:
    """Shipped checkpoints as dicts (name, model, dataset, latent_dims, path, data_kind, ...), in
    the order of their recipes (the 2-D VAE first), then any others by name."""
    from vizvae.train.recipes import SHIPPED_RECIPES

    order = {name: i for i, name in enumerate(SHIPPED_RECIPES)}
    return sorted(_shipped(), key=lambda info: (order.get(info["name"], len(order)), info["name"]))


def current_ref() -> str | None:
    return st.session_state.get(MODEL_KEY)


# -- the picker -------------------------------------------------------------------------------
def _select(ref: str) -> None:
    st.session_state[MODEL_KEY] = ref
    st.session_state.pop(ERROR_KEY, None)


def _adopt(path: str | Path, how: str) -> bool:
    """Load a user checkpoint; on success add it to the picker and select it, else keep the
    current model and remember the loader's message for the page to show. On a closed server
    (``paths_open`` false) only folders under ``visitor_roots`` are looked at; any other path gets
    ``CLOSED_PATH_MESSAGE``, whatever is or is not there."""
    if not paths_open():
        inside = allowed_folder(str(path), visitor_roots())
        if inside is None:
            st.session_state[ERROR_KEY] = CLOSED_PATH_MESSAGE
            return False
        path = inside
    try:
        folder = resolve_checkpoint(str(path))
        checkpoint = load_model(str(folder))
        if not paths_open() and not data_source_allowed(checkpoint.config, data_dirs()):
            st.session_state[ERROR_KEY] = CLOSED_DATA_MESSAGE
            return False
    except VizvaeError as err:
        st.session_state[ERROR_KEY] = shown_error(err, path)
        return False
    except Exception as err:  # a loader bug must not take the app down with it
        st.session_state[ERROR_KEY] = shown_error(f"{path}: could not be loaded ({type(err).__name__})", path)
        return False
    ref = str(Path(folder).resolve())
    st.session_state.setdefault(USER_MODELS_KEY, {})[ref] = f"{checkpoint.name} ({how})"
    _select(ref)
    return True


def _open_path() -> None:
    path = (st.session_state.get(PATH_KEY) or "").strip()
    if not path:
        st.session_state[ERROR_KEY] = "Type the path of a checkpoint folder (holding model.safetensors and config.json)."
        return
    _adopt(path, "folder")


def _uploaded_pair(files: Iterable[Any]) -> dict[str, bytes]:
    """Uploaded files by the name the checkpoint folder needs: *.safetensors -> model.safetensors,
    *.json -> config.json, and an imported model's programs *encoder*.pt2 / *decoder*.pt2 ->
    encoder.pt2 / decoder.pt2 (the last of each wins). Nothing else is kept: an adapter's Python
    can never arrive by upload."""
    pair = {}
    for file in files or []:
        name = file.name.lower()
        if name.endswith(".safetensors"):
            pair[WEIGHTS] = file.getvalue()
        elif name.endswith(".json"):
            pair[CONFIG] = file.getvalue()
        elif name.endswith(".pt2") and ("encoder" in name) != ("decoder" in name):
            pair["encoder.pt2" if "encoder" in name else "decoder.pt2"] = file.getvalue()
    return pair


def _open_upload() -> None:
    pair = _uploaded_pair(st.session_state.get(UPLOAD_KEY))
    if len(pair) < 2:
        return  # the sidebar says which file is still missing
    try:
        folder = session_uploads().save(pair)  # a fresh folder inside the session's private one
    except VizvaeError as err:
        st.session_state[ERROR_KEY] = str(err)
        return
    _adopt(folder, "uploaded")


def model_picker() -> str | None:
    """The sidebar picker. Returns the selected reference (None when there is no model at all)."""
    _sweep_once()  # the first run of a server process: upload folders older than a day are a killed server's
    shipped = [info["name"] for info in shipped_models()]
    user = st.session_state.setdefault(USER_MODELS_KEY, {})
    if MODEL_KEY not in st.session_state:
        wanted = st.query_params.get(MODEL_PARAM)
        if wanted and wanted not in shipped and wanted not in user:
            _adopt(wanted, "folder")  # a shared URL naming a folder on this machine
        elif wanted:
            st.session_state[MODEL_KEY] = wanted
    options = shipped + [ref for ref in user if ref not in shipped]
    if st.session_state.get(MODEL_KEY) not in options:
        st.session_state[MODEL_KEY] = options[0] if options else None
    with st.sidebar:
        if options:
            labels = dict(st.session_state[USER_MODELS_KEY])  # a snapshot: AppTest calls format_func outside a run
            st.selectbox("Model", options, key=MODEL_KEY, format_func=lambda ref: labels.get(ref, ref),
                         on_change=lambda: st.session_state.pop(ERROR_KEY, None),
                         help="Shipped checkpoints from assets/models/, plus the ones you open below.")
        else:
            st.info("No checkpoint yet: open one below, or build the shipped ones with `python -m vizvae rebuild`.")
        with st.expander("Open another checkpoint", expanded=False):
            st.text_input("Checkpoint folder", key=PATH_KEY, placeholder="runs/vae2d",
                          help="A folder holding model.safetensors and config.json.")
            st.button("Open folder", key=PATH_BUTTON_KEY, on_click=_open_path)
            uploaded = st.file_uploader("…or upload model.safetensors and config.json", type=["safetensors", "json", "pt2"],
                                        accept_multiple_files=True, key=UPLOAD_KEY, on_change=_open_upload,
                                        help="An imported exported-program model also needs its encoder.pt2 and "
                                        "decoder.pt2 (audited before loading: no code from them runs).")
            missing = {WEIGHTS, CONFIG} - set(_uploaded_pair(uploaded))
            if uploaded and missing:
                st.caption(f"Still needed: {', '.join(sorted(missing))}.")  # fixed names, not the upload's
    ref = st.session_state.get(MODEL_KEY)
    public = public_ref(ref) if ref is not None else None
    if public is not None:
        st.query_params[MODEL_PARAM] = public
    else:
        st.query_params.pop(MODEL_PARAM, None)
    if st.session_state.get(ERROR_KEY):
        st.error(plain(st.session_state[ERROR_KEY]), icon=":material/error:")
    return ref


# -- what a page needs --------------------------------------------------------------------------
def requirement_problem(model: str, latent_dim: int, data_kind: str, kinds: Iterable[str] | None = None,
                        min_latent: int | None = None, max_latent: int | None = None,
                        data_kinds: Iterable[str] | None = None) -> str | None:
    """Why a model does not fit a page's needs, or None when it fits."""
    if kinds is not None and model not in set(kinds):
        kinds = list(kinds)
        named = kinds[0] if len(kinds) == 1 else f"{', '.join(kinds[:-1])} or {kinds[-1]}"
        return f"a {named} model (this one is a {model})"
    if min_latent is not None and latent_dim < min_latent:
        return f"at least {min_latent} latent dimensions (this one has {latent_dim})"
    if max_latent is not None and latent_dim > max_latent:
        exact = min_latent == max_latent
        return (f"{'exactly' if exact else 'at most'} {max_latent} latent dimensions (this one has {latent_dim})")
    if data_kinds is not None and data_kind not in set(data_kinds):
        return f"a model of {' or '.join(sorted(data_kinds))} data (this one models {data_kind} data)"
    return None


def compatible_shipped(**needs: Any) -> list[dict[str, Any]]:
    return [info for info in shipped_models()
            if requirement_problem(info["model"], sum(info["latent_dims"]), info["data_kind"], **needs) is None]


def offer_compatible(purpose: str, problem: str, **needs: Any) -> None:
    """Say what is needed and offer the shipped models that have it (one button each)."""
    st.warning(f"{purpose} needs {problem}.", icon=":material/swap_horiz:")
    options = compatible_shipped(**needs)
    if options:
        cols = st.columns(min(4, len(options)))
        for col, info in zip(cols * len(options), options):
            col.button(f"Switch to {info['name']}", key=f"switch_to_{info['name']}_{purpose}",
                       on_click=_select, args=(info["name"],))
    else:
        st.info("No shipped model fits; train one with `python -m vizvae train` and open it from the sidebar.")


def require_model(kinds: Iterable[str] | None = None, min_latent: int | None = None, max_latent: int | None = None,
                  data_kinds: Iterable[str] | None = None, purpose: str = "This page", stop: bool = True) -> Checkpoint | None:
    """The selected checkpoint if it fits the page; else explain and offer compatible shipped
    models, then ``st.stop()`` (or return None with ``stop=False``, for one section)."""
    ref = current_ref()
    if ref is None:
        st.info("Pick or open a model in the sidebar.")
        return _halt(stop)
    try:
        checkpoint = load_model(ref)
    except VizvaeError as err:
        st.error(plain(shown_error(err, ref)), icon=":material/error:")
        return _halt(stop)
    needs = dict(kinds=kinds, min_latent=min_latent, max_latent=max_latent, data_kinds=data_kinds)
    problem = requirement_problem(checkpoint.config["model"], checkpoint.model.latent_dim,
                                  (checkpoint.config.get("dataset") or {}).get("kind", "image"), **needs)
    if problem:
        offer_compatible(purpose, problem, **needs)
        return _halt(stop)
    return checkpoint


def _halt(stop: bool) -> None:
    if stop:
        st.stop()
    return None


# -- URL state ------------------------------------------------------------------------------------
def _start_from_url(key: str, param: str, default: Any, parse: Callable[[str], Any] = str,
                     valid: Callable[[Any], bool] = lambda value: True) -> None:
    """Give widget ``key`` its starting value before it is drawn: the URL's ``?param=`` when
    present and valid, else the value it had when the user last left this page, else ``default``."""
    saved = f"_saved_{key}"
    if key in st.session_state and valid(st.session_state[key]):
        return
    value = st.session_state.get(saved, default)
    raw = st.query_params.get(param)
    if raw is not None and saved not in st.session_state:
        try:
            parsed = parse(raw)
            if valid(parsed):
                value = parsed
        except (TypeError, ValueError):
            pass
    st.session_state[key] = value if valid(value) else default


def _remember_in_url(key: str, param: str, format: Callable[[Any], str] = str) -> None:
    """After drawing widget ``key``: write its value to the URL and keep it for the next visit."""
    value = st.session_state.get(key)
    st.session_state[f"_saved_{key}"] = value
    if value is None or value == "" or value == []:
        st.query_params.pop(param, None)
    else:
        st.query_params[param] = format(value)


def url_bound(widget: Callable[..., Any], label: str, *, key: str, default: Any, param: str | None = None,
              parse: Callable[[str], Any] = str, valid: Callable[[Any], bool] = lambda value: True,
              format: Callable[[Any], str] = str, **widget_args: Any) -> Any:
    """Draw a widget whose value lives in the URL, in one call: ``?param=`` (or the value the user
    left the page with, or ``default``) starts it, and its value goes back to the URL.

    ``parse`` turns the query text into a value (a ValueError or TypeError falls back to the
    default), ``valid`` rejects values the widget cannot take, ``format`` writes it back."""
    param = param or key
    _start_from_url(key, param, default, parse, valid)
    value = widget(label, key=key, **widget_args)
    _remember_in_url(key, param, format)
    return value


def url_value(key: str, *, default: Any, param: str | None = None, parse: Callable[[str], Any] = str,
              valid: Callable[[Any], bool] = lambda value: True, remember: bool = False) -> Any:
    """The value of a URL-bound widget that this view does not draw (or draws later, after
    controls that read it): started like ``url_bound`` and kept for when the widget is drawn;
    with ``remember`` it also stays in the URL."""
    param = param or key
    _start_from_url(key, param, default, parse, valid)
    if remember:
        _remember_in_url(key, param)
    return st.session_state[key]


def parse_indices(text: str, n: int) -> list[int]:
    """'3, 17 42' -> [3, 17, 42]: the valid row indices, in order, without repeats."""
    seen: list[int] = []
    for token in text.replace(",", " ").split():
        try:
            index = int(token)
        except ValueError:
            continue
        if 0 <= index < n and index not in seen:
            seen.append(index)
    return seen


def selection_indices(event: Any) -> list[int]:
    """Row indices from a plotly selection event: ``customdata[0]`` when the figure carries it
    (vizvae's projection figures do), else ``point_index`` of the first trace."""
    try:
        points = event["selection"]["points"]
    except (KeyError, TypeError):
        return []
    indices: list[int] = []
    for point in points:
        custom = point.get("customdata")
        if custom is not None and len(custom) > 0:
            index = int(custom[0])
        elif point.get("curve_number", 0) == 0 and "point_index" in point:
            index = int(point["point_index"])
        else:
            continue  # e.g. the ring marking already-selected points
        if index not in indices:
            indices.append(index)
    return indices


def once_per_upload(slot: str, upload: Any, settings: tuple, read: Callable[[bytes], Any]) -> Any:
    """``read(upload's bytes)`` computed once per upload and ``settings``, then kept in the session
    under ``slot``: a rerun (any widget) does not decode or parse the file again. A ``VizvaeError``
    is kept and returned (not raised) the same way, so a refused file is not re-read either."""
    key = (upload.file_id, settings)
    kept = st.session_state.get(slot)
    if kept is None or kept[0] != key:
        try:
            kept = key, read(upload.getvalue())
        except VizvaeError as err:
            kept = key, err
        st.session_state[slot] = kept
    return kept[1]


def download_png(label: str, png: bytes, file_name: str, key: str) -> None:
    st.download_button(label, png, file_name=file_name, mime="image/png", key=key, on_click="ignore",
                       icon=":material/download:")


def download_csv(label: str, csv: bytes, file_name: str, key: str) -> None:
    st.download_button(label, csv, file_name=file_name, mime="text/csv", key=key, on_click="ignore",
                       icon=":material/download:")


# -- long work ------------------------------------------------------------------------------------
def job_runner() -> JobRunner:
    """This session's background jobs (one per name)."""
    if JOBS_KEY not in st.session_state:
        st.session_state[JOBS_KEY] = JobRunner()
    return st.session_state[JOBS_KEY]


def background_task(name: str, *, key: Any, work: Callable[..., Any], args: tuple = (),
                    kwargs: dict | None = None, label: str = "Working", units: float | None = None,
                    seconds_per_unit: float | None = None, share: bool = True,
                    caps: dict[str, float] | None = None) -> Any | None:
    """Run ``work(report, *args, **kwargs)`` in a background thread and return its result once it
    is done; until then (and after a cancel or a failure, which are shown) return None.

    ``key`` holds the inputs (hashable, compared with ``==``): the same key finds the same job,
    another key cancels the old job and starts a new one. While it runs, a fragment redraws a
    progress bar with the time left and a Cancel button every ``JOB_POLL_S``, so the rest of the
    page stays usable, and reruns the page when the job ends. ``units`` (the work's size) times
    the rate measured on this name's earlier jobs (or ``seconds_per_unit`` before there is one)
    estimates its time: over the cap (``vizvae.jobs.max_job_seconds``) it is refused before it
    starts. With ``share`` a finished result is kept for every session (``vizvae.jobs.RESULTS``):
    the key must then name everything the result depends on. The work runs outside the script
    thread: give it models and arrays, never Streamlit calls or cached functions.

    ``caps`` names the expensive knobs of this work and their values (``vizvae.server.CAPS``:
    ``samples=64``, ``chain_transitions=200 * 10``): one over this server's cap is refused with a
    message naming the cap, before anything starts."""
    try:
        check_caps(**(caps or {}))
    except CapExceeded as err:
        job_runner().forget(name)
        st.warning(f"{err}.", icon=":material/block:")
        return None
    if share and (name, key) in RESULTS:
        return RESULTS.get(name, key)
    runner = job_runner()
    job = runner.get(name)
    if job is None or job.key != key:
        try:
            check_cap(runner.estimate(name, units, seconds_per_unit), what=label)
        except JobRefused as err:
            runner.forget(name)
            st.warning(f"{err}.", icon=":material/timer_off:")
            return None
        leave_a_core_for_the_page()
        job = runner.submit(name, key, work, args, kwargs, units=units)
    return _job_outcome(name, job, label, share)


_cores_set = False


def leave_a_core_for_the_page() -> None:
    """Before the first background job of this process: torch's intra-op threads one fewer than the
    cores (at least one), so that a job working flat out still leaves a core to the page's own thread
    and to the browser on the same machine — a click on Cancel is answered at once, not after the
    job's current chunk. Once per process (torch's setting is global)."""
    global _cores_set
    if _cores_set:
        return
    import torch

    torch.set_num_threads(max(1, min(torch.get_num_threads(), (os.cpu_count() or 2) - 1)))
    _cores_set = True


def restart_task(name: str) -> None:
    """Forget the name's cancelled or failed job, so that its next ``background_task`` starts it again."""
    job = job_runner().get(name)
    if job is not None and job.state in ("cancelled", "failed"):
        job_runner().forget(name)


def _job_outcome(name: str, job: Any, label: str, share: bool) -> Any | None:
    """The result of a finished job; else its progress, its failure or its cancel, drawn."""
    state = job.state
    if state == "done":
        if share:
            RESULTS.put(name, job.key, job.result())
        return job.result()
    if state == "failed":
        st.error(f"{label} failed: {type(job.error).__name__}: {plain(shown_error(job.error, ''))}",
                 icon=":material/error:")
        if paths_open():  # the traceback holds server paths: only for the person who owns them
            with st.expander("Traceback"):
                st.code(job.error_trace, language=None)
    elif state == "cancelled" and job.finished:
        _cancelled_note(name, label, job)
    else:
        _job_progress(name, label)
    return None


def _cancelled_note(name: str, label: str, job: Any) -> None:
    with st.container(key=f"{name}_cancelled"):
        st.info(f"{label}: {job.reason}.", icon=":material/cancel:")
        st.button("Run again", key=f"{name}_again", on_click=job_runner().forget, args=(name,),
                  icon=":material/replay:")


@st.fragment(run_every=JOB_POLL_S)
def _job_progress(name: str, label: str) -> None:
    """The running job's bar, time left and Cancel button; reruns the page once the job ends. A
    cancel is answered here at once (a fragment's rerun, not the page's), and the page reruns when
    the work has stopped at the end of its chunk. A cancelled job stays answered here, finished
    or not: there is nothing new for the page, and a whole-page rerun would delay the answer."""
    job = job_runner().get(name)
    if job is not None and job.state == "cancelled":
        _cancelled_note(name, label, job)
        return
    if job is None or job.state != "running":
        st.rerun()
    progress = job.progress()
    with st.container(key=f"{name}_progress"):
        st.progress(progress.fraction, text=f"{label}: {progress.text}")
        st.button("Cancel", key=f"{name}_cancel", on_click=job.cancel, icon=":material/cancel:")


# -- warming the process ------------------------------------------------------------------------------------------
# What the pages beyond the first import: torch alone takes seconds. The first page needs none of it,
# so it is drawn first and these are imported afterwards, once per process, while the visitor reads.
PRELOADED = ("torch", "plotly.graph_objects", "vizvae.models", "vizvae.inference.posterior",
             "vizvae.inference.imputers", "vizvae.viz.posterior",
             "streamlit.emojis")  # compiled on a page's first icon or alert: 0.2 s of regular expressions
_preload_lock = threading.Lock()
_preload_thread: threading.Thread | None = None


def _import_all(names: Iterable[str]) -> None:
    for name in names:
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001 - a page that needs it will report the error itself
            pass
    try:  # the data of most shipped models, read from its text file once per process (0.25 s)
        from vizvae.data import load_dataset

        load_dataset("mnist", binarize=True)
    except Exception:  # noqa: BLE001 - as above
        pass


def wait_for_preload() -> None:
    """Let a running preload finish before a page imports its own modules. Two threads importing
    overlapping modules (torch, pandas, plotly) at once can meet in Python's import deadlock
    detection, which hands one of them a half-initialised module ("partially initialized module
    'pandas' has no attribute 'Series'")."""
    thread = _preload_thread
    if thread is not None and thread.is_alive() and thread is not threading.current_thread():
        thread.join()


def preload_in_background(names: Iterable[str] = PRELOADED) -> threading.Thread:
    """Import ``names`` in a daemon thread, once per process (later calls return the same thread)."""
    global _preload_thread
    with _preload_lock:
        if _preload_thread is None:
            _preload_thread = threading.Thread(target=_import_all, args=(tuple(names),), name="vizvae-preload",
                                               daemon=True)
            _preload_thread.start()
        return _preload_thread

