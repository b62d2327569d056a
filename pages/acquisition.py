"""Acquisition: sequential active information acquisition (SAIA, thesis §5.3) on one row of a mixed-type
table, one feature at a time. Start with nothing observed; at each step every still-missing feature gets a
reward — the sampling-based I(y; x_i | x_O) of eq. (5.13), EDDI's encoder KL, or a random score — and the
best one is acquired (its true value revealed). The page shows the rewards, p(y | x_O) narrowing around the
truth, and the imputations of what is still missing; then the three strategies on the same row, and the
dataset-level curves of Fig. 5.5 from every shipped mixed model of the same table.

The runs of all three strategies (all D + 1 steps each) are computed together, once per (model, row, draws,
seed), in a background job that a new row cancels at once; a test row's runs are stored with the
checkpoint's results (the default view ships with each table model), and the stepper only picks step t.

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

if __name__ == "__main__":  # a fresh server's first request for /acquisition runs this file bare
    from pages._common import run_app

    run_app()  # before the imports below: the app's navigation must replace Streamlit's at once

import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import streamlit as st

from pages._common import (
    plain, background_task, checkpoint_stamp, current_ref, download_csv, load_model, offer_compatible, once_per_upload,
    require_model, shipped_models, url_bound, url_value,
)
from vizvae.checkpoint import WEIGHTS, Checkpoint, checkpoint_dataset
from vizvae.data import Dataset
from vizvae.data.schema import table_to_raw
from vizvae.data.user import TableRows, rows_from_csv, rows_from_frame
from vizvae.errors import VizvaeError
from vizvae.evaluation.acquisition_view import (
    AcquisitionRow, acquire_row_all, acquisition_order, acquisition_row, class_frequencies, feature_ranges, raw_errors,
    raw_step, store_test_row_runs, stored_test_row_runs, target_range,
)
from vizvae.evaluation.saia import CACHE_FILE, read_saia_cache
from vizvae.inference.acquisition import STRATEGIES, STRATEGY_LABELS, AcquisitionRun
from vizvae.models.capabilities import PredictorModel
from vizvae.viz.acquisition import (
    acquisition_order_table, class_probability_figure, format_value, imputation_figure, imputation_table,
    revealed_value, reward_figure, saia_areas_table, saia_curves_figure, strategy_comparison_figure,
    target_histogram_figure,
)
from vizvae.viz.tables import csv_bytes

MIXED_KINDS = ("vaem", "miwaem", "hvaem", "hmcvaem", "hhvaem")
SOURCES = {"test": "a test row", "typed": "type values", "upload": "upload a CSV"}
SAMPLE_COUNTS = (20, 50, 100, 200, 500)
REWARD_LABELS = {"mi": "Î(y; x_i | x_O) (nats)", "kl": "EDDI reward (nats)", "random": "random score"}
STRATEGY_SHORT = {"mi": "MI (eq. 5.13)", "kl": "KL (EDDI)", "random": "random"}  # fits the select box
PLAY_INTERVAL = 1.2  # seconds between auto-play steps
PLAY_NEXT_KEY = "_acq_play_next"
TYPED_KEY = "_acq_typed"  # typed values, kept while the text boxes are not drawn
UPLOAD_KEY = "_acq_upload_rows"  # pages._common.once_per_upload
SHOWN_PROBLEMS = 12
PURPOSE = "Sequential feature acquisition"


def _in_range(low: int, high: int):
    return lambda value: isinstance(value, int) and low <= value <= high


# -- cached numbers ----------------------------------------------------------------------------------------------
@st.cache_data(show_spinner=False, max_entries=64)
def _stored_runs(folder: str, stamp: tuple, index: int, samples: int, seed: int) -> dict[str, AcquisitionRun] | None:
    """A test row's runs stored for these weights: shipped with the model, or kept from an earlier visit."""
    return stored_test_row_runs(folder, index, samples, seed)


def _acquire(report, model, row: AcquisitionRow, samples: int, seed: int, folder: str,
             index: int | None) -> dict[str, AcquisitionRun]:
    """The background job: every strategy's run on the row; a test row's runs are kept for next time."""
    runs = acquire_row_all(model, row, samples, seed, progress=report)
    if index is not None:
        store_test_row_runs(folder, index, samples, seed, runs)
    return runs


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
def mixed_model(ref: str | None) -> tuple[Checkpoint, Dataset]:
    """The selected mixed-type model with a predictor, and its table (else say why and stop)."""
    try:
        selected_kind = load_model(ref).config["model"] if ref is not None else None
    except VizvaeError:
        selected_kind = None  # require_model says what went wrong
    if selected_kind is not None and selected_kind not in MIXED_KINDS:
        offer_compatible(PURPOSE, f"a mixed-type model ({', '.join(MIXED_KINDS)}; this one is a {selected_kind})",
                         kinds=MIXED_KINDS)
        st.stop()
    checkpoint = require_model(kinds=MIXED_KINDS, purpose=PURPOSE)
    model = checkpoint.model
    if not (isinstance(model, PredictorModel) and model.has_predictor):
        st.warning(f"{plain(checkpoint.name)} has no predictor of a target, so there is nothing to acquire features for.",
                   icon=":material/swap_horiz:")
        st.stop()
    try:
        return checkpoint, checkpoint_dataset(checkpoint.config)
    except VizvaeError as err:
        st.error(str(err), icon=":material/error:")
        st.stop()


# -- which row ---------------------------------------------------------------------------------------------------
def _typed_from_test(dataset: Dataset, index: int) -> dict[str, str]:
    row = acquisition_row(dataset.x_test[index], float(dataset.y_test[index]), dataset.schema, dataset.target, "")
    values = {f"acq_value_{j}": format_value(row.truth_raw[j], column.is_discrete)
              for j, column in enumerate(dataset.schema)}
    values["acq_value_y"] = format_value(row.y_raw, dataset.target.is_discrete)
    return values


def _set_typed(ref: str, values: dict[str, str]) -> None:
    """The typed row's boxes, remembered with the model they belong to (another model has other columns)."""
    st.session_state[TYPED_KEY] = {"ref": ref, "values": values}
    st.session_state.update(values)


def _fill_typed(ref: str, dataset: Dataset, index: int) -> None:
    _set_typed(ref, _typed_from_test(dataset, index))


def _clear_typed(ref: str, dataset: Dataset) -> None:
    _set_typed(ref, {key: "" for key in _typed_from_test(dataset, 0)})


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:]


def _column_help(column) -> str:
    if column.is_discrete:
        return f"{column.kind}: one of {', '.join(f'{c:g}' for c in column.categories)}. Leave empty if unknown."
    if column.kind == "loggaussian":
        return "loggaussian: a number ≥ 0. Leave empty if unknown."
    return "gaussian: any number. Leave empty if unknown."


def _show_problems(rows: TableRows) -> None:
    for problem in rows.problems[:SHOWN_PROBLEMS]:
        st.warning(f"{plain(problem)} — treated as missing.", icon=":material/edit_off:")
    if rows.n_problems > SHOWN_PROBLEMS:
        st.warning(f"… and {rows.n_problems - SHOWN_PROBLEMS:,} more cells that could not be used (treated as "
                   "missing).")
    for note in rows.notes:
        st.info(_sentence(note) + ".", icon=":material/info:")


def test_row(column: Any, dataset: Dataset) -> AcquisitionRow:
    n_test = len(dataset.x_test)
    index = int(url_bound(column.number_input, "Test row", key="acq_row", param="row", default=0, parse=int,
                          valid=_in_range(0, n_test - 1), min_value=0, max_value=n_test - 1, step=1,
                          help=f"0–{n_test - 1}"))
    return acquisition_row(dataset.x_test[index].astype(np.float32), float(dataset.y_test[index]), dataset.schema,
                           dataset.target, f"test row {index}")


def typed_row(column: Any, ref: str, dataset: Dataset) -> AcquisitionRow:
    """A row typed value by value (the boxes start as the last test row shown)."""
    schema, target = list(dataset.schema), dataset.target
    last_row = int(st.session_state.get("_saved_acq_row", st.session_state.get("acq_row", 0)))
    if (st.session_state.get(TYPED_KEY) or {}).get("ref") != ref:
        _fill_typed(ref, dataset, last_row)  # first visit, or a model with other columns
    typed = st.session_state[TYPED_KEY]["values"]
    for key, value in typed.items():
        st.session_state.setdefault(key, value)
    column.button(f"Fill in test row {last_row}", key="acq_fill", on_click=_fill_typed, args=(ref, dataset, last_row))
    column.button("Clear all", key="acq_clear", on_click=_clear_typed, args=(ref, dataset))
    st.caption("Values in raw units, as in the data. An empty cell is a feature that cannot be acquired; an "
               f"empty {target.name} means the truth is unknown (no error or NLL).")
    boxes = st.columns(7)
    cells = [(f"acq_value_{j}", column) for j, column in enumerate(schema)] + [("acq_value_y", target)]
    for i, (key, cell) in enumerate(cells):
        label = cell.name if key != "acq_value_y" else f"{cell.name} (target)"
        boxes[i % 7].text_input(label, key=key, help=_column_help(cell))
        typed[key] = st.session_state[key]
    frame = pd.DataFrame([{cell.name: st.session_state[key] for key, cell in cells}], dtype=str)
    typed_rows = rows_from_frame(frame, schema, target)
    _show_problems(typed_rows)
    return acquisition_row(typed_rows.x[0], float(typed_rows.y[0]), schema, target, "the typed row")


def uploaded_row(column: Any, dataset: Dataset) -> AcquisitionRow | None:
    """One row of an uploaded CSV (None until a readable file is there)."""
    names, target = list(dataset.feature_names), dataset.target
    upload = column.file_uploader("CSV of rows", type=["csv"], key="acq_upload",
                                  help=f"A header row naming the columns ({', '.join(names[:3])}, …, and optionally "
                                       f"{target.name}); empty cells are unknown.")
    if upload is None:
        st.info(f"Upload a CSV with a header row naming some of the model's columns: {', '.join(names)}, and "
                f"optionally the target {target.name}. Values in raw units; empty cells are missing.")
        return None
    table_rows = once_per_upload(UPLOAD_KEY, upload, (dataset.name, tuple(names)),
                                 lambda data: rows_from_csv(data, list(dataset.schema), target))
    if isinstance(table_rows, VizvaeError):
        st.error(f"{plain(upload.name)}: {plain(table_rows)}", icon=":material/error:")
        return None
    _show_problems(table_rows)
    n_rows = len(table_rows)
    args = dict(key="acq_upload_row", param="urow", default=1, parse=int, valid=_in_range(1, n_rows))
    if n_rows > 1:
        chosen = url_bound(st.number_input, f"Row of {plain(upload.name)} (1–{n_rows})", min_value=1, max_value=n_rows,
                           step=1, **args)
    else:
        chosen = url_value(**args)
    index = int(chosen) - 1
    return acquisition_row(table_rows.x[index], float(table_rows.y[index]), list(dataset.schema), target,
                           f"row {index + 1} of {upload.name}")


def row_controls(ref: str, dataset: Dataset) -> tuple[AcquisitionRow | None, str, int, int]:
    """(the row, strategy, draws per step, seed)."""
    controls = st.columns([1.4, 1.2, 1.1, 1, 0.8])
    source = url_bound(controls[0].radio, "Row", key="acq_source", param="source", default="test",
                       valid=lambda s: s in SOURCES, options=list(SOURCES), format_func=SOURCES.get, horizontal=True)
    url_value("acq_row", param="row", default=0, parse=int, valid=_in_range(0, len(dataset.x_test) - 1))
    strategy = url_bound(controls[2].selectbox, "Strategy", key="acq_strategy", param="strategy", default="mi",
                         valid=lambda s: s in STRATEGIES, options=STRATEGIES, format_func=STRATEGY_SHORT.get,
                         help="Which reward picks the next feature: " + "; ".join(STRATEGY_LABELS.values())
                         + ". Predictions always use the model's own sampler.")
    samples = url_bound(controls[3].select_slider, "Draws per step", key="acq_samples", param="samples", default=200,
                        parse=int, valid=lambda s: s in SAMPLE_COUNTS, options=SAMPLE_COUNTS,
                        help="S joint draws of (x, y) per step: the histogram estimator (5.13) and p(y | x_O).")
    seed = url_bound(controls[4].number_input, "Seed", key="acq_seed", param="seed", default=0, parse=int,
                     valid=_in_range(0, 9999), min_value=0, max_value=9999, step=1)
    if source == "test":
        row = test_row(controls[1], dataset)
    elif source == "typed":
        row = typed_row(controls[1], ref, dataset)
    else:
        row = uploaded_row(controls[1], dataset)
    return row, strategy, int(samples), int(seed)


# -- the step view -------------------------------------------------------------------------------------------------
def _move(delta: int, last: int) -> None:
    st.session_state["acq_step"] = int(min(max(st.session_state.get("acq_step", 0) + delta, 0), last))


def _reset() -> None:
    st.session_state["acq_step"] = 0
    st.session_state["acq_play"] = False


def stepper(last: int) -> int:
    """The step buttons, auto-play and slider; returns the step t shown (0…last)."""
    if st.session_state.pop(PLAY_NEXT_KEY, False) and st.session_state.get("acq_play"):
        st.session_state["acq_step"] = min(int(st.session_state.get("acq_step", 0)) + 1, last)
    url_value("acq_step", param="t", default=0, parse=int, valid=_in_range(0, last))
    if st.session_state.get("acq_play") and st.session_state["acq_step"] >= last:
        st.session_state["acq_play"] = False  # played to the end
    buttons = st.columns([1, 1, 1, 1.2, 4])
    buttons[0].button("Back", key="acq_back", on_click=_move, args=(-1, last), icon=":material/skip_previous:",
                      disabled=st.session_state["acq_step"] <= 0)
    buttons[1].button("Step", key="acq_forward", on_click=_move, args=(1, last), icon=":material/skip_next:",
                      disabled=st.session_state["acq_step"] >= last, type="primary")
    buttons[2].button("Reset", key="acq_reset", on_click=_reset, icon=":material/restart_alt:")
    buttons[3].toggle("Auto-play", key="acq_play", help=f"One step every {PLAY_INTERVAL:g} s until all are acquired.")
    url_bound(buttons[4].slider, "Features acquired", key="acq_step", param="t", default=0, parse=int,
              valid=_in_range(0, last), min_value=0, max_value=last)
    return int(st.session_state["acq_step"])


def step_metrics(run: AcquisitionRun, row: AcquisitionRow, t: int, dataset: Dataset) -> None:
    schema, target, names = dataset.schema, dataset.target, list(dataset.feature_names)
    now = raw_step(run, t, schema, target)
    revealed = revealed_value(row.truth_raw, now.acquired, schema)
    metrics = st.columns(5)
    metrics[0].metric("Acquired", f"{t} of {row.n_acquirable}")
    metrics[1].metric("Just acquired", names[now.acquired] if now.acquired >= 0 else "–")
    metrics[2].metric("Its true value", revealed or "–", help="Revealed to the model when it is acquired.")
    metrics[3].metric(f"Predicted {target.name}", format_value(now.y_point, target.is_discrete),
                      help="The most probable class." if target.is_discrete else
                      "The mean of the predictor's means over the draws (in model space), in raw units.")
    if row.y_raw is not None:
        if target.is_discrete:
            shown = "wrong" if bool(run.error[t, 0]) else "right"
        else:
            shown = format_value(row.target_error(now.y_point))
        metrics[4].metric(f"Error (true {target.name} = {format_value(row.y_raw, target.is_discrete)})", shown,
                          help=f"−log p(y | x_O) = {now.nll:.3f} (model units)")


def step_charts(run: AcquisitionRun, row: AcquisitionRow, t: int, strategy: str, dataset: Dataset,
                name: str) -> None:
    schema, target, names = dataset.schema, dataset.target, list(dataset.feature_names)
    now = raw_step(run, t, schema, target)
    revealed = revealed_value(row.truth_raw, now.acquired, schema)
    left, right = st.columns(2)
    with left:
        note = ("Before the first step: the feature with the highest reward is acquired first." if t == 0
                else f"Step {t}: acquired {names[now.acquired]}, the highest reward.")
        st.plotly_chart(reward_figure(names, now.rewards, now.acquired, now.observed, revealed,
                                      REWARD_LABELS[strategy], title="Rewards of the missing features"),
                        key="acq_rewards")
        st.caption(note)  # under the chart: in its title it was cut off
    with right:
        title = f"p({target.name} | x_O) after {t} acquired"
        if target.is_discrete:
            probabilities = class_frequencies(run.y_samples[t, 0], target.n_categories)
            classes = [format_value(c, True) for c in target.categories]
            truth_code = int(row.y) if row.y is not None else None
            figure = class_probability_figure(classes, probabilities, truth_code, int(run.y_point[t, 0]),
                                              target.name, title=title)
        else:
            x_range = target_range(target.to_raw(run.y_samples[:, 0]), row.y_raw)
            figure = target_histogram_figure(now.y_samples, x_range, row.y_raw, now.y_point, target_name=target.name,
                                             title=title)
        st.plotly_chart(figure, key="acq_target")
    truth_shown = row.truth_raw  # NaN where the value is unknown
    data_raw = table_to_raw(dataset.x_train, schema)  # the axes of the imputation panels
    st.plotly_chart(imputation_figure(names, now.centre, now.low, now.high, now.observed,
                                      feature_ranges(data_raw, truth_shown), truth_shown, now.acquired,
                                      title="Features: observed (✓), or imputed with 5–95 % intervals"),
                    key="acq_imputed")
    table = imputation_table(names, [column.kind for column in schema], now, acquisition_order(run), truth_shown)
    st.caption("Raw units, each axis spanning the training data. A missing feature shows the mean of "
               "p(x_j | x_O) in model space mapped back (for a category: the nearest one) and the 5 % and 95 % "
               "quantiles of its draws; the cross is its true value, hidden from the model.")
    with st.expander("As a table"):
        st.dataframe(table, hide_index=True)
        download_csv("Step table (CSV)", csv_bytes(table), f"{name}-acquisition-step{t}.csv", key="acq_step_csv")


def comparison_view(runs: dict[str, AcquisitionRun], row: AcquisitionRow, t: int, dataset: Dataset) -> None:
    """The three strategies on the same row."""
    st.header("Strategies on this row")
    target = dataset.target
    if row.y_raw is not None:
        error_title = ("wrong class (1) or right (0)" if target.is_discrete
                       else f"|prediction − {target.name}| (raw units)")
        errors = {s: raw_errors(r, target, row.y_raw) for s, r in runs.items()}
        nlls = {s: r.y_nll[:, 0] for s, r in runs.items()}
        st.plotly_chart(strategy_comparison_figure(errors, nlls, STRATEGY_LABELS, error_title, current_step=t),
                        key="acq_compare")
        st.caption("The same row, the same draws per step and seed, three orders of acquisition. A good order "
                   "brings the error and the NLL down in the first few steps.")
    else:
        st.info(f"The {plain(target.name)} of {plain(row.label)} is unknown, so only the orders can be compared.")
    orders = {s: acquisition_order(r) for s, r in runs.items()}
    st.dataframe(acquisition_order_table(orders, list(dataset.feature_names), STRATEGY_LABELS), hide_index=True)


# -- Fig. 5.5 -------------------------------------------------------------------------------------------------------
def cached_curves(checkpoint: Checkpoint, dataset_name: str) -> tuple[dict[str, dict], dict[str, str]]:
    """The saia.json of every shipped mixed model of this table (and of the opened one), by model name,
    and the CLI command name of each model whose curves are missing."""
    models = {info["name"]: info["path"] for info in shipped_models()
              if info["model"] in MIXED_KINDS and info["dataset"] == dataset_name}
    commands = {name: name for name in models}  # how the CLI names each model
    if Path(checkpoint.path).resolve() not in {Path(folder).resolve() for folder in models.values()}:
        label = f"{checkpoint.name} (opened)"  # an opened model: compare it with the shipped ones
        models[label], commands[label] = str(checkpoint.path), str(checkpoint.path)
    caches, missing = {}, {}
    for name, folder in models.items():
        cache = _saia_cache(folder, _cache_stamp(folder))
        if cache:
            caches[name] = cache
        else:
            missing[name] = commands[name]
    return caches, missing


def curves_view(caches: dict[str, dict], d: int) -> None:
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
    st.dataframe(saia_areas_table({m: caches[m] for m in models_shown}, STRATEGIES, STRATEGY_LABELS), hide_index=True)
    st.caption(f"Mean ± s.e. over the test rows of the {error_name} after 0, 1, …, {d} acquired features. "
               "Read from the saia.json beside each model's weights, which training writes; recompute one "
               "with `python -m vizvae evaluate MODEL --task saia --json`.")


def dataset_view(checkpoint: Checkpoint, dataset: Dataset) -> None:
    st.header("Across the test set (Fig. 5.5)")
    caches, missing = cached_curves(checkpoint, dataset.name)
    if caches:
        curves_view(caches, len(dataset.feature_names))
    if missing:
        lines = "\n".join(f"python -m vizvae evaluate {command} --task saia --json" for command in missing.values())
        st.info(f"No SAIA curves cached for {', '.join(missing)} (no saia.json, or one for other weights). "
                f"Compute them with:\n```\n{lines}\n```", icon=":material/info:")


# -- the page -------------------------------------------------------------------------------------------------------
def row_runs(ref: str, checkpoint: Checkpoint, row: AcquisitionRow, samples: int,
             seed: int) -> dict[str, AcquisitionRun] | None:
    """Every strategy's run on the row: stored, else from a background job (None while it runs, which
    draws its own progress and Cancel; another row cancels it)."""
    index = int(st.session_state["acq_row"]) if st.session_state.get("acq_source", "test") == "test" else None
    folder = str(checkpoint.path)
    if index is not None:
        stored = _stored_runs(folder, _cache_stamp(folder), index, samples, seed)
        if stored is not None:
            return stored
    key = (ref, checkpoint_stamp(ref), row.label, row.x.tobytes(), row.y, samples, seed)
    return background_task("acquisition", key=key, work=_acquire,
                           args=(checkpoint.model, row, samples, seed, folder, index),
                           label=f"Acquiring features for {row.label} under every strategy")


def run_view(ref: str, checkpoint: Checkpoint, row: AcquisitionRow, strategy: str, samples: int, seed: int,
             dataset: Dataset) -> int | None:
    """The chosen strategy's run step by step, then the three strategies; returns the step shown (None
    when nothing ran)."""
    d = len(dataset.feature_names)
    if row.n_acquirable == 0:
        st.warning(f"{_sentence(row.label)} has no usable feature value, so there is nothing to acquire. "
                   "Fill in at least one.", icon=":material/edit_off:")
        return None
    runs = row_runs(ref, checkpoint, row, samples, seed)
    if runs is None:
        return None
    run = runs[strategy]
    st.caption(f"{_sentence(row.label)}, {STRATEGY_LABELS[strategy]}, {samples} draws per step, seed {seed}"
               + ("" if row.n_acquirable == d else f"; {row.n_acquirable} of {d} features can be acquired (the "
                  "others are unknown)") + ".")
    st.header("Step through")
    t = stepper(row.n_acquirable)
    step_metrics(run, row, t, dataset)
    step_charts(run, row, t, strategy, dataset, checkpoint.name)
    comparison_view(runs, row, t, dataset)
    return t


def render() -> None:
    started = time.monotonic()
    ref = current_ref()
    checkpoint, dataset = mixed_model(ref)
    target = dataset.target
    st.title("Acquisition")
    st.caption(f"**{plain(checkpoint.name)}** on **{plain(dataset.name)}**: {len(dataset.feature_names)} features → "
               f"{plain(target.name)} "
               f"({'a label' if target.is_discrete else 'a real value'}). Start with nothing observed and acquire "
               "one feature per step, the one with the highest reward, until all are known (SAIA, thesis §5.3).")
    row, strategy, samples, seed = row_controls(ref, dataset)
    st.divider()
    step = None if row is None else run_view(ref, checkpoint, row, strategy, samples, seed, dataset)
    dataset_view(checkpoint, dataset)
    if step is not None and st.session_state.get("acq_play") and step < row.n_acquirable:
        # the promised pace: the time this run took drawing the step counts towards the interval
        time.sleep(max(0.0, PLAY_INTERVAL - (time.monotonic() - started)))
        st.session_state[PLAY_NEXT_KEY] = True
        st.rerun()

