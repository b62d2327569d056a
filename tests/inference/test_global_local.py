"""Numbers behind the Global & local page (vizvae/inference/global_local.py)."""

import numpy as np
import pytest
import torch

from vizvae.data.batches import make_rule
from vizvae.inference.global_local import (
    BatchProblem, assign_clusters, batch_classification, cluster_purity, cluster_samples, decode_with_global,
    diagonal_path, global_local_grid, interpolation_grid, pca_posteriors, structured_batch_posteriors,
    svm_accuracies,
)
from vizvae.models import UGVAE, UGVAEConfig


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return UGVAE(UGVAEConfig(input_shape=(1, 4, 4), latent_dim=3, global_dim=2, clusters=4, hidden_dim=16,
                             group_size=8)).eval()


def test_diagonal_and_single_dimension_paths():
    path = diagonal_path(5, 1.0, 3)
    assert path.shape == (5, 3)
    torch.testing.assert_close(path[:, 0], torch.tensor([-1.0, -0.5, 0.0, 0.5, 1.0]))
    assert torch.all(path == path[:, :1])  # every dimension moves together
    single = diagonal_path(3, 2.0, 3, only=1)
    torch.testing.assert_close(single, torch.tensor([[0.0, -2.0, 0.0], [0.0, 0.0, 0.0], [0.0, 2.0, 0.0]]))


def test_grid_columns_are_centred_on_the_cluster_prior_mean(model):
    betas, offsets = diagonal_path(3, 1.0, 2), diagonal_path(5, 3.0, 3)
    grid = global_local_grid(model, 2, betas, offsets)
    assert grid.z.shape == (3, 5, 3)
    expected_mean = model.cluster_prior(betas).mean[:, 2]
    torch.testing.assert_close(grid.z[:, 2], expected_mean)  # middle column: z = μ_z^(d)(β)
    torch.testing.assert_close(grid.z[:, 4] - grid.z[:, 2], torch.full((3, 3), 3.0))
    assert decode_with_global(model, grid.z, grid.beta).shape == (3, 5, 16)


def test_cluster_samples_start_with_each_cluster_mean(model):
    beta = torch.tensor([0.3, -0.2])
    samples = cluster_samples(model, beta, n=4, seed=0)
    assert samples.shape == (4, 4, 3)
    torch.testing.assert_close(samples[:, 0], model.cluster_prior(beta).mean)


def test_label_counts_and_purity(model):
    x = np.random.default_rng(0).random((50, 16)).astype(np.float32)
    assignments = assign_clusters(model, x)
    assert assignments.probs.shape == (50, 4)
    np.testing.assert_allclose(assignments.probs.sum(1), 1.0, rtol=1e-5)
    labels = np.arange(50) % 10
    counts = assignments.label_counts(labels)
    assert counts.shape == (4, 10) and counts.sum() == 50
    assert cluster_purity(np.array([[8, 2], [1, 9]])) == pytest.approx(17 / 20)


def test_batch_posteriors_use_the_drawn_rows(model):
    rng = np.random.default_rng(0)
    x = rng.random((60, 16)).astype(np.float32)
    labels = np.arange(60) % 10
    study = structured_batch_posteriors(model, x, labels, [make_rule("even"), make_rule("odd")], 3, 8, seed=1)
    assert study.mean.shape == (6, 2) and list(study.kinds) == [0, 0, 0, 1, 1, 1]
    assert set(labels[study.rows[:3].ravel()] % 2) == {0} and set(labels[study.rows[3:].ravel()] % 2) == {1}
    first = model.global_posterior(torch.as_tensor(x[study.rows[0]]))
    np.testing.assert_allclose(study.mean[0], first.mean.detach().numpy(), rtol=1e-5, atol=1e-6)
    features, kinds = study.samples(4)
    assert features.shape == (24, 2) and list(kinds[:4]) == [0] * 4


def test_pca_projects_posterior_covariances_exactly():
    mean = np.array([[0.0, 0.0, 0.0], [2.0, 0.0, 0.0], [0.0, 1.0, 0.0], [2.0, 1.0, 0.0]])
    std = np.tile([0.1, 0.2, 5.0], (4, 1))  # the third axis has no spread of means: not a principal axis
    projected = pca_posteriors(mean, std)
    np.testing.assert_allclose(np.abs(projected.coords[:, 0]), [1.0, 1.0, 1.0, 1.0])
    np.testing.assert_allclose(projected.covariances[0], np.diag([0.01, 0.04]), atol=1e-12)
    np.testing.assert_allclose(projected.explained_variance_ratio, [0.8, 0.2])


def test_svms_separate_separable_batches():
    rng = np.random.default_rng(0)
    a, b = rng.normal(-3, 1, (60, 4)), rng.normal(3, 1, (60, 4))
    features, kinds = np.concatenate([a, b]), np.repeat([0, 1], 60)
    results = svm_accuracies(features[::2], kinds[::2], features[1::2], kinds[1::2])
    assert [r.classifier for r in results] == ["linear", "rbf"]
    assert all(r.train_accuracy == 1.0 and r.test_accuracy == 1.0 for r in results)


def test_batch_classification_returns_both_svms_per_problem(model):
    rng = np.random.default_rng(0)
    x = rng.random((80, 16)).astype(np.float32)
    labels = np.arange(80) % 10
    problem = BatchProblem("even_vs_odd", [make_rule("even"), make_rule("odd")])
    results = batch_classification(model, (x, labels), (x, labels), [problem], n_train_batches=4,
                                   n_test_batches=3, batch_size=8, samples_per_batch=2)
    assert set(results) == {"even_vs_odd"} and len(results["even_vs_odd"]) == 2
    assert problem.label == "even (0) vs odd (1)"


def test_interpolation_rows_move_beta_and_columns_move_z(model):
    path = interpolation_grid(model, torch.zeros(2), torch.ones(2), torch.zeros(3), torch.full((3,), 2.0), 3)
    torch.testing.assert_close(path.beta[:, 0], torch.tensor([0.0, 0.5, 1.0]))
    torch.testing.assert_close(path.z[0, :, 0], torch.tensor([0.0, 1.0, 2.0]))
    torch.testing.assert_close(path.z[2], path.z[0])  # every row has the same columns
