"""The Fréchet distance and the digit classifier behind it (vizvae/evaluation/fd.py, classifier.py)."""

import numpy as np
import pytest
import torch
from scipy import linalg

from vizvae.errors import CheckpointError
from vizvae.evaluation.classifier import (
    ClassifierConfig, DigitClassifier, classifier_features, load_classifier, save_classifier,
)
from vizvae.evaluation.fd import frechet_distance, gaussian_statistics


def test_identical_gaussians_are_at_distance_zero():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((5, 5))
    cov = a @ a.T + np.eye(5)
    mean = rng.standard_normal(5)
    assert frechet_distance(mean, cov, mean, cov) == pytest.approx(0.0, abs=1e-8)


def test_one_dimension_is_the_squared_wasserstein_distance():
    # W2² between N(μ1, σ1²) and N(μ2, σ2²) = (μ1 − μ2)² + (σ1 − σ2)²
    value = frechet_distance(np.array([1.0]), np.array([[4.0]]), np.array([-2.0]), np.array([[0.25]]))
    assert value == pytest.approx(3.0 ** 2 + (2.0 - 0.5) ** 2)


def test_commuting_covariances_compare_standard_deviations():
    sa, sb = np.array([1.0, 2.0, 0.5]), np.array([3.0, 2.0, 0.1])
    value = frechet_distance(np.zeros(3), np.diag(sa ** 2), np.ones(3), np.diag(sb ** 2))
    assert value == pytest.approx(3.0 + ((sa - sb) ** 2).sum())


def test_general_covariances_match_the_scipy_sqrtm_formula():
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal((4, 4)), rng.standard_normal((4, 4))
    cov_a, cov_b = a @ a.T + 0.1 * np.eye(4), b @ b.T + 0.1 * np.eye(4)
    mean_a, mean_b = rng.standard_normal(4), rng.standard_normal(4)
    expected = ((mean_a - mean_b) ** 2).sum() + np.trace(cov_a + cov_b - 2 * linalg.sqrtm(cov_a @ cov_b).real)
    assert frechet_distance(mean_a, cov_a, mean_b, cov_b) == pytest.approx(expected, rel=1e-6)


def test_gaussian_statistics_of_samples():
    rng = np.random.default_rng(2)
    features = rng.multivariate_normal([1.0, -1.0], [[2.0, 0.5], [0.5, 1.0]], size=200_000)
    mean, cov = gaussian_statistics(features)
    np.testing.assert_allclose(mean, [1.0, -1.0], atol=0.02)
    np.testing.assert_allclose(cov, [[2.0, 0.5], [0.5, 1.0]], atol=0.03)


def test_classifier_round_trip_without_pickle(tmp_path):
    torch.manual_seed(0)
    classifier = DigitClassifier(ClassifierConfig()).eval()
    save_classifier(classifier, tmp_path / "clf", "clf", evaluation={"test_accuracy": 0.5})
    loaded = load_classifier(tmp_path / "clf")
    images = np.random.default_rng(0).random((3, 784)).astype(np.float32)
    np.testing.assert_allclose(classifier_features(loaded, images), classifier_features(classifier, images))
    assert classifier_features(loaded, images).shape == (3, 128)
    # a pickle posing as the weights is refused, never unpickled
    (tmp_path / "clf" / "model.safetensors").write_bytes(b"\x80\x04K\x01.")
    with pytest.raises(CheckpointError, match="pickle"):
        load_classifier(tmp_path / "clf")
    with pytest.raises(CheckpointError, match="missing"):
        load_classifier(tmp_path / "nowhere")


@pytest.fixture()
def tiny_generator_and_classifier(tmp_path, monkeypatch):
    """A small untrained VAE of 28×28 images saved as a checkpoint, and an untrained classifier."""
    from vizvae.checkpoint import save_checkpoint
    from vizvae.models import VAE, VAEConfig

    monkeypatch.setenv("VIZVAE_CACHE_DIR", str(tmp_path / "user"))
    torch.manual_seed(0)
    model = VAE(VAEConfig(input_shape=(1, 28, 28), latent_dim=2, hidden_dims=(8,))).eval()
    folder = save_checkpoint(model, tmp_path / "model", name="tiny", dataset={"name": "none"})
    save_classifier(DigitClassifier(ClassifierConfig()).eval(), tmp_path / "clf", "clf")
    real = np.random.default_rng(0).random((120, 784)).astype(np.float32)
    return model, folder, tmp_path / "clf", real


def test_fewer_repetitions_are_the_first_of_a_longer_run(tiny_generator_and_classifier):
    from vizvae.evaluation.fd import fd_repetitions

    model, _, classifier_folder, real = tiny_generator_and_classifier
    classifier = load_classifier(classifier_folder)
    three = fd_repetitions(model, classifier, real, n=100, repetitions=3, seed=4).values
    five = fd_repetitions(model, classifier, real, n=100, repetitions=5, seed=4).values
    np.testing.assert_allclose(three, five[:3], rtol=1e-12)


def test_stored_distances_equal_a_recomputation_and_serve_fewer_repetitions(tiny_generator_and_classifier, monkeypatch):
    from vizvae.evaluation import fd

    model, folder, classifier_folder, real = tiny_generator_and_classifier
    stored = fd.cached_fd(folder, model, classifier_folder, real, n=100, repetitions=fd.MAX_REPETITIONS, seed=0)
    fresh = fd.fd_repetitions(model, load_classifier(classifier_folder), real, n=100, repetitions=fd.MAX_REPETITIONS)
    np.testing.assert_allclose(stored.values, fresh.values, rtol=1e-12)

    def refuse(*args, **kwargs):
        raise AssertionError("recomputed although stored")

    monkeypatch.setattr(fd, "fd_repetitions", refuse)
    again = fd.cached_fd(folder, model, classifier_folder, real, n=100, repetitions=3, seed=0)
    np.testing.assert_allclose(again.values, fresh.values[:3], rtol=1e-12)
    with pytest.raises(AssertionError, match="recomputed"):  # another seed is not stored
        fd.cached_fd(folder, model, classifier_folder, real, n=100, repetitions=3, seed=1)


def test_new_weights_recompute_the_distances(tiny_generator_and_classifier):
    from vizvae.checkpoint import save_checkpoint
    from vizvae.evaluation import fd

    model, folder, classifier_folder, real = tiny_generator_and_classifier
    before = fd.cached_fd(folder, model, classifier_folder, real, n=100, repetitions=2)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.mul_(1.5)
    save_checkpoint(model, folder, name="tiny", dataset={"name": "none"})
    after = fd.cached_fd(folder, model, classifier_folder, real, n=100, repetitions=2)
    assert fd.stored_fd(folder, 100, 2, 0, classifier_folder).values == after.values != before.values
