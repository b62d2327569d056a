"""The numbers the HMC lab shows about a toy run (thesis Figs 5.7–5.8): the chains before and after
training summarised once, what training changed, and its per-iteration history as a table."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

import numpy as np
import pandas as pd

from vizvae.inference.toy import ToySetup, toy_samples, train_toy
from vizvae.kernels.hmc import step_size_growth

if TYPE_CHECKING:
    from vizvae.kernels.hmc import HMCHyperparameters
    from vizvae.kernels.stein import HMCTrainingResult

FINAL_ITERATIONS = 5  # the "final SKSD" is the mean over this many last iterations


@dataclass(frozen=True)
class ToyChains:
    """The last states of ``n_chains`` HMC runs from the (inflated) proposal, with how they went."""

    samples: np.ndarray  # (n_chains, 2)
    acceptance: float  # mean acceptance probability over chains and transitions
    n_divergences: int


def toy_chains(setup: ToySetup, hyperparameters: HMCHyperparameters | None = None, n_chains: int = 500, seed: int = 0) -> ToyChains:
    """``toy_samples`` summarised: the initial hyper-parameters when ``hyperparameters`` is None."""
    result = toy_samples(setup, hyperparameters, n_chains=n_chains, seed=seed)
    return ToyChains(result.samples.numpy(), result.acceptance_rate(), result.n_divergences())


@dataclass(frozen=True)
class ToyTraining:
    """What training changed: the inflation per dimension (one shared value repeated), the mean step
    size and its change from the initial one, and the SKSD at the end of training."""

    inflation: np.ndarray  # (2,)
    inflation_values: np.ndarray  # (L,): one per inflated slice, as trained
    mean_step_size: float
    step_size_change: float
    final_sksd: float
    step_size_growth: float = 1.0  # geometric mean of learned ÷ initial step sizes

    @property
    def initial_mean_step_size(self) -> float:
        return self.mean_step_size - self.step_size_change


def toy_training(setup: ToySetup, result: HMCTrainingResult) -> ToyTraining:
    inflation = result.inflation.numpy()
    mean_step_size = float(result.step_sizes.mean())
    return ToyTraining(
        inflation=inflation * np.ones(2), inflation_values=inflation, mean_step_size=mean_step_size,
        step_size_change=mean_step_size - float(setup.step_sizes.mean()),
        final_sksd=float(result.history["sksd"][-FINAL_ITERATIONS:].mean()),
        step_size_growth=step_size_growth(result.step_sizes.to(setup.step_sizes), setup.step_sizes))


@dataclass(frozen=True)
class ToyRun:
    """A training of the lab and the chains it gives (``n_chains`` runs with the trained values)."""

    result: HMCTrainingResult
    after: ToyChains


TRAINING_SHARE = 0.95  # of a run's progress: the iterations; the rest samples the trained chains


def train_toy_run(report: Callable[..., None], setup: ToySetup, n_iterations: int, lr_step_sizes: float,
                  lr_inflation: float, *, seed: int = 0, per_dimension: bool = False,
                  n_chains: int = 500) -> ToyRun:
    """``train_toy``, telling ``report(fraction, message)`` after each iteration how far it got and the
    mean acceptance so far (``vizvae.jobs``: it raises ``Cancelled`` to stop between iterations),
    then the trained chains from the same seed."""
    acceptances: list[float] = []

    def tell(iteration: int, record: dict[str, float]) -> None:
        acceptances.append(float(record["mean_acceptance"]))
        report(TRAINING_SHARE * (iteration + 1) / n_iterations,
               f"iteration {iteration + 1}/{n_iterations}: acceptance so far {np.mean(acceptances):.2f}, "
               f"SKSD {record['sksd']:.3f}, mean φ {record['mean_step_size']:.3f}")

    result = train_toy(setup, n_iterations, lr_step_sizes, lr_inflation, seed=seed, callback=tell,
                       per_dimension=per_dimension)
    report(TRAINING_SHARE, f"sampling {n_chains} chains with the trained values")
    return ToyRun(result, toy_chains(setup, result.hyperparameters, n_chains=n_chains, seed=seed))


def history_table(history: dict[str, np.ndarray]) -> pd.DataFrame:
    """One line per training iteration: mean acceptance, HMC objective, SKSD, divergences, the mean step
    size of each dimension over the T transitions, and the inflation(s)."""
    step_sizes = np.asarray(history["step_sizes"])  # (iterations, T, dim)
    table = pd.DataFrame({"iteration": np.arange(1, len(history["mean_acceptance"]) + 1),
                          "mean_acceptance": np.asarray(history["mean_acceptance"]),
                          "hmc_objective": np.asarray(history["hmc_objective"]), "sksd": np.asarray(history["sksd"]),
                          "divergences": np.asarray(history["divergences"])})
    inflation = np.asarray(history["inflation"]).reshape(len(step_sizes), -1)  # (iterations, L)
    for d in range(step_sizes.shape[2]):
        table[f"mean_step_size_z{d + 1}"] = step_sizes[:, :, d].mean(1)
    for d in range(inflation.shape[1]):
        table[f"inflation_z{d + 1}" if inflation.shape[1] > 1 else "inflation"] = inflation[:, d]
    return table


# the HMC lab's first view of each target: Fig. 5.7's T, the authors' small initial steps, a tight
# proposal, seed 0; then 150 iterations at learning rates 0.05 / 0.1, one inflation; 500 chains drawn
LAB_CHAINS = 500
LAB_DEFAULTS = {"step_range": "authors", "proposal_std": 0.1, "seed": 0, "iterations": 150, "lr_steps": 0.05,
                "lr_inflation": 0.1, "per_dimension": False}
FIGURE_TRANSITIONS = {"wave": 5, "dual_moon": 10, "banana": 10}  # T of Fig. 5.7's rows


def default_lab_settings(target: str) -> tuple[tuple, tuple]:
    """(chain settings, training settings) of the lab's first view of ``target``, as the page builds them."""
    d = LAB_DEFAULTS
    settings = (target, FIGURE_TRANSITIONS.get(target, 10), d["step_range"], d["proposal_std"], d["seed"])
    return settings, (d["iterations"], d["lr_steps"], d["lr_inflation"], d["per_dimension"])
