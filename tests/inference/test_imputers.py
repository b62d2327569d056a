"""The imputation methods behind ``impute``: known answers on factor analysis, where p(x_U | x_O) is
exact, edge masks, the fills, and the bookkeeping every method shares."""

from __future__ import annotations

import math

import pytest
import torch

from tests.inference.factor_analysis import (
    MASK, N, WRONG, X, FactorAnalysis, assert_matches_exact, exact_conditional, exact_missing_nll,
    prior_predictive,
)
from vizvae.inference.imputers import METHODS, ImputationSettings, classifier_label_probs, impute, supported_methods
from vizvae.models import HMCVAE, UGVAE, HMCVAEConfig, PartialVAE, PartialVAEConfig, UGVAEConfig

pytestmark = pytest.mark.usefixtures("one_thread")


def run(model, method, **options):
    return impute(model, X[None], MASK[None], method, ImputationSettings(n_samples=N, seed=3, **options))


@pytest.mark.parametrize("encoder", [{}, WRONG], ids=["exact-encoder", "wrong-encoder"])
def test_hmc_matches_the_exact_conditional(encoder):
    result = run(FactorAnalysis(**encoder), "hmc", n_transitions=30)
    assert_matches_exact(result, N)
    assert result.diagnostics["trained"] == 0.0 and result.diagnostics["divergences"] == 0
    assert result.diagnostics["adapted"] == 1.0 and result.diagnostics["warmup"] == 60.0
    assert result.missing_nll[0] == pytest.approx(exact_missing_nll(), abs=0.1)
    # the warm-up tuned the kernel: steps of ~1 in the encoder's σ units, acceptance below the creeping
    # 0.95+ (a 60-transition warm-up lands near 0.9 on this 2-D Gaussian posterior, whose acceptance
    # stays high until the step nears the leapfrog's stability limit)
    assert result.diagnostics["step_size"] > 0.6 and 0.5 <= result.diagnostics["acceptance_rate"] < 0.95


@pytest.mark.parametrize("encoder", [{}, WRONG], ids=["exact-encoder", "wrong-encoder"])
def test_metropolis_within_gibbs_matches_the_exact_conditional(encoder):
    result = run(FactorAnalysis(**encoder), "mwg", n_iterations=100)
    assert_matches_exact(result, N)
    assert result.missing_nll[0] == pytest.approx(exact_missing_nll(), abs=0.15)


@pytest.mark.parametrize("encoder", [{}, WRONG], ids=["exact-encoder", "wrong-encoder"])
def test_importance_sampling_matches_the_exact_conditional(encoder):
    result = run(FactorAnalysis(**encoder), "sir", n_proposals=20_000)
    assert_matches_exact(result, result.diagnostics["ess"])
    assert result.missing_nll[0] == pytest.approx(exact_missing_nll(), abs=0.1)
    # resampled draws come from the weighted proposals: as many as asked, each a complete row
    assert result.samples.shape == (1, N, 6) and result.latents.shape == (1, N, 2)


def test_the_encoder_alone_is_off_when_it_is_wrong():
    """The single-pass encoder is only as good as q: a wrong one shows in the mean (the reason for
    the other methods)."""
    mean, covariance = exact_conditional()
    result = run(FactorAnalysis(**WRONG), "encoder")
    error = (result.mean[0, ~MASK] - mean).abs() / (torch.diagonal(covariance) / N).sqrt()
    assert error.max() > 10


def test_observed_entries_are_kept_and_shapes_agree():
    model = FactorAnalysis(**WRONG)
    for method in METHODS:
        result = impute(model, X[None], MASK[None], method,
                        ImputationSettings(n_samples=5, n_iterations=3, n_proposals=20, n_transitions=2, seed=0))
        assert torch.equal(result.mean[0, MASK], X[MASK]), method
        assert (result.variance[0, MASK] == 0).all(), method
        assert (result.samples[0, :, MASK] == X[MASK]).all(), method
        assert (result.decoded[0, :, MASK] == X[MASK]).all(), method
        assert result.samples.shape[0] == 1 and result.samples.shape[1] in (1, 5), method
        assert result.n_missing.tolist() == [3] and result.runtime_s >= 0, method
        assert result.mse is not None and result.mse[0] == pytest.approx(
            float((result.mean[0, ~MASK] - X[~MASK]).square().mean())), method


def test_a_mask_that_hides_nothing_returns_the_image_unchanged():
    model = FactorAnalysis()
    everything = torch.ones(1, 6, dtype=torch.bool)
    for method in METHODS:
        result = impute(model, X[None], everything, method, ImputationSettings(n_samples=4))
        assert torch.equal(result.mean[0], X) and (result.variance == 0).all(), method
        assert (result.samples == X).all() and float(result.missing_nll[0]) == 0.0, method
        assert "Nothing is hidden" in result.message, method


def test_a_mask_that_hides_everything_gives_prior_samples():
    model = FactorAnalysis(**WRONG)
    nothing = torch.zeros(1, 6, dtype=torch.bool)
    mean, variance = prior_predictive()
    n = 4000
    for method in ("encoder", "hmc", "pseudo_gibbs", "mwg", "sir"):
        result = impute(model, X[None], nothing, method,
                        ImputationSettings(n_samples=n, seed=1, n_iterations=2, n_proposals=10))
        assert "prior" in result.message, method
        draws = result.samples[0]  # (n, 6): x ~ p(x)
        assert ((draws.mean(0) - mean).abs() < 4 * (variance / n).sqrt()).all(), method
        assert ((draws.var(0) / variance - 1).abs() < 4 * math.sqrt(2 / n)).all(), method
        assert torch.allclose(result.mean[0], mean, atol=4 * float((variance / n).sqrt().max())), method
    zero = impute(model, X[None], nothing, "zero")
    assert (zero.mean == 0).all() and zero.message


def test_rows_of_a_batch_are_imputed_independently():
    model = FactorAnalysis()
    x = torch.stack([X, -X])
    mask = torch.stack([MASK, ~MASK])
    result = impute(model, x, mask, "sir", ImputationSettings(n_samples=7, n_proposals=50))
    assert result.mean.shape == (2, 6) and result.samples.shape == (2, 7, 6)
    assert torch.equal(result.mean[1, ~MASK], -X[~MASK])  # row 2 observes the other half
    assert result.n_missing.tolist() == [3, 3]


def test_same_seed_same_imputation_and_unknown_truth_skips_the_scores():
    model = FactorAnalysis(**WRONG)
    a = impute(model, X[None], MASK[None], "mwg", ImputationSettings(n_samples=8, n_iterations=5, seed=4))
    b = impute(model, X[None], MASK[None], "mwg", ImputationSettings(n_samples=8, n_iterations=5, seed=4))
    assert torch.equal(a.samples, b.samples)
    hidden = torch.where(MASK, X, torch.nan)[None]  # the missing values are not known
    blind = impute(model, hidden, MASK[None], "mwg",
                   ImputationSettings(n_samples=8, n_iterations=5, seed=4, truth_known=False))
    assert blind.missing_nll is None and blind.mse is None
    assert torch.equal(blind.samples, a.samples)  # what was hidden never reaches the sampler


def test_the_mean_fill_is_the_independent_bernoulli_baseline():
    torch.manual_seed(0)
    model = PartialVAE(PartialVAEConfig(input_shape=(4,), latent_dims=(2,), hidden_dims=(8,),
                                        predictor_hidden_dims=(4,), n_classes=3))
    x = torch.tensor([[1.0, 0.0, 1.0, 1.0]])
    mask = torch.tensor([[True, False, True, False]])
    means = torch.tensor([0.5, 0.2, 0.9, 0.7])
    fill = impute(model, x, mask, "mean", ImputationSettings(n_samples=20_000, seed=0), feature_mean=means)
    assert torch.allclose(fill.mean, torch.tensor([[1.0, 0.2, 1.0, 0.7]]))
    assert torch.allclose(fill.variance, torch.tensor([[0.0, 0.16, 0.0, 0.21]]))
    assert float(fill.missing_nll[0]) == pytest.approx(-math.log(0.8) - math.log(0.7))
    assert fill.samples[0, :, 1].mean() == pytest.approx(0.2, abs=0.02)
    assert fill.label_probs.shape == (1, 3) and float(fill.label_probs.sum()) == pytest.approx(1.0)
    zero = impute(model, x, mask, "zero")
    assert torch.equal(zero.mean, torch.tensor([[1.0, 0.0, 1.0, 0.0]])) and zero.missing_nll is None
    assert float(zero.mse[0]) == pytest.approx(0.5)  # (0 − 0)² and (0 − 1)²


def test_models_with_a_predictor_give_label_probabilities_and_hmc_models_use_their_trained_hmc():
    torch.manual_seed(0)
    config = dict(input_shape=(6,), latent_dims=(2,), hidden_dims=(8,), predictor_hidden_dims=(4,), n_classes=3)
    x = (torch.rand(2, 6) > 0.5).float()
    mask = torch.rand(2, 6) > 0.5
    mask[:, 0] = False
    for model in (PartialVAE(PartialVAEConfig(**config)), HMCVAE(HMCVAEConfig(**config, n_transitions=2))):
        for method in supported_methods(model):
            settings = ImputationSettings(n_samples=4, n_iterations=2, n_proposals=16, n_transitions=2)
            result = impute(model, x, mask, method, settings)
            assert result.label_probs.shape == (2, 3), method
            assert torch.allclose(result.label_probs.sum(-1), torch.ones(2)), method
    assert result.method == "sir"
    hmc = impute(model, x, mask, "hmc", ImputationSettings(n_samples=4))
    assert hmc.diagnostics["trained"] == 1.0 and hmc.diagnostics["transitions"] == 2.0


def test_supported_methods_and_the_classifier_view():
    assert supported_methods(FactorAnalysis()) == tuple(METHODS)

    group_model = UGVAE(UGVAEConfig(input_shape=(4,), latent_dim=2, global_dim=2, clusters=3, hidden_dim=4))
    assert supported_methods(group_model) == ("zero", "mean")  # declared a group model: its joint is per group
    result = impute(FactorAnalysis(), X[None], MASK[None], "encoder", ImputationSettings(n_samples=3))
    probs = classifier_label_probs(lambda images: images[..., :4], result)  # 4 "classes"
    assert probs.shape == (1, 4) and torch.allclose(probs.sum(-1), torch.ones(1, dtype=probs.dtype))
    with pytest.raises(ValueError, match="unknown imputation method"):
        impute(FactorAnalysis(), X[None], MASK[None], "magic")


def test_the_settings_keep_their_documented_defaults():
    assert ImputationSettings() == ImputationSettings(n_samples=32, seed=0, n_iterations=100, n_proposals=1000,
                                                      n_transitions=10, n_leapfrog=5, n_warmup=60,
                                                      truth_known=True, predict_labels=True)
