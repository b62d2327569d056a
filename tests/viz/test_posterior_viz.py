"""Figures and tables of the posterior page and the HMC lab: the data they are given is what they draw."""

import numpy as np

from vizvae.viz.posterior import (
    DIVERGENT_COLOUR, HMC_COLOUR, REJECTED_COLOUR, acceptance_figure, corner_figure, dimension_table,
    ess_rhat_figure, gaps_figure, gaps_table, hmc_training_figure, iwae_curve_figure, iwae_table, marginals_figure,
    posterior_plane_figure, step_size_heatmap, toy_target_figure,
)


def _chain(steps=4, chains=3):
    rng = np.random.default_rng(0)
    return np.cumsum(rng.normal(size=(steps + 1, chains, 2)), axis=0)


def test_plane_figure_steps_through_the_chain():
    chain = _chain()
    accepted = np.array([[True, False, True]] * 4)
    divergent = np.array([[False, False, True]] * 4)
    encoder = (np.zeros(2), np.eye(2))
    at_start = posterior_plane_figure(chain, 0, encoder, limits=((-5, 5), (-5, 5)))
    names = [t.name for t in at_start.data]
    assert names == ["encoder q_φ(z | x), 2σ", "start (t = 0)", "chains at t = 0"]
    assert list(at_start.layout.xaxis.range) == [-5, 5]
    contours = (np.linspace(-1, 1, 5), np.linspace(-1, 1, 5), np.ones((5, 5)))
    later = posterior_plane_figure(chain, 2, encoder, proposal=(np.zeros(2), 4 * np.eye(2)), contours=contours,
                                   best=(np.ones(2), np.eye(2)), accepted=accepted, divergent=divergent)
    names = [t.name for t in later.data]
    assert names == ["p(z | x) (exact)", "encoder q_φ(z | x), 2σ", "initial proposal N(μ, s·σ), 2σ",
                     "best Gaussian q*, 2σ", "paths, t = 0…2", "start (t = 0)", "chains at t = 2"]
    current = later.data[-1]
    assert np.allclose(current.x, chain[2, :, 0]) and np.allclose(current.y, chain[2, :, 1])
    assert list(current.marker.color) == [HMC_COLOUR, REJECTED_COLOUR, DIVERGENT_COLOUR]
    paths = later.data[4]
    assert len(paths.x) == 3 * (2 + 1 + 1)  # three states and a gap per chain
    assert posterior_plane_figure(chain, 99, encoder).data[-1].name == "chains at t = 4"  # clipped to T


def test_marginals_corner_and_diagnostics_figures_carry_their_data():
    rng = np.random.default_rng(1)
    samples = rng.normal(size=(200, 3))
    mean, std = np.zeros(3), np.ones(3)
    marginals = marginals_figure(samples, mean, std, [0, 2], exact={0: (np.linspace(-3, 3, 7), np.ones(7))},
                                 best=(mean, std))
    histograms = [t for t in marginals.data if t.type == "histogram"]
    assert len(histograms) == 2 and np.allclose(histograms[1].x, samples[:, 2])
    assert sum(t.name == "exact p(z_d | x)" for t in marginals.data) == 1
    assert sum(t.name == "q*" for t in marginals.data) == 2
    corner = corner_figure(samples, mean, std, [0, 1, 2])
    assert sum(t.type == "histogram" for t in corner.data) == 3
    assert sum(t.name == "HMC samples" for t in corner.data) == 3

    acceptance = rng.random((5, 4))
    divergences = np.zeros((5, 4), dtype=bool)
    divergences[2, :2] = True
    figure = acceptance_figure(acceptance, divergences)
    bars, dots, mean_line = figure.data
    assert list(bars.y) == [0, 0, 2, 0, 0]
    assert np.allclose(mean_line.y, acceptance.mean(1)) and list(mean_line.x) == [1, 2, 3, 4, 5]
    assert len(dots.y) == 20
    heatmap = step_size_heatmap(np.arange(6.0).reshape(3, 2)).data[0]
    assert np.allclose(heatmap.z, np.arange(6.0).reshape(3, 2)) and list(heatmap.x) == ["z0", "z1"]
    ess = ess_rhat_figure(np.array([90.0, 40.0]), np.array([1.0, 1.3]), n_draws=100)
    assert list(ess.data[0].y) == [90.0, 40.0]
    assert np.allclose(np.asarray(ess.data[1].y) + 1.0, [1.0, 1.3])  # bars from R-hat = 1
    assert list(ess.data[1].marker.color) == [HMC_COLOUR, DIVERGENT_COLOUR]


def test_bound_and_gap_figures_and_tables():
    ks = np.array([1, 10, 100])
    figure = iwae_curve_figure(ks, np.array([-10.0, -9.0, -8.5]), np.array([-8.6, -8.45, -8.4]), -10.0, -8.7, -8.4)
    assert figure.layout.xaxis.type == "log"
    assert [t.name for t in figure.data] == ["IWAE(K), encoder proposal", "IS(K), Gaussian fitted to HMC samples",
                                             "ELBO(q_φ)", "ELBO(q*)", "log p(x) by quadrature"]
    gaps = gaps_figure(approximation_gap=0.3, amortisation_gap=1.2)
    assert [bar.x[0] for bar in gaps.data] == [1.2, 0.3] and gaps.layout.barmode == "stack"
    table = gaps_table({"log p(x)": -8.4, "ELBO(q_φ)": -10.0})
    assert table["nats"].tolist() == [-8.4, -10.0]
    bounds = iwae_table(ks, np.array([-10.0, -9.0, -8.5]), None)
    assert list(bounds.columns) == ["K", "iwae_encoder"]
    samples = np.array([[0.0, 1.0], [2.0, 3.0]])
    dims = dimension_table(np.zeros(2), np.ones(2), samples, np.array([2.0, 2.0]), np.array([1.0, 1.1]))
    assert dims["hmc_mean"].tolist() == [1.0, 2.0] and dims["dim"].tolist() == ["z0", "z1"]


def test_hmc_lab_figures():
    z = np.linspace(-1, 1, 5)
    samples = np.random.default_rng(2).normal(size=(50, 2))
    figure = toy_target_figure(z, z, np.ones((5, 5)), samples, np.zeros(2), np.full(2, 0.1), ((-2, 2), (-3, 3)))
    assert [t.name for t in figure.data] == ["target p*", "initial proposal, 2σ", "HMC samples"]
    assert list(figure.layout.yaxis.range) == [-3, 3]
    n = 6
    history = {"mean_acceptance": np.linspace(0.2, 0.7, n), "hmc_objective": np.zeros(n), "sksd": np.ones(n),
               "inflation": np.ones((n, 2)), "divergences": np.array([3, 2, 1, 0, 0, 0]),
               "step_sizes": np.ones((n, 4, 2))}
    figure = hmc_training_figure(history)
    names = [t.name for t in figure.data]
    assert "mean acceptance" in names and "inflation of z1" in names and "inflation of z2" in names
    assert names.count("φ of z1 (mean over t)") == 1 and "φ of z2 (mean over t)" in names
    divergent = [t for t in figure.data if t.name == "divergent"][0]
    assert list(divergent.y) == [3, 2, 1, 0, 0, 0]


def test_the_lab_axes_grow_to_hold_an_inflated_proposal_and_no_more():
    import pytest

    from vizvae.viz.posterior import fitted_limits, toy_target_figure

    limits = ((-1.0, 1.0), (-1.0, 1.0))
    # a 2σ ellipse of σ = (1, 0.2) spans ±2 on z1 (beyond the target's ±1) and ±0.4 on z2 (inside)
    (x_low, x_high), (y_low, y_high) = fitted_limits(limits, np.zeros(2), np.array([1.0, 0.2]))
    assert (x_low, x_high) == pytest.approx((-2.2, 2.2)) and (y_low, y_high) == (-1.0, 1.0)
    assert fitted_limits(limits, np.array([0.5, 0.0]), np.array([0.1, 0.1])) == limits  # inside: untouched
    grid = np.linspace(-1, 1, 5)
    fig = toy_target_figure(grid, grid, np.ones((5, 5)), np.zeros((3, 2)), np.array([0.8, 0.0]), np.array([1.5, 1.5]),
                            limits)
    ellipse = next(t for t in fig.data if t.name == "initial proposal, 2σ")
    assert fig.layout.xaxis.range[0] <= min(ellipse.x) and max(ellipse.x) <= fig.layout.xaxis.range[1]
    assert fig.layout.yaxis.range[0] <= min(ellipse.y) and max(ellipse.y) <= fig.layout.yaxis.range[1]
