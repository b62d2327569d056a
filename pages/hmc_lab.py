"""HMC lab: train HMC's step sizes and inflation live on a toy 2-D target (thesis Figs 5.7–5.8).
No model needed: the target is a known density (wave, dual moon, banana), the initial proposal a
deliberately tight Gaussian on it.

Widget / session-state keys (used by the tests): ``lab_target``, ``lab_transitions``,
``lab_step_range``, ``lab_proposal_std``, ``lab_iterations``, ``lab_lr_steps``,
``lab_lr_inflation``, ``lab_seed``, ``lab_per_dimension``, ``lab_train`` (the button) and ``lab_result`` (the last
training: settings and result). Charts: ``lab_before``, ``lab_after``, ``lab_history``.
URL: ``target``, ``T``, ``steps``, ``std``, ``iters``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from pages._common import download_csv, remember_in_url, run_through_entrypoint, url_widget_state
from vizvae.inference.hmc import HMCHyperparameters
from vizvae.inference.stein import HMCTrainingResult
from vizvae.inference.targets import TOY_TARGETS
from vizvae.inference.toy import STEP_SIZE_RANGES, toy_density, toy_samples, toy_setup, train_toy
from vizvae.viz.posterior import hmc_training_figure, toy_target_figure
from vizvae.viz.tables import csv_bytes

run_through_entrypoint()  # before anything is drawn: see its docstring

TARGET_LABELS = {"wave": "wave", "dual_moon": "dual moon", "banana": "banana"}
STEP_LABELS = {"authors": "small: U(0.02, 0.05), authors' code", "thesis": "U(0.05, 0.2), thesis text",
               "too_large": "too large: U(0.6, 0.9)"}
TRANSITIONS = (5, 10, 15, 20)
PROPOSAL_STDS = (0.05, 0.1, 0.2, 0.5, 1.0)
LEARNING_RATES = (0.01, 0.02, 0.05, 0.1)
SHOWN_CHAINS = 500
FIGURE_TRANSITIONS = {"wave": 5, "dual_moon": 10, "banana": 10}  # T of Fig. 5.7's rows
RESULT_KEY = "lab_result"
TRAIN_REQUEST_KEY = "_lab_train_requested"


@st.cache_data(show_spinner=False, max_entries=8)
def _density(target: str):
    return toy_density(target)


@st.cache_data(show_spinner="Sampling with the initial hyper-parameters…", max_entries=32)
def _before(settings: tuple) -> tuple[np.ndarray, float, int]:
    result = toy_samples(_setup(settings), n_chains=SHOWN_CHAINS, seed=settings[-1])
    return result.samples.numpy(), result.acceptance_rate(), result.n_divergences()


def _after(settings: tuple, hyperparameters: HMCHyperparameters) -> tuple[np.ndarray, float, int]:
    result = toy_samples(_setup(settings), hyperparameters, n_chains=SHOWN_CHAINS, seed=settings[-1])
    return result.samples.numpy(), result.acceptance_rate(), result.n_divergences()


def _setup(settings: tuple):
    target, n_transitions, step_range, proposal_std, seed = settings
    return toy_setup(target, proposal_std, STEP_SIZE_RANGES[step_range], n_transitions, seed=seed)


def _history_table(history: dict) -> pd.DataFrame:
    step_sizes = np.asarray(history["step_sizes"])
    table = pd.DataFrame({"iteration": np.arange(1, len(history["mean_acceptance"]) + 1),
                          "mean_acceptance": np.asarray(history["mean_acceptance"]),
                          "hmc_objective": np.asarray(history["hmc_objective"]), "sksd": np.asarray(history["sksd"]),
                          "divergences": np.asarray(history["divergences"])})
    inflation = np.asarray(history["inflation"]).reshape(len(step_sizes), -1)
    for d in range(step_sizes.shape[2]):
        table[f"mean_step_size_z{d + 1}"] = step_sizes[:, :, d].mean(1)
    for d in range(inflation.shape[1]):
        table[f"inflation_z{d + 1}" if inflation.shape[1] > 1 else "inflation"] = inflation[:, d]
    return table


st.title("HMC lab")
st.caption("Train HMC's step sizes (the HMC objective, eq. 5.9) and the inflation of its initial proposal (SKSD, "
           "eq. 5.10) on a known 2-D density, starting from a deliberately tight proposal (thesis Figs 5.7–5.8).")

# -- settings -------------------------------------------------------------------------------------------------
row = st.columns([1.4, 1, 1.8, 1.2])
url_widget_state("lab_target", "target", "wave", valid=lambda t: t in TOY_TARGETS)
row[0].radio("Target", list(TOY_TARGETS), key="lab_target", format_func=TARGET_LABELS.get, horizontal=True,
             on_change=lambda: st.session_state.update(
                 lab_transitions=FIGURE_TRANSITIONS.get(st.session_state["lab_target"], 10)))
url_widget_state("lab_transitions", "T", FIGURE_TRANSITIONS[st.session_state["lab_target"]], parse=int,
                 valid=lambda t: t in TRANSITIONS)
row[1].select_slider("Transitions T", TRANSITIONS, key="lab_transitions")
url_widget_state("lab_step_range", "steps", "authors", valid=lambda s: s in STEP_SIZE_RANGES)
row[2].selectbox("Initial step sizes φ", list(STEP_SIZE_RANGES), key="lab_step_range", format_func=STEP_LABELS.get)
url_widget_state("lab_proposal_std", "std", 0.1, parse=float, valid=lambda s: s in PROPOSAL_STDS)
row[3].select_slider("Proposal σ", PROPOSAL_STDS, key="lab_proposal_std",
                     help="The initial proposal N(start, σ²I): tight on purpose.")
row = st.columns([1.4, 1, 1, 1.1, 1.1, 0.8])
url_widget_state("lab_iterations", "iters", 150, parse=int, valid=lambda i: isinstance(i, int) and 10 <= i <= 400)
row[0].slider("Training iterations", 10, 400, step=10, key="lab_iterations")
st.session_state.setdefault("lab_lr_steps", 0.05)
row[1].select_slider("lr, step sizes", LEARNING_RATES, key="lab_lr_steps")
st.session_state.setdefault("lab_lr_inflation", 0.1)
row[2].select_slider("lr, inflation", LEARNING_RATES, key="lab_lr_inflation")
st.session_state.setdefault("lab_seed", 0)
row[3].number_input("Seed", 0, 9999, step=1, key="lab_seed")
st.session_state.setdefault("lab_per_dimension", False)
row[4].checkbox("One inflation per dimension", key="lab_per_dimension",
                help="Fig. 5.7b inflates each axis on its own; a model has one inflation per latent layer.")
for key, param in (("lab_target", "target"), ("lab_transitions", "T"), ("lab_step_range", "steps"),
                   ("lab_proposal_std", "std"), ("lab_iterations", "iters")):
    remember_in_url(key, param, format=lambda v: f"{v:g}" if isinstance(v, float) else str(v))

target = st.session_state["lab_target"]
settings = (target, int(st.session_state["lab_transitions"]), st.session_state["lab_step_range"],
            float(st.session_state["lab_proposal_std"]), int(st.session_state["lab_seed"]))
training = (int(st.session_state["lab_iterations"]), float(st.session_state["lab_lr_steps"]),
            float(st.session_state["lab_lr_inflation"]), bool(st.session_state["lab_per_dimension"]))
setup = _setup(settings)
z1, z2, density = _density(target)
limits = TOY_TARGETS[target].limits
with row[5]:
    st.write("")
    st.button("Train", key="lab_train", type="primary", icon=":material/play_arrow:",
              on_click=lambda: st.session_state.update({TRAIN_REQUEST_KEY: True}))

# -- training, live -------------------------------------------------------------------------------------------
if st.session_state.pop(TRAIN_REQUEST_KEY, False):
    n_iterations = training[0]
    bar = st.progress(0.0, text="Training…")

    def report(iteration: int, record: dict) -> None:
        bar.progress((iteration + 1) / n_iterations,
                     text=f"iteration {iteration + 1}/{n_iterations}: acceptance {record['mean_acceptance']:.2f}, "
                          f"SKSD {record['sksd']:.3f}, mean φ {record['mean_step_size']:.3f}")

    result: HMCTrainingResult = train_toy(setup, n_iterations, training[1], training[2], seed=settings[-1],
                                          callback=report, per_dimension=training[3])
    bar.empty()
    st.session_state[RESULT_KEY] = {"settings": settings, "training": training, "result": result,
                                    "after": _after(settings, result.hyperparameters)}
stored = st.session_state.get(RESULT_KEY)
trained = stored["result"] if stored and stored["settings"] == settings else None
after = stored["after"] if trained is not None else None

# -- Fig. 5.7: before and after --------------------------------------------------------------------------------
before_samples, before_acceptance, before_divergences = _before(settings)
left, right = st.columns(2)
with left:
    st.plotly_chart(toy_target_figure(z1, z2, density, before_samples, setup.proposal_mean.numpy(),
                                      setup.proposal_std.numpy(), limits, title="Before training"),
                    key="lab_before")
    st.caption(f"{SHOWN_CHAINS} chains of T = {settings[1]} transitions from the tight proposal with the initial "
               f"step sizes: acceptance {before_acceptance:.2f}, {before_divergences} divergent transitions.")
with right:
    if trained is not None:
        after_samples, after_acceptance, after_divergences = after  # sampled once, right after training
        inflation = trained.inflation.numpy() * np.ones(2)  # (2,): per dimension, or one shared
        st.plotly_chart(toy_target_figure(z1, z2, density, after_samples, setup.proposal_mean.numpy(),
                                          inflation * setup.proposal_std.numpy(), limits, title="After training"),
                        key="lab_after")
        st.caption(f"The same chains with the trained step sizes (mean {float(trained.step_sizes.mean()):.3f}) and "
                   f"inflation s = {', '.join(f'{v:.2f}' for v in trained.inflation.numpy())} (the orange ellipse is "
                   f"the inflated proposal): acceptance {after_acceptance:.2f}, {after_divergences} divergent "
                   "transitions.")
    else:
        st.info("Press **Train** to tune the step sizes and the inflation; the chains after training appear here, "
                "and the training curves below.")

# -- Figs 5.7c and 5.8: the curves ----------------------------------------------------------------------------
if trained is not None:
    st.header("Training")
    metrics = st.columns(4)
    metrics[0].metric("Acceptance", f"{after_acceptance:.2f}", f"{after_acceptance - before_acceptance:+.2f}")
    metrics[1].metric("Inflation s", f"{inflation[0]:.2f}" if len(trained.inflation) == 1
                      else f"{inflation[0]:.2f}, {inflation[1]:.2f}")
    metrics[2].metric("Mean step size", f"{float(trained.step_sizes.mean()):.3f}",
                      f"{float(trained.step_sizes.mean() - setup.step_sizes.mean()):+.3f}")
    metrics[3].metric("Final SKSD", f"{float(trained.history['sksd'][-5:].mean()):.3f}",
                      help="Mean over the last five iterations; ≈ 0 when the chains follow the target.")
    history = {key: value.numpy() for key, value in trained.history.items()}
    st.plotly_chart(hmc_training_figure(history), key="lab_history")
    st.caption("Per training iteration, from the 30 chains of that iteration: mean acceptance (dotted: 0.65, the "
               "optimum of Neal 2011), step sizes per dimension (line: mean over the T transitions, band: min–max), "
               "the HMC objective being maximised, the SKSD being minimised, the inflation and divergences.")
    download_csv("Training history (CSV)", csv_bytes(_history_table(history)), f"hmc-lab-{target}.csv",
                 key="lab_history_csv")
