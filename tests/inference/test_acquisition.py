"""SAIA (thesis §5.3): the histogram MI estimator of eq. (5.13) against closed forms, and the acquisition loop."""

from __future__ import annotations

import math
from argparse import Namespace

import numpy as np
import pytest
import torch

from vizvae.data import load_dataset
from vizvae.inference.acquisition import (
    STRATEGIES, advance_chains, curve_area, curve_summary, histogram_mutual_information, joint_draws,
    kl_rewards_from_draws, mi_rewards, posterior_logdensity, run_acquisition, run_acquisitions, systematic_resample,
)
from vizvae.kernels.hmc import hmc_init
from vizvae.train.staged_commands import build_mixed_model
from vizvae.train.stages import StageSettings, train_stages


def gaussian_pair(rho: float, n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    z = torch.randn(2, n, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return z[0], rho * z[0] + math.sqrt(1 - rho**2) * z[1]


@pytest.mark.parametrize("rho", [0.0, 0.3, 0.6, -0.6])
def test_histogram_mi_recovers_the_bivariate_gaussian_mi(rho):
    x, y = gaussian_pair(rho, 100_000, seed=1)
    exact = -0.5 * math.log(1 - rho**2)
    assert float(histogram_mutual_information(x, y, bins=30)) == pytest.approx(exact, abs=0.015)


def test_histogram_mi_is_batched_over_leading_dims():
    pairs = [gaussian_pair(rho, 50_000, seed=i) for i, rho in enumerate((0.2, 0.5, 0.8))]
    x = torch.stack([p[0] for p in pairs])
    y = torch.stack([p[1] for p in pairs])
    batched = histogram_mutual_information(x, y, bins=25)
    single = torch.stack([histogram_mutual_information(a, b, bins=25) for a, b in zip(x, y)])
    torch.testing.assert_close(batched, single)
    assert batched[0] < batched[1] < batched[2]


def test_histogram_mi_of_discrete_variables_is_exact_for_a_binary_channel():
    """x ~ Bernoulli(½), y = x flipped with probability ε: I = log 2 − H(ε), counted in categories."""
    n, flip = 200_000, 0.1
    g = torch.Generator().manual_seed(0)
    x = (torch.rand(n, generator=g) < 0.5).double()
    y = torch.where(torch.rand(n, generator=g) < flip, 1 - x, x)
    entropy = -(flip * math.log(flip) + (1 - flip) * math.log(1 - flip))
    estimate = histogram_mutual_information(x, y, bins=6, x_levels=2, y_levels=2)
    assert float(estimate) == pytest.approx(math.log(2) - entropy, abs=0.005)


@pytest.fixture(scope="module")
def model_and_rows():
    dataset = load_dataset("boston")
    torch.manual_seed(0)
    args = Namespace(model="vaem", latent_dims="4", hidden="32", likelihood=None, sigma_mode="fixed",
                     sigma=0.1**0.5, beta=1.0, seed=0, importance=5, marginal_hidden=16)
    model = build_mixed_model(args, dataset)
    train_stages(model, dataset, StageSettings(marginal_steps=150, steps=300, batch_size=64, eval_rows=20))
    return model, torch.as_tensor(dataset.x_test[:6]), torch.as_tensor(dataset.y_test[:6])


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_each_step_acquires_one_new_feature_until_all_are_observed(model_and_rows, strategy):
    model, x, y = model_and_rows
    run = run_acquisition(model, x, y, strategy, n_samples=40, kl_samples=8, generator=torch.Generator().manual_seed(0))
    d = x.shape[1]
    assert run.observed.shape == (d + 1, 6, d) and run.acquired.shape == (d, 6)
    np.testing.assert_array_equal(run.observed.sum(-1), np.repeat(np.arange(d + 1)[:, None], 6, axis=1))
    for row in range(6):
        assert sorted(run.acquired[:, row].tolist()) == list(range(d))  # every feature exactly once
        for step in range(d):
            chosen = run.acquired[step, row]
            assert not run.observed[step, row, chosen] and run.observed[step + 1, row, chosen]
            rewards = run.rewards[step, row]
            assert np.all(np.isnan(rewards[run.observed[step, row]]))  # observed ones are not candidates
            assert rewards[chosen] == np.nanmax(rewards)
    # once everything is observed the imputation is the data itself
    np.testing.assert_allclose(run.imputed_mean[-1], x.numpy(), rtol=0, atol=1e-6)
    assert np.all(np.isfinite(run.error)) and np.all(np.isfinite(run.y_nll))


def test_unavailable_features_are_never_acquired_and_unknown_targets_give_no_error(model_and_rows):
    model, x, _ = model_and_rows
    available = torch.ones_like(x, dtype=torch.bool)
    available[:, [0, 5]] = False
    run = run_acquisition(model, x[:2], None, "mi", n_samples=30, available=available[:2],
                          generator=torch.Generator().manual_seed(0))
    d = x.shape[1]
    assert set(run.acquired[: d - 2].ravel().tolist()).isdisjoint({0, 5})
    assert np.all(run.acquired[d - 2:] == -1)  # nothing left to take
    assert np.all(np.isnan(run.error)) and np.all(np.isfinite(run.y_point))


def test_mi_rewards_prefer_the_feature_that_determines_the_target(model_and_rows):
    """Over the test rows, the first pick of the MI reward is the feature with the largest estimated
    I(y; x_i) at the empty mask, and observing everything predicts better than observing nothing."""
    model, x, y = model_and_rows
    run = run_acquisition(model, x, y, "mi", n_samples=200, generator=torch.Generator().manual_seed(0))
    assert np.all(run.acquired[0] == np.nanargmax(run.rewards[0], axis=-1))
    assert run.y_nll[-1].mean() < run.y_nll[0].mean()


def test_curve_summary_and_area():
    errors = np.array([[1.0, 3.0], [0.5, 1.5], [0.0, 1.0]])
    summary = curve_summary(errors)
    assert summary["mean"] == [2.0, 1.0, 0.5]
    assert summary["se"][0] == pytest.approx(np.std([1.0, 3.0], ddof=1) / math.sqrt(2))
    assert curve_area(summary["mean"]) == pytest.approx((2.0 + 1.0) / 2 + (1.0 + 0.5) / 2)


INFORMATIVE = 2  # the one column the synthetic target depends on


@pytest.fixture(scope="module")
def one_informative_column(tmp_path_factory):
    """A VAEM trained on a synthetic table of five independent Gaussian columns whose target is
    column 2 plus a little noise: I(y; x_2) is large and I(y; x_i) = 0 for every other column."""
    rng = np.random.default_rng(0)
    features = rng.normal(size=(600, 5))
    target = features[:, INFORMATIVE] + 0.1 * rng.normal(size=600)
    path = tmp_path_factory.mktemp("synthetic") / "one_informative.csv"
    header = ",".join([f"x{i}" for i in range(5)] + ["y"])
    np.savetxt(path, np.column_stack([features, target]), delimiter=",", header=header, comments="")
    dataset = load_dataset(str(path))
    torch.manual_seed(0)
    args = Namespace(model="vaem", latent_dims="3", hidden="32", likelihood=None, sigma_mode="fixed",
                     sigma=0.1**0.5, beta=1.0, seed=0, importance=5, marginal_hidden=16)
    model = build_mixed_model(args, dataset)
    train_stages(model, dataset, StageSettings(marginal_steps=150, steps=400, batch_size=64, eval_rows=20))
    return model, torch.as_tensor(dataset.x_test[:20]), torch.as_tensor(dataset.y_test[:20])


def test_mi_acquires_the_one_informative_column_first_and_random_does_not(one_informative_column):
    model, x, y = one_informative_column
    mi = run_acquisition(model, x, y, "mi", n_samples=1000, generator=torch.Generator().manual_seed(0))
    # every other column's reward is plug-in bias only (≈ 0.01-0.03 nats at 1000 draws), the
    # informative one's at least twice the largest of them
    others = np.delete(mi.rewards[0], INFORMATIVE, axis=-1)
    assert np.all(mi.rewards[0][:, INFORMATIVE] > 2 * others.max(-1))
    assert np.all(mi.acquired[0] == INFORMATIVE)
    # random: over 20 seeds × 20 rows the informative column comes first with frequency 1/D,
    # within 4 binomial standard errors, far below MI's 1
    d = x.shape[1]
    first = np.concatenate([run_acquisition(model, x, y, "random", n_samples=5,
                                            generator=torch.Generator().manual_seed(seed)).acquired[0]
                            for seed in range(20)])
    frequency, standard_error = np.mean(first == INFORMATIVE), math.sqrt((1 / d) * (1 - 1 / d) / len(first))
    assert abs(frequency - 1 / d) < 4 * standard_error
    # observing the informative column first lowers the target's error more than random's first pick
    random = run_acquisition(model, x, y, "random", n_samples=200, generator=torch.Generator().manual_seed(0))
    assert mi.error[1].mean() < random.error[1].mean()


# -- one batched call per step ------------------------------------------------------------------------------------
def test_batched_scoring_equals_scoring_each_candidate_alone(model_and_rows):
    """Both rewards score every (row, candidate, draw) in one call; from the same draws each candidate's
    reward is the one it gets when scored alone, to float precision."""
    model, x, _ = model_and_rows
    mask = torch.zeros_like(x, dtype=torch.bool)
    mask[:, [1, 4]] = True
    draws = joint_draws(model, x, mask, 30, torch.Generator().manual_seed(3), encoder_only=True)
    batched = kl_rewards_from_draws(model, x, mask, draws)
    alone = torch.cat([kl_rewards_from_draws(model, x, mask, draws, [i]) for i in range(x.shape[1])], dim=-1)
    torch.testing.assert_close(batched, alone, rtol=1e-5, atol=1e-6)
    levels = model.types.levels
    mi_alone = torch.stack([histogram_mutual_information(draws.x[..., i], draws.y, 6, int(levels[i]), 0)
                            for i in range(x.shape[1])], dim=-1)
    torch.testing.assert_close(mi_rewards(model, draws), mi_alone)


def test_strategies_run_together_share_step_zero_and_each_acquires_every_feature(model_and_rows):
    model, x, y = model_and_rows
    runs = run_acquisitions(model, x[:3], y[:3], STRATEGIES, n_samples=30, kl_samples=8,
                            generator=torch.Generator().manual_seed(0))
    d = x.shape[1]
    assert list(runs) == list(STRATEGIES)
    for run in runs.values():
        assert run.y_samples.shape == (d + 1, 3, 30)
        assert all(sorted(run.acquired[:, r].tolist()) == list(range(d)) for r in range(3))
        # nothing is observed at step 0, for every strategy alike: the same draws
        np.testing.assert_array_equal(run.y_samples[0], runs["mi"].y_samples[0])


# -- warm-started chains: known answers on factor analysis --------------------------------------------------------
@pytest.mark.parametrize("step_size", [1e-6, 0.25])
def test_warm_started_chains_reach_the_posterior_of_the_grown_mask(step_size):
    """Exact draws of p(z | x_O) for 2 observed entries, advanced to O ∪ {2}: reweighting and resampling
    alone (moves with negligible steps) and with real HMC moves both give the exact p(z | x_O') of factor
    analysis, within 4 Monte Carlo standard errors of the mean and variance."""
    from tests.inference.factor_analysis import DTYPE, X, FactorAnalysis, posterior

    model = FactorAnalysis()
    x = X.unsqueeze(0)
    old_mask = torch.tensor([[True, True, False, False, False, False]])
    new_mask = old_mask.clone()
    new_mask[0, 2] = True
    n = 4000
    generator = torch.Generator().manual_seed(0)
    mean_old, cov_old = posterior(x, old_mask)
    noise = torch.randn(1, n, 2, generator=generator, dtype=DTYPE)
    start = mean_old.unsqueeze(1) + noise @ torch.linalg.cholesky(cov_old).transpose(-1, -2)
    state = hmc_init(start, posterior_logdensity(model, x, old_mask))
    step_sizes = torch.full((3, 2), step_size, dtype=DTYPE)
    moved = advance_chains(posterior_logdensity(model, x, new_mask), state, step_sizes, 5, generator).position[0]
    mean_new, cov_new = posterior(x, new_mask)
    variance = torch.diagonal(cov_new[0])
    # resampling repeats draws: allow for an effective sample size of a quarter of n
    assert torch.all((moved.mean(0) - mean_new[0]).abs() < 4 * (variance / (n / 4)).sqrt())
    assert torch.all((moved.var(0) - variance).abs() < 4 * variance * math.sqrt(2 / (n / 4)))


def test_systematic_resampling_keeps_equal_weights_and_follows_unequal_ones():
    generator = torch.Generator().manual_seed(0)
    equal = systematic_resample(torch.zeros(2, 50), generator)
    torch.testing.assert_close(equal, torch.arange(50).expand(2, 50))
    log_weights = torch.tensor([[0.0, math.log(3.0), -math.inf, 0.0]])
    counts = np.bincount(systematic_resample(log_weights.expand(1, 4).repeat(1, 250), generator)[0] % 4, minlength=4)
    assert counts[2] == 0 and counts[1] == pytest.approx(3 * counts[0], abs=3)
