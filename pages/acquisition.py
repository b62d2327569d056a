"""Acquisition: sequential active information acquisition (SAIA, thesis §5.3) on one row of a mixed-type
table, one feature at a time. Start with nothing observed; at each step every still-missing feature gets a
reward — the sampling-based I(y; x_i | x_O) of eq. (5.13), EDDI's encoder KL, or a random score — and the
best one is acquired (its true value revealed). The page shows the rewards, p(y | x_O) narrowing around the
truth, and the imputations of what is still missing; then the three strategies on the same row, and the
dataset-level curves of Fig. 5.5 from every shipped mixed model of the same table.

A whole run (all D + 1 steps) is computed once per (model, row, strategy, draws, seed) and cached; the
stepper only picks step t out of it.

Widget / session-state keys (used by the tests): ``acq_source`` (``test`` / ``typed`` / ``upload``),
``acq_row``, ``acq_value_<j>`` (typed value of feature j; ``acq_value_y`` the target), ``acq_fill`` /
``acq_clear``, ``acq_upload``, ``acq_upload_row``, ``acq_strategy``, ``acq_samples``, ``acq_seed``,
``acq_step`` (the stepper, moved by the buttons ``acq_back`` / ``acq_forward`` / ``acq_reset``), ``acq_play``
(auto-play), ``acq_curve_models``, ``acq_curve_strategies``, ``acq_curve_metric``.
Charts: ``acq_rewards``, ``acq_target``, ``acq_imputed``, ``acq_compare``, ``acq_dataset_curves``; download
``acq_step_csv``.
URL: ``source``, ``row``, ``urow``, ``strategy``, ``samples``, ``seed``, ``t``.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st
import torch

from pages._common import (
    checkpoint_stamp, current_ref, download_csv, load_model, offer_compatible, remember_in_url, require_model,
    run_through_entrypoint, shipped_models, url_widget_state,
)
from vizvae.checkpoint import WEIGHTS, checkpoint_dataset
from vizvae.data.schema import table_to_raw
from vizvae.data.user import rows_from_csv, rows_from_frame
from vizvae.errors import VizvaeError
from vizvae.evaluation.saia import CACHE_FILE, read_saia_cache
from vizvae.inference.acquisition import STRATEGIES, STRATEGY_LABELS, AcquisitionRun, run_acquisition
from vizvae.viz.acquisition import (
    acquisition_order, acquisition_order_table, class_frequencies, class_probability_figure,
    feature_ranges, format_value, imputation_figure, imputation_table, raw_errors, raw_step,
    reward_figure, saia_areas_table, saia_curves_figure, strategy_comparison_figure, target_histogram_figure,
    target_range,
)
from vizvae.viz.tables import csv_bytes

run_through_entrypoint()  # before anything is drawn: see its docstring

MIXED_KINDS = ("vaem", "miwaem", "hvaem", "hmcvaem", "hhvaem")
SOURCES = {"test": "a test row", "typed": "type values", "upload": "upload a CSV"}
SAMPLE_COUNTS = (20, 50, 100, 200, 500)
REWARD_LABELS = {"mi": "Î(y; x_i | x_O) (nats)", "kl": "EDDI reward (nats)", "random": "random score"}
PLAY_INTERVAL = 1.2  # seconds between auto-play steps
PLAY_NEXT_KEY = "_acq_play_next"
TYPED_KEY = "_acq_typed"  # typed values, kept while the text boxes are not drawn
SHOWN_PROBLEMS = 12


# -- cached numbers ----------------------------------------------------------------------------------------------
@st.cache_data(show_spinner="Acquiring feature after feature: every step samples the posterior and scores the "
               "missing features…", max_entries=64)
def _run(ref: str, stamp: tuple, x: np.ndarray, available: np.ndarray, y: float | None, strategy: str,
         samples: int, seed: int) -> AcquisitionRun:
    """The whole run over all D + 1 steps for one row (model-space ``x`` (D,), NaN where unknown)."""
    model = load_model(ref).model
    device = model.device
    generator = torch.Generator(device=device).manual_seed(seed)
    x_row = torch.as_tensor(np.nan_to_num(x), dtype=torch.float32, device=device)[None]
    y_row = None if y is None else torch.tensor([y], dtype=torch.float32, device=device)
    return run_acquisition(model, x_row, y_row, strategy, n_samples=samples,
                           available=torch.as_tensor(available, device=device)[None], generator=generator)


def _cache_stamp(folder: str) -> tuple:
    stamps = []
    for name in (WEIGHTS, CACHE_FILE):
        file = Path(folder) / name
        stamps.append((file.stat().st_mtime_ns, file.stat().st_size) if file.is_file() else None)
    return tuple(stamps)


@st.cache_data(show_spinner=False, max_entries=64)
def _saia_cache(folder: str, stamp: tuple) -> dict | None:
    """A model's saia.json if it belongs to its weights (re-read when either file changes)."""
    return read_saia_cache(folder)


# -- the model -----------------------------------------------------------------------------------------------------
PURPOSE = "Sequential feature acquisition"
ref = current_ref()
try:
    selected_kind = load_model(ref).config["model"] if ref is not None else None
except VizvaeError:
    selected_kind = None  # require_model says what went wrong
if selected_kind is not None and selected_kind not in MIXED_KINDS:
    offer_compatible(PURPOSE, f"a mixed-type model ({', '.join(MIXED_KINDS)}; this one is a {selected_kind})",
                     kinds=MIXED_KINDS)
    st.stop()
checkpoint = require_model(kinds=MIXED_KINDS, purpose=PURPOSE)
stamp = checkpoint_stamp(ref)
model = checkpoint.model
if not model.has_predictor:
    st.warning(f"{checkpoint.name} has no predictor of a target, so there is nothing to acquire features for.",
               icon=":material/swap_horiz:")
    st.stop()
try:
    dataset = checkpoint_dataset(checkpoint.config)
except VizvaeError as err:
    st.error(str(err), icon=":material/error:")
    st.stop()
schema, target = list(dataset.schema), dataset.target
names = list(dataset.feature_names)
kinds = [column.kind for column in schema]
d = len(names)
n_test = len(dataset.x_test)
target_name = target.name
data_raw = table_to_raw(dataset.x_train, schema)  # the axes of the imputation panels

st.title("Acquisition")
st.caption(f"**{checkpoint.name}** on **{dataset.name}**: {d} features → {target_name} "
           f"({'a label' if target.is_discrete else 'a real value'}). Start with nothing observed and acquire one "
           "feature per step, the one with the highest reward, until all are known (SAIA, thesis §5.3).")


# -- which row ---------------------------------------------------------------------------------------------------
def _typed_from_test(row: int) -> dict[str, str]:
    raw = table_to_raw(dataset.x_test[row], schema)
    values = {f"acq_value_{j}": format_value(raw[j], schema[j].is_discrete) for j in range(d)}
    values["acq_value_y"] = format_value(float(target.to_raw(dataset.y_test[row:row + 1])[0]),
                                         target.is_discrete)
    return values


def _set_typed(values: dict[str, str]) -> None:
    """The typed row's boxes, remembered with the model they belong to (another model has other columns)."""
    st.session_state[TYPED_KEY] = {"ref": ref, "values": values}
    st.session_state.update(values)


def _fill_typed(row: int) -> None:
    _set_typed(_typed_from_test(row))


def _clear_typed() -> None:
    _set_typed({key: "" for key in _typed_from_test(0)})


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:]


def _column_help(column) -> str:
    if column.is_discrete:
        return f"{column.kind}: one of {', '.join(f'{c:g}' for c in column.categories)}. Leave empty if unknown."
    if column.kind == "loggaussian":
        return "loggaussian: a number ≥ 0. Leave empty if unknown."
    return "gaussian: any number. Leave empty if unknown."


def _show_problems(problems, notes) -> None:
    for problem in problems[:SHOWN_PROBLEMS]:
        st.warning(f"{problem} — treated as missing.", icon=":material/edit_off:")
    if len(problems) > SHOWN_PROBLEMS:
        st.warning(f"… and {len(problems) - SHOWN_PROBLEMS} more cells that could not be used (treated as missing).")
    for note in notes:
        st.info(_sentence(note) + ".", icon=":material/info:")


controls = st.columns([1.4, 1.2, 1.1, 1, 0.8])
url_widget_state("acq_source", "source", "test", valid=lambda s: s in SOURCES)
controls[0].radio("Row", list(SOURCES), key="acq_source", format_func=SOURCES.get, horizontal=True)
source = st.session_state["acq_source"]
url_widget_state("acq_row", "row", 0, parse=int, valid=lambda i: isinstance(i, int) and 0 <= i < n_test)
url_widget_state("acq_strategy", "strategy", "mi", valid=lambda s: s in STRATEGIES)
controls[2].selectbox("Strategy", STRATEGIES, key="acq_strategy", format_func=STRATEGY_LABELS.get,
                      help="Which reward picks the next feature. Predictions always use the model's own sampler.")
url_widget_state("acq_samples", "samples", 200, parse=int, valid=lambda s: s in SAMPLE_COUNTS)
controls[3].select_slider("Draws per step", SAMPLE_COUNTS, key="acq_samples",
                          help="S joint draws of (x, y) per step: the histogram estimator (5.13) and p(y | x_O).")
url_widget_state("acq_seed", "seed", 0, parse=int, valid=lambda s: isinstance(s, int) and 0 <= s <= 9999)
controls[4].number_input("Seed", 0, 9999, step=1, key="acq_seed")

row_label = ""
x_model = y_model = truth_raw = y_raw = None
if source == "test":
    controls[1].number_input("Test row", 0, n_test - 1, step=1, key="acq_row", help=f"0–{n_test - 1}")
    remember_in_url("acq_row", "row")
    row = int(st.session_state["acq_row"])
    x_model = dataset.x_test[row].astype(np.float32)
    y_model = float(dataset.y_test[row])
    row_label = f"test row {row}"
elif source == "typed":
    last_row = int(st.session_state.get("_saved_acq_row", st.session_state.get("acq_row", 0)))
    if (st.session_state.get(TYPED_KEY) or {}).get("ref") != ref:
        _fill_typed(last_row)  # first visit, or a model with other columns
    typed = st.session_state[TYPED_KEY]["values"]
    for key, value in typed.items():
        st.session_state.setdefault(key, value)
    controls[1].button(f"Fill in test row {last_row}", key="acq_fill", on_click=_fill_typed, args=(last_row,))
    controls[1].button("Clear all", key="acq_clear", on_click=_clear_typed)
    st.caption("Values in raw units, as in the data. An empty cell is a feature that cannot be acquired; an "
               f"empty {target_name} means the truth is unknown (no error or NLL).")
    boxes = st.columns(7)
    cells = [(f"acq_value_{j}", column) for j, column in enumerate(schema)] + [("acq_value_y", target)]
    for i, (key, column) in enumerate(cells):
        label = column.name if key != "acq_value_y" else f"{column.name} (target)"
        boxes[i % 7].text_input(label, key=key, help=_column_help(column))
        typed[key] = st.session_state[key]
    frame = pd.DataFrame([{column.name: st.session_state[key] for key, column in cells}], dtype=str)
    typed_rows = rows_from_frame(frame, schema, target)
    _show_problems(typed_rows.problems, typed_rows.notes)
    x_model, y_model = typed_rows.x[0], float(typed_rows.y[0])
    row_label = "the typed row"
else:
    upload = controls[1].file_uploader("CSV of rows", type=["csv"], key="acq_upload",
                                       help=f"A header row naming the columns ({', '.join(names[:3])}, …, "
                                            f"and optionally {target_name}); empty cells are unknown.")
    if upload is None:
        st.info(f"Upload a CSV with a header row naming some of the model's columns: {', '.join(names)}, and "
                f"optionally the target {target_name}. Values in raw units; empty cells are missing.")
    else:
        try:
            table_rows = rows_from_csv(upload.getvalue(), schema, target)
        except VizvaeError as err:
            st.error(f"{upload.name}: {err}", icon=":material/error:")
            table_rows = None
        except Exception as err:  # noqa: BLE001 - whatever the file holds, the page carries on
            st.error(f"{upload.name}: could not be read ({type(err).__name__}: {err})", icon=":material/error:")
            table_rows = None
        if table_rows is not None:
            _show_problems(table_rows.problems, table_rows.notes)
            n_rows = len(table_rows)
            url_widget_state("acq_upload_row", "urow", 1, parse=int,
                             valid=lambda i: isinstance(i, int) and 1 <= i <= n_rows)
            if n_rows > 1:
                st.number_input(f"Row of {upload.name} (1–{n_rows})", 1, n_rows, step=1, key="acq_upload_row")
                remember_in_url("acq_upload_row", "urow")
            chosen = int(st.session_state["acq_upload_row"]) - 1
            x_model, y_model = table_rows.x[chosen], float(table_rows.y[chosen])
            row_label = f"row {chosen + 1} of {upload.name}"
for key, param in (("acq_source", "source"), ("acq_strategy", "strategy"), ("acq_samples", "samples"),
                   ("acq_seed", "seed")):
    remember_in_url(key, param)

strategy = st.session_state["acq_strategy"]
samples = int(st.session_state["acq_samples"])
seed = int(st.session_state["acq_seed"])


# -- the step view -------------------------------------------------------------------------------------------------
def _move(delta: int, last: int) -> None:
    st.session_state["acq_step"] = int(min(max(st.session_state.get("acq_step", 0) + delta, 0), last))


def _reset() -> None:
    st.session_state["acq_step"] = 0
    st.session_state["acq_play"] = False


def step_view(run: AcquisitionRun, last: int) -> int:
    """The stepper and step t's charts; returns t."""
    st.header("Step through")
    if st.session_state.pop(PLAY_NEXT_KEY, False) and st.session_state.get("acq_play"):
        st.session_state["acq_step"] = min(int(st.session_state.get("acq_step", 0)) + 1, last)
    url_widget_state("acq_step", "t", 0, parse=int, valid=lambda t: isinstance(t, int) and 0 <= t <= last)
    if st.session_state.get("acq_play") and st.session_state["acq_step"] >= last:
        st.session_state["acq_play"] = False  # played to the end
    buttons = st.columns([1, 1, 1, 1.2, 4])
    buttons[0].button("Back", key="acq_back", on_click=_move, args=(-1, last), icon=":material/skip_previous:",
                      disabled=st.session_state["acq_step"] <= 0)
    buttons[1].button("Step", key="acq_forward", on_click=_move, args=(1, last), icon=":material/skip_next:",
                      disabled=st.session_state["acq_step"] >= last, type="primary")
    buttons[2].button("Reset", key="acq_reset", on_click=_reset, icon=":material/restart_alt:")
    buttons[3].toggle("Auto-play", key="acq_play", help=f"One step every {PLAY_INTERVAL:g} s until all are acquired.")
    buttons[4].slider("Features acquired", 0, last, key="acq_step")
    remember_in_url("acq_step", "t")
    t = int(st.session_state["acq_step"])

    now = raw_step(run, t, schema, target)
    order = acquisition_order(run)
    revealed = format_value(truth_raw[now.acquired], schema[now.acquired].is_discrete) if now.acquired >= 0 else None
    metrics = st.columns(5)
    metrics[0].metric("Acquired", f"{t} of {last}")
    metrics[1].metric("Just acquired", names[now.acquired] if now.acquired >= 0 else "–")
    metrics[2].metric("Its true value", revealed or "–", help="Revealed to the model when it is acquired.")
    prediction = format_value(now.y_point, target.is_discrete)
    metrics[3].metric(f"Predicted {target_name}", prediction,
                      help="The most probable class." if target.is_discrete else
                      "The mean of the predictor's means over the draws (in model space), in raw units.")
    if y_raw is not None:
        wrong = bool(run.error[t, 0]) if target.is_discrete else None
        shown = ("wrong" if wrong else "right") if target.is_discrete else format_value(abs(now.y_point - y_raw))
        metrics[4].metric(f"Error (true {target_name} = {format_value(y_raw, target.is_discrete)})", shown,
                          help=f"−log p(y | x_O) = {now.nll:.3f} (model units)")

    left, right = st.columns(2)
    with left:
        if t == 0:
            note = "before the first step: the highest will be acquired first"
        else:
            note = f"step {t}: acquired {names[now.acquired]}"
        st.plotly_chart(reward_figure(names, now.rewards, now.acquired, now.observed, revealed,
                                      REWARD_LABELS[strategy], title=f"Rewards of the missing features — {note}"),
                        key="acq_rewards")
    with right:
        title = f"p({target_name} | x_O) after {t} acquired"
        if target.is_discrete:
            probabilities = class_frequencies(run.y_samples[t, 0], target.n_categories)
            classes = [format_value(c, True) for c in target.categories]
            truth_code = int(y_model) if y_raw is not None else None
            figure = class_probability_figure(classes, probabilities, truth_code, int(run.y_point[t, 0]),
                                              target_name, title=title)
        else:
            x_range = target_range(target.to_raw(run.y_samples[:, 0]), y_raw)
            figure = target_histogram_figure(now.y_samples, x_range, y_raw, now.y_point, target_name=target_name,
                                             title=title)
        st.plotly_chart(figure, key="acq_target")
    truth_shown = np.where(available, truth_raw, np.nan)
    st.plotly_chart(imputation_figure(names, now.centre, now.low, now.high, now.observed,
                                      feature_ranges(data_raw, truth_shown), truth_shown, now.acquired,
                                      title="Features: observed (✓), or imputed with 5–95 % intervals"),
                    key="acq_imputed")
    table = imputation_table(names, kinds, now, order, truth_shown)
    st.caption("Raw units, each axis spanning the training data. A missing feature shows the mean of "
               "p(x_j | x_O) in model space mapped back (for a category: the nearest one) and the 5 % and 95 % "
               "quantiles of its draws; the cross is its true value, hidden from the model.")
    with st.expander("As a table"):
        st.dataframe(table, hide_index=True)
        download_csv("Step table (CSV)", csv_bytes(table), f"{checkpoint.name}-acquisition-step{t}.csv",
                     key="acq_step_csv")
    return t


def comparison_view(t: int) -> None:
    st.header("Strategies on this row")
    try:
        runs = {s: _run(ref, stamp, x_model, available, y_arg, s, samples, seed) for s in STRATEGIES}
    except Exception as err:  # noqa: BLE001 - as for the chosen strategy's run
        st.error(f"The model could not run every strategy on {row_label} ({type(err).__name__}: {err}).",
                 icon=":material/error:")
        return
    orders = {s: acquisition_order(r) for s, r in runs.items()}
    if y_raw is not None:
        error_title = ("wrong class (1) or right (0)" if target.is_discrete
                       else f"|prediction − {target_name}| (raw units)")
        errors = {s: raw_errors(r, target, y_raw) for s, r in runs.items()}
        nlls = {s: r.y_nll[:, 0] for s, r in runs.items()}
        st.plotly_chart(strategy_comparison_figure(errors, nlls, STRATEGY_LABELS, error_title, current_step=t),
                        key="acq_compare")
        st.caption("The same row, the same draws per step and seed, three orders of acquisition. A good order "
                   "brings the error and the NLL down in the first few steps.")
    else:
        st.info(f"The {target_name} of {row_label} is unknown, so only the orders can be compared.")
    st.dataframe(acquisition_order_table(orders, names, STRATEGY_LABELS), hide_index=True)


# -- Fig. 5.5 -------------------------------------------------------------------------------------------------------
def dataset_view() -> None:
    st.header("Across the test set (Fig. 5.5)")
    models = {info["name"]: info["path"] for info in shipped_models()
              if info["model"] in MIXED_KINDS and info["dataset"] == dataset.name}
    commands = {name: name for name in models}  # how the CLI names each model
    if Path(checkpoint.path).resolve() not in {Path(folder).resolve() for folder in models.values()}:
        label = f"{checkpoint.name} (opened)"  # an opened model: compare it with the shipped ones
        models[label], commands[label] = str(checkpoint.path), str(checkpoint.path)
    caches, missing = {}, []
    for name, folder in models.items():
        cache = _saia_cache(folder, _cache_stamp(folder))
        if cache:
            caches[name] = cache
        else:
            missing.append(name)
    if caches:
        chosen = st.columns([2, 2, 1.2])
        if [m for m in st.session_state.get("acq_curve_models", []) if m not in caches]:
            del st.session_state["acq_curve_models"]
        models_shown = chosen[0].multiselect("Models", list(caches), default=list(caches), key="acq_curve_models")
        strategies_shown = chosen[1].multiselect("Strategies", STRATEGIES, default=list(STRATEGIES),
                                                 key="acq_curve_strategies", format_func=STRATEGY_LABELS.get)
        metric = chosen[2].radio("Curve", ("error", "nll"), key="acq_curve_metric", horizontal=True,
                                 format_func={"error": "error", "nll": "−log p(y | x_O)"}.get)
        error_name = next(iter(caches.values())).get("error", "error")
        if models_shown and strategies_shown:
            key = "curves" if metric == "error" else "nll_curves"
            curves = {m: caches[m].get(key, {}) for m in models_shown}
            se = {m: caches[m].get("curves_se", {}) for m in models_shown} if metric == "error" else None
            y_title = error_name if metric == "error" else "−log p(y | x_O)"
            st.plotly_chart(saia_curves_figure(curves, se, strategies_shown, STRATEGY_LABELS, y_title),
                            key="acq_dataset_curves")
        else:
            st.info("Pick at least one model and one strategy.")
        st.dataframe(saia_areas_table({m: caches[m] for m in models_shown}, STRATEGIES, STRATEGY_LABELS),
                     hide_index=True)
        st.caption(f"Mean ± s.e. over the test rows of the {error_name} after 0, 1, …, {d} acquired features. "
                   "Read from the saia.json beside each model's weights, which training writes; recompute one "
                   "with `python -m vizvae evaluate MODEL --task saia --json`.")
    if missing:
        lines = "\n".join(f"python -m vizvae evaluate {commands[name]} --task saia --json" for name in missing)
        st.info(f"No SAIA curves cached for {', '.join(missing)} (no saia.json, or one for other weights). "
                f"Compute them with:\n```\n{lines}\n```", icon=":material/info:")


# -- the page -------------------------------------------------------------------------------------------------------
st.divider()
available = np.zeros(d, dtype=bool)
step, run = 0, None
if x_model is not None:
    available = np.isfinite(x_model)
    truth_raw = table_to_raw(np.nan_to_num(x_model), schema)
    truth_raw = np.where(available, truth_raw, np.nan)
    known_y = np.isfinite(y_model)
    y_arg = float(y_model) if known_y else None
    y_raw = float(target.to_raw(np.array([y_model]))[0]) if known_y else None
    last = int(available.sum())
    if last == 0:
        st.warning(f"{_sentence(row_label)} has no usable feature value, so there is nothing to acquire. "
                   "Fill in at least one.", icon=":material/edit_off:")
    else:
        x_model = np.where(available, x_model, np.nan).astype(np.float32)
        try:
            run = _run(ref, stamp, x_model, available, y_arg, strategy, samples, seed)
        except Exception as err:  # noqa: BLE001 - e.g. values so far out of range that the model overflows
            st.error(f"The model could not run on {row_label} ({type(err).__name__}: {err}). Values far outside "
                     "the training data can overflow it; check the row.", icon=":material/error:")
            run = None
        if run is not None:
            st.caption(f"{_sentence(row_label)}, {STRATEGY_LABELS[strategy]}, {samples} draws per step, seed {seed}"
                       + ("" if last == d else f"; {last} of {d} features can be acquired (the others are unknown)")
                       + ".")
            step = step_view(run, last)
            comparison_view(step)
dataset_view()

if run is not None and st.session_state.get("acq_play") and step < int(available.sum()):
    time.sleep(PLAY_INTERVAL)  # let the step be seen, then take the next
    st.session_state[PLAY_NEXT_KEY] = True
    st.rerun()
