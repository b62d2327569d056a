"""HMC lab: train HMC's step sizes and inflation live on a toy 2-D target (thesis Figs 5.7–5.8).
No model needed: the target is a known density (wave, dual moon, banana), the initial proposal a
deliberately tight Gaussian on it.

Widget / session-state keys (used by the tests): ``lab_target``, ``lab_transitions``,
``lab_step_range``, ``lab_proposal_std``, ``lab_iterations``, ``lab_lr_steps``,
``lab_lr_inflation``, ``lab_seed``, ``lab_per_dimension``, ``lab_train`` (the button) and ``lab_result`` (the last
training: settings and result). While training runs (in the background) the container ``lab_training_progress``
holds its bar and the button ``lab_training_cancel`` (after a cancel: ``lab_training_cancelled``,
``lab_training_again``). Charts: ``lab_before``, ``lab_after``, ``lab_history``.
URL: ``target``, ``T``, ``steps``, ``std``, ``iters``.
"""

from __future__ import annotations

if __name__ == "__main__":  # a fresh server's first request for /hmc_lab runs this file bare
    from pages._common import run_app

    run_app()  # before the imports below: the app's navigation must replace Streamlit's at once

from typing import Any

import numpy as np
import streamlit as st

from pages._common import background_task, download_csv, job_runner, restart_task, url_bound
from vizvae.inference.targets import TOY_TARGETS
from vizvae.inference.toy import STEP_SIZE_RANGES, ToySetup, toy_density, toy_setup
from vizvae.inference import toy_store
from vizvae.kernels.hmc import under_tuned
from vizvae.inference.toy_lab import (
    FIGURE_TRANSITIONS, LAB_CHAINS, LAB_DEFAULTS, ToyChains, ToyTraining, history_table, toy_chains, toy_training,
    train_toy_run,
)
from vizvae.server import CapExceeded, check_caps
from vizvae.viz.posterior import hmc_training_figure, toy_target_figure
from vizvae.viz.tables import csv_bytes, shown_change

TARGET_LABELS = {"wave": "wave", "dual_moon": "dual moon", "banana": "banana"}
STEP_LABELS = {"authors": "small: U(0.02, 0.05), authors' code", "thesis": "U(0.05, 0.2), thesis text",
               "too_large": "too large: U(0.6, 0.9)"}
TRANSITIONS = (5, 10, 15, 20)
PROPOSAL_STDS = (0.05, 0.1, 0.2, 0.5, 1.0)
LEARNING_RATES = (0.01, 0.02, 0.05, 0.1)
SHOWN_CHAINS = LAB_CHAINS
RESULT_KEY = "lab_result"
TRAIN_REQUEST_KEY = "_lab_train_requested"
TRAINING_KEY = "_lab_training"  # (settings, training) of the training asked for and not yet done
JOB = "lab_training"
SKSD_HELP = ("Mean over the last five iterations. SKSD is estimated by a U-statistic, which is unbiased: its "
             "expectation is ≥ 0 and ≈ 0 when the chains follow the target, so an estimate can dip below 0.")


def _number(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


@st.cache_data(show_spinner=False, max_entries=8)
def _density(target: str):
    return toy_density(target)


@st.cache_data(show_spinner="Sampling with the initial hyper-parameters…", max_entries=32)
def _before(settings: tuple) -> ToyChains:
    return toy_chains(_setup(settings), n_chains=SHOWN_CHAINS, seed=settings[-1])


def _setup(settings: tuple) -> ToySetup:
    target, n_transitions, step_range, proposal_std, seed = settings
    return toy_setup(target, proposal_std, STEP_SIZE_RANGES[step_range], n_transitions, seed=seed)


def _request_training() -> None:
    st.session_state[TRAIN_REQUEST_KEY] = True
    restart_task(JOB)  # Train after a cancel trains again


def _take_figure_transitions() -> None:
    st.session_state["lab_transitions"] = FIGURE_TRANSITIONS.get(st.session_state["lab_target"], 10)


# -- settings -------------------------------------------------------------------------------------------------
def hmc_settings() -> tuple:
    """(target, T, initial step-size range, proposal σ): what the chains start from."""
    row = st.columns([1.4, 1, 1.8, 1.2])
    target = url_bound(row[0].radio, "Target", key="lab_target", param="target", default="wave",
                       valid=lambda t: t in TOY_TARGETS, options=list(TOY_TARGETS), format_func=TARGET_LABELS.get,
                       horizontal=True, on_change=_take_figure_transitions)
    n_transitions = url_bound(row[1].select_slider, "Transitions T", key="lab_transitions", param="T",
                              default=FIGURE_TRANSITIONS[target], parse=int, valid=lambda t: t in TRANSITIONS,
                              options=TRANSITIONS)
    step_range = url_bound(row[2].selectbox, "Initial step sizes φ", key="lab_step_range", param="steps",
                           default=LAB_DEFAULTS["step_range"], valid=lambda s: s in STEP_SIZE_RANGES, options=list(STEP_SIZE_RANGES),
                           format_func=STEP_LABELS.get)
    proposal_std = url_bound(row[3].select_slider, "Proposal σ", key="lab_proposal_std", param="std", default=LAB_DEFAULTS["proposal_std"],
                             parse=float, valid=lambda s: s in PROPOSAL_STDS, format=_number, options=PROPOSAL_STDS,
                             help="The initial proposal N(start, σ²I): tight on purpose.")
    return target, int(n_transitions), step_range, float(proposal_std)


def training_settings() -> tuple[tuple, tuple]:
    """The chains' settings (``hmc_settings`` and the seed) and the training's (iterations, two
    learning rates, one inflation per dimension); draws the Train button."""
    settings = hmc_settings()
    row = st.columns([1.3, 0.9, 0.9, 1, 1.4, 0.8])
    n_iterations = url_bound(row[0].slider, "Training iterations", key="lab_iterations", param="iters", default=LAB_DEFAULTS["iterations"],
                             parse=int, valid=lambda i: isinstance(i, int) and 10 <= i <= 400, min_value=10,
                             max_value=400, step=10)
    for key, default in (("lab_lr_steps", LAB_DEFAULTS["lr_steps"]), ("lab_lr_inflation", LAB_DEFAULTS["lr_inflation"]),
                         ("lab_seed", LAB_DEFAULTS["seed"]), ("lab_per_dimension", LAB_DEFAULTS["per_dimension"])):
        st.session_state.setdefault(key, default)
    lr_steps = row[1].select_slider("lr, step sizes", LEARNING_RATES, key="lab_lr_steps")
    lr_inflation = row[2].select_slider("lr, inflation", LEARNING_RATES, key="lab_lr_inflation")
    seed = row[3].number_input("Seed", 0, 9999, step=1, key="lab_seed")
    per_dimension = row[4].checkbox("Inflation per axis", key="lab_per_dimension",
                                    help="One inflation per dimension: Fig. 5.7b inflates each axis on its own; a "
                                         "model has one inflation per latent layer.")
    with row[5]:
        st.write("")
        st.button("Train", key="lab_train", type="primary", icon=":material/play_arrow:",
                  on_click=_request_training)
    return (*settings, int(seed)), (int(n_iterations), float(lr_steps), float(lr_inflation), bool(per_dimension))


# -- training, live -------------------------------------------------------------------------------------------
def train_live(settings: tuple, training: tuple, setup: ToySetup) -> None:
    """Train in the background with a progress bar over the iterations (and the acceptance so far),
    then sample the trained chains once; kept in ``lab_result``. Other chain settings cancel it."""
    if st.session_state.pop(TRAIN_REQUEST_KEY, False):
        st.session_state[TRAINING_KEY] = (settings, training)
    asked = st.session_state.get(TRAINING_KEY)
    if asked is None:
        return
    if asked[0] != settings:
        job_runner().cancel(JOB, "the chains' settings changed")
        st.session_state.pop(TRAINING_KEY)
        return
    n_iterations, lr_steps, lr_inflation, per_dimension = asked[1]
    stored = toy_store.load(settings, asked[1], SHOWN_CHAINS, setup)  # shipped for the first view, else cached
    run = stored if stored is not None else background_task(JOB, key=asked, work=train_toy_run, label="Training",
                          args=(setup, n_iterations, lr_steps, lr_inflation),
                          kwargs=dict(seed=settings[-1], per_dimension=per_dimension, n_chains=SHOWN_CHAINS),
                          units=n_iterations * settings[1], caps=dict(chain_transitions=SHOWN_CHAINS * settings[1]))
    if run is not None:
        if stored is None:
            toy_store.store(settings, asked[1], SHOWN_CHAINS, run)
        st.session_state[RESULT_KEY] = {"settings": settings, "training": asked[1], "result": run.result,
                                        "after": run.after}
        st.session_state.pop(TRAINING_KEY)


# -- Fig. 5.7: before and after --------------------------------------------------------------------------------
def chains_view(settings: tuple, setup: ToySetup, before: ToyChains, after: ToyChains | None,
                trained: ToyTraining | None) -> None:
    target = settings[0]
    z1, z2, density = _density(target)
    limits = TOY_TARGETS[target].limits
    left, right = st.columns(2)
    with left:
        st.plotly_chart(toy_target_figure(z1, z2, density, before.samples, setup.proposal_mean.numpy(),
                                          setup.proposal_std.numpy(), limits, title="Before training"),
                        key="lab_before")
        st.caption(f"{SHOWN_CHAINS} chains of T = {settings[1]} transitions from the tight proposal with the initial "
                   f"step sizes: acceptance {before.acceptance:.2f}, {before.n_divergences} divergent transitions.")
    with right:
        if after is None:
            st.info("Press **Train** to tune the step sizes and the inflation; the chains after training appear "
                    "here, and the training curves below.")
            return
        st.plotly_chart(toy_target_figure(z1, z2, density, after.samples, setup.proposal_mean.numpy(),
                                          trained.inflation * setup.proposal_std.numpy(), limits,
                                          title="After training"), key="lab_after")
        st.caption(f"The same chains with the trained step sizes (mean {trained.mean_step_size:.3f}) and inflation "
                   f"s = {', '.join(f'{v:.2f}' for v in trained.inflation_values)} (the orange ellipse is the "
                   f"inflated proposal): acceptance {after.acceptance:.2f}, {after.n_divergences} divergent "
                   "transitions.")


# -- Figs 5.7c and 5.8: the curves ----------------------------------------------------------------------------
def training_view(target: str, history: dict[str, np.ndarray], before: ToyChains, after: ToyChains,
                  trained: ToyTraining) -> None:
    st.header("Training")
    metrics = st.columns(4)
    # neutral deltas: more acceptance is not better in itself (0.65 is the optimum), nor a larger step
    metrics[0].metric("Acceptance", f"{after.acceptance:.2f}", shown_change(after.acceptance - before.acceptance),
                      delta_color="off", help="Change: against the chains with the initial hyper-parameters.")
    metrics[1].metric("Inflation s", ", ".join(f"{v:.2f}" for v in trained.inflation_values))
    metrics[2].metric("Mean step size", f"{trained.mean_step_size:.3f}", shown_change(trained.step_size_change, 3),
                      delta_color="off")
    metrics[3].metric("Final SKSD", f"{trained.final_sksd:.3f}", help=SKSD_HELP)
    st.caption(f"Learned step sizes ÷ initial ones: ×{trained.step_size_growth:.2f} (geometric mean; mean step "
               f"{trained.initial_mean_step_size:.3f} → {trained.mean_step_size:.3f}).")
    if under_tuned(after.acceptance, trained.step_size_growth):
        st.warning(f"Under-tuned: acceptance {after.acceptance:.2f} with the step sizes only "
                   f"×{trained.step_size_growth:.2f} their start. The chains creep; train for longer or with a "
                   "larger step-size learning rate.")
    if trained.final_sksd < 0:
        st.caption(f"The final SKSD is negative ({trained.final_sksd:.3f}): " + SKSD_HELP)
    st.plotly_chart(hmc_training_figure(history), key="lab_history")
    st.caption("Per training iteration, from the 30 chains of that iteration: mean acceptance (dotted: 0.65, the "
               "optimum of Neal 2011), step sizes per dimension (line: mean over the T transitions, band: min–max), "
               "the HMC objective being maximised, the SKSD being minimised, the inflation and divergences.")
    download_csv("Training history (CSV)", csv_bytes(history_table(history)), f"hmc-lab-{target}.csv",
                 key="lab_history_csv")


def render() -> None:
    st.title("HMC lab")
    st.caption("Train HMC's step sizes (the HMC objective, eq. 5.9) and the inflation of its initial proposal (SKSD, "
               "eq. 5.10) on a known 2-D density, starting from a deliberately tight proposal (thesis Figs 5.7–5.8).")
    settings, training = training_settings()
    try:  # the chains before training, drawn at once, are as many as a training's
        check_caps(chain_transitions=SHOWN_CHAINS * settings[1])
    except CapExceeded as err:
        for key in (TRAIN_REQUEST_KEY, TRAINING_KEY):  # nothing trains on, nor later, for these settings
            st.session_state.pop(key, None)
        job_runner().forget(JOB)
        st.warning(f"{err}.", icon=":material/block:")
        return
    setup = _setup(settings)
    train_live(settings, training, setup)
    stored = st.session_state.get(RESULT_KEY)
    current = stored if stored and stored["settings"] == settings else None
    trained = toy_training(setup, current["result"]) if current else None
    after = current["after"] if current else None
    before = _before(settings)
    chains_view(settings, setup, before, after, trained)
    if current:
        history = {key: value.numpy() for key, value in current["result"].history.items()}
        training_view(settings[0], history, before, after, trained)

