"""When a Metropolis-within-Gibbs or importance-sampling result is too thin to trust, vizvae says so
with the numbers: known answers on factor analysis (exact encoder: every proposal accepted, ESS = K)
and the finding on mnist-hhvae (its encoder is a poor independence proposal: the chains stay at
their encoder start, so MWG's NLL is exactly the encoder's)."""

from __future__ import annotations

import pytest
import torch

from tests.inference.factor_analysis import MASK, WRONG, X, FactorAnalysis
from vizvae.inference.gibbs import MIN_MOVES_PER_CHAIN, acceptance_warning
from vizvae.inference.importance import MIN_ESS, ess_warning
from vizvae.inference.imputers import ImputationSettings, impute, trust_warning

pytestmark = pytest.mark.usefixtures("one_thread")


def test_acceptance_warning_counts_moves_per_chain():
    text = acceptance_warning(0.0015, 50)  # mnist-hhvae's numbers on the page
    assert "0.15%" in text and "0.075 moves per chain in 50 sweeps" in text
    assert acceptance_warning(MIN_MOVES_PER_CHAIN / 100, 100) is None  # exactly 5 moves: enough
    assert acceptance_warning(0.04, 100) is not None and acceptance_warning(0.04, 200) is None


def test_ess_warning_names_the_effective_draws():
    text = ess_warning(1.6, 1000)
    assert "1.6 of 1000 proposals" in text and "about 2 encoder draw(s)" in text
    assert ess_warning(MIN_ESS, 1000) is None and ess_warning(9.9, 100) is not None


def test_no_warning_for_an_exact_encoder_and_none_for_methods_without_these_diagnostics():
    settings = ImputationSettings(n_samples=64, n_iterations=20, n_proposals=500, seed=0)
    mwg = impute(FactorAnalysis(), X[None], MASK[None], "mwg", settings)
    assert mwg.diagnostics["acceptance_rate"] == pytest.approx(1.0) and trust_warning(mwg.diagnostics) is None
    sir = impute(FactorAnalysis(), X[None], MASK[None], "sir", settings)
    # the encoder is p(z | x_O)'s diagonal part: weights near-equal, ESS a large part of K
    assert sir.diagnostics["ess"] > 100 and trust_warning(sir.diagnostics) is None
    for method in ("encoder", "hmc", "pseudo_gibbs"):
        assert trust_warning(impute(FactorAnalysis(**WRONG), X[None], MASK[None], method, settings).diagnostics) is None


def test_mnist_hhvae_mwg_stays_at_the_encoder_and_both_thin_methods_are_flagged():
    from vizvae.checkpoint import SHIPPED_DIR, checkpoint_dataset, load_checkpoint
    from vizvae.evaluation.inpainting_view import centred_square

    checkpoint = load_checkpoint(SHIPPED_DIR / "mnist-hhvae", device="cpu")
    x = torch.as_tensor(checkpoint_dataset(checkpoint.config).x_test[:1])
    mask = torch.as_tensor(centred_square((28, 28), 14))[None]
    settings = ImputationSettings(n_samples=32, n_iterations=50, n_proposals=1000, seed=0)
    encoder, mwg, sir = (impute(checkpoint.model, x, mask, method, settings) for method in ("encoder", "mwg", "sir"))
    assert mwg.diagnostics["acceptance_rate"] < 0.01
    # no chain moved: the encoder's draws, their NLL summed along another path. Both sum the same
    # positive terms (one per hidden pixel, times the draws) in float32, whose rounding is at most
    # (number of terms) x eps, relative: a bound on rounding, not on any sampling error
    terms = int((~mask).sum()) * settings.n_samples
    assert torch.allclose(mwg.missing_nll, encoder.missing_nll, rtol=terms * torch.finfo(torch.float32).eps, atol=0.0)
    assert "moves per chain" in trust_warning(mwg.diagnostics)
    assert sir.diagnostics["ess"] < MIN_ESS and "effective sample size" in trust_warning(sir.diagnostics)
