"""The HMC lab's numbers: chains summarised once, what training changed, the history table."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from vizvae.inference.toy import toy_samples, toy_setup, train_toy
from vizvae.inference.toy_lab import TRAINING_SHARE, history_table, toy_chains, toy_training, train_toy_run
from vizvae.jobs import Cancelled


def test_toy_chains_summarise_the_same_run_as_toy_samples():
    setup = toy_setup("banana", 0.1, (0.02, 0.05), 5, seed=3)
    chains = toy_chains(setup, n_chains=40, seed=3)
    result = toy_samples(setup, n_chains=40, seed=3)
    assert np.array_equal(chains.samples, result.samples.numpy()) and chains.samples.shape == (40, 2)
    assert chains.acceptance == result.acceptance_rate() and chains.n_divergences == result.n_divergences()


def test_training_summary_repeats_a_shared_inflation_and_measures_the_step_size_change():
    setup = SimpleNamespace(step_sizes=torch.full((5, 2), 0.03))
    sksd = torch.tensor([9.0, 9.0, 1.0, 2.0, 3.0, 4.0, 5.0])  # the last five average to 3
    shared = SimpleNamespace(inflation=torch.tensor([2.5]), step_sizes=torch.full((5, 2), 0.13),
                             history={"sksd": sksd})
    summary = toy_training(setup, shared)
    assert summary.inflation.tolist() == [2.5, 2.5] and summary.inflation_values.tolist() == [2.5]
    assert summary.mean_step_size == pytest.approx(0.13) and summary.step_size_change == pytest.approx(0.10)
    assert summary.final_sksd == pytest.approx(3.0)
    per_dimension = SimpleNamespace(inflation=torch.tensor([1.5, 3.0]), step_sizes=torch.full((5, 2), 0.03),
                                    history={"sksd": sksd})
    summary = toy_training(setup, per_dimension)
    assert summary.inflation.tolist() == [1.5, 3.0] and summary.step_size_change == pytest.approx(0.0)


def test_the_history_table_has_one_line_per_iteration_and_the_mean_step_size_per_dimension():
    iterations, transitions = 4, 3
    step_sizes = np.arange(iterations * transitions * 2, dtype=float).reshape(iterations, transitions, 2)
    history = {"mean_acceptance": np.linspace(0.2, 0.8, iterations), "hmc_objective": -np.arange(iterations),
               "sksd": np.ones(iterations), "divergences": np.zeros(iterations), "step_sizes": step_sizes,
               "inflation": np.ones((iterations, 1)) * 1.5}
    table = history_table(history)
    assert list(table.columns) == ["iteration", "mean_acceptance", "hmc_objective", "sksd", "divergences",
                                   "mean_step_size_z1", "mean_step_size_z2", "inflation"]
    assert table["iteration"].tolist() == [1, 2, 3, 4]
    assert table["mean_step_size_z1"].tolist() == [2.0, 8.0, 14.0, 20.0]  # mean of 0, 2, 4; of 6, 8, 10; ...
    assert table["mean_step_size_z2"].tolist() == [3.0, 9.0, 15.0, 21.0]
    history["inflation"] = np.stack([np.ones(iterations), 2 * np.ones(iterations)], 1)
    table = history_table(history)
    assert table["inflation_z1"].tolist() == [1.0] * 4 and table["inflation_z2"].tolist() == [2.0] * 4


def test_a_run_in_the_background_reports_each_iteration_and_the_acceptance_so_far():
    setup = toy_setup("wave", 0.1, (0.02, 0.05), 5, seed=0)
    seen = []
    run = train_toy_run(lambda fraction, message=None: seen.append((fraction, message)), setup, 6, 0.05, 0.1,
                        seed=3, n_chains=50)
    foreground = train_toy(setup, 6, 0.05, 0.1, seed=3)  # the same training without a report
    assert torch.equal(run.result.history["sksd"], foreground.history["sksd"])
    assert [f for f, _ in seen] == pytest.approx([TRAINING_SHARE * i / 6 for i in range(1, 7)] + [TRAINING_SHARE])
    acceptances = run.result.history["mean_acceptance"].numpy()
    for i, (_, message) in enumerate(seen[:6]):
        assert message.startswith(f"iteration {i + 1}/6: acceptance so far {acceptances[:i + 1].mean():.2f},")
    trained = toy_chains(setup, run.result.hyperparameters, n_chains=50, seed=3)
    assert np.array_equal(run.after.samples, trained.samples) and run.after.acceptance == trained.acceptance


def test_a_cancel_stops_the_training_at_the_next_iteration():
    setup = toy_setup("wave", 0.1, (0.02, 0.05), 5, seed=0)
    calls = []

    def report(fraction, message=None):
        calls.append(fraction)
        if len(calls) == 3:
            raise Cancelled("cancelled")

    with pytest.raises(Cancelled):
        train_toy_run(report, setup, 100, 0.05, 0.1, n_chains=50)
    assert len(calls) == 3  # three iterations ran, of 100
