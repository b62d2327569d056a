"""The Global & local page's own numbers (vizvae/inference/global_local_view.py), each against an
answer known without the function: counts of a hand-written assignment, the seeded draws of
numpy's generator, and the posteriors the model gives the two groups directly."""

import numpy as np
import pytest
import torch

from vizvae.data.batches import make_rule, sample_batches
from vizvae.errors import DataError
from vizvae.inference.global_local_view import (
    CLUSTER_BETAS, cluster_beta, cluster_sizes, group_interpolation, interpolation_groups, shared_dimension,
)
from vizvae.models import UGVAE, UGVAEConfig


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return UGVAE(UGVAEConfig(input_shape=(1, 4, 4), latent_dim=3, global_dim=2, clusters=4, hidden_dim=16,
                             group_size=8)).eval()


@pytest.fixture(scope="module")
def x():
    return np.random.default_rng(5).random((20, 16)).astype(np.float32)


def test_cluster_sizes_count_every_cluster_including_empty_ones():
    assert cluster_sizes(np.array([0, 2, 2, 0, 2]), 4).tolist() == [2, 0, 3, 0]
    assert cluster_sizes(np.array([], dtype=np.int64), 3).tolist() == [0, 0, 0]
    assignment = np.random.default_rng(0).integers(0, 5, size=1000)
    sizes = cluster_sizes(assignment, 5)
    assert sizes.sum() == 1000 and sizes.tolist() == [int((assignment == k).sum()) for k in range(5)]


def test_a_counterpart_moves_the_same_dimension_or_its_last():
    assert shared_dimension(None, 3) is None
    assert shared_dimension(1, 3) == 1
    assert shared_dimension(5, 3) == 2


def test_cluster_beta_zero_and_prior_are_the_origin_and_the_seeded_normal_draw(model, x):
    assert CLUSTER_BETAS == ("zero", "prior", "batch")
    torch.testing.assert_close(cluster_beta(model, x, "zero", seed=3), torch.zeros(2), rtol=0, atol=0)
    for seed in (0, 7):
        expected = torch.as_tensor(np.random.default_rng(seed).standard_normal(2), dtype=torch.float32)
        torch.testing.assert_close(cluster_beta(model, x, "prior", seed=seed), expected, rtol=0, atol=0)
    assert not torch.equal(cluster_beta(model, x, "prior", seed=0), cluster_beta(model, x, "prior", seed=7))


def test_cluster_beta_of_a_batch_is_the_posterior_mean_of_the_seeded_group(model, x):
    rows = np.random.default_rng(4).choice(len(x), size=8, replace=False)  # the model's group size
    with torch.no_grad():
        expected = model.global_posterior(torch.as_tensor(x[rows])).mean
    torch.testing.assert_close(cluster_beta(model, x, "batch", seed=4), expected)
    with pytest.raises(ValueError, match="cluster β"):
        cluster_beta(model, x, "posterior", seed=0)


def test_interpolation_groups_follow_their_rules_from_one_seeded_generator():
    labels = np.arange(40) % 10
    rules = (make_rule("even"), make_rule("odd"))
    rows_a, rows_b = interpolation_groups(labels, rules, size=6, seed=2)
    assert rows_a.shape == rows_b.shape == (6,)
    assert set(labels[rows_a] % 2) == {0} and set(labels[rows_b] % 2) == {1}
    assert len(set(rows_a.tolist())) == 6 and len(set(rows_b.tolist())) == 6  # no row twice in a group
    rng = np.random.default_rng(2)  # the same draws, in order: the first rule's group, then the second's
    np.testing.assert_array_equal(rows_a, sample_batches(labels, rules[0], 1, 6, rng)[0])
    np.testing.assert_array_equal(rows_b, sample_batches(labels, rules[1], 1, 6, rng)[0])
    with pytest.raises(DataError):
        interpolation_groups(labels, (make_rule("digit", digit=3), make_rule("odd")), size=5)  # four 3s only


def test_interpolation_runs_from_one_groups_beta_and_image_to_the_others(model, x):
    rows_a, rows_b = np.array([0, 2, 4, 6]), np.array([1, 3, 5, 7, 9])
    grid = group_interpolation(model, x, rows_a, rows_b, steps=5)
    x_t = torch.as_tensor(x)
    with torch.no_grad():
        beta_a, beta_b = model.global_posterior(x_t[rows_a]).mean, model.global_posterior(x_t[rows_b]).mean
        z_a, z_b = model.encode(x_t[[0]]).mean[0], model.encode(x_t[[1]]).mean[0]
    assert grid.beta.shape == (5, 2) and grid.z.shape == (5, 5, 3)
    torch.testing.assert_close(grid.beta[0], beta_a)
    torch.testing.assert_close(grid.beta[-1], beta_b)
    torch.testing.assert_close(grid.beta[2], (beta_a + beta_b) / 2)
    torch.testing.assert_close(grid.z[0, 0], z_a)
    torch.testing.assert_close(grid.z[0, -1], z_b)
    torch.testing.assert_close(grid.z[4], grid.z[0])  # every row moves z the same way
