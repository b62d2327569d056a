"""The importance-weighted estimators (vizvae/kernels/importance.py) against known answers."""

from __future__ import annotations

import math

import pytest
import torch

from tests.inference.linear_gaussian import MASK, X, exact_encoder_model, log_evidence, wrong_encoder_model
from vizvae.inference.importance import iwae_bound
from vizvae.kernels.importance import kish_ess, log_mean_exp, self_normalised

pytestmark = pytest.mark.usefixtures("one_thread")


def test_kish_ess_of_equal_weights_is_their_number_and_of_one_hot_weights_is_one():
    equal = torch.full((3, 50), -math.log(50), dtype=torch.float64)
    assert torch.allclose(kish_ess(equal), torch.full((3,), 50.0, dtype=torch.float64))
    assert float(kish_ess(torch.full((50,), 4.2, dtype=torch.float64))) == pytest.approx(50.0)  # unnormalised
    one_hot = torch.full((50,), -torch.inf, dtype=torch.float64)
    one_hot[7] = 0.0
    assert float(kish_ess(one_hot)) == pytest.approx(1.0)
    two_of_three = torch.log(torch.tensor([1.0, 1.0, 0.0], dtype=torch.float64))
    assert float(kish_ess(two_of_three)) == pytest.approx(2.0)


def test_log_mean_exp_by_hand():
    log_weights = torch.log(torch.tensor([[1.0, 2.0], [3.0, 6.0]], dtype=torch.float64))
    assert torch.allclose(log_mean_exp(log_weights, dim=0), torch.log(torch.tensor([2.0, 4.0], dtype=torch.float64)))
    assert torch.allclose(log_mean_exp(log_weights, dim=1), torch.log(torch.tensor([1.5, 4.5], dtype=torch.float64)))


def test_self_normalised_weights_sum_to_one_and_keep_ratios():
    log_weights = torch.log(torch.tensor([1.0, 3.0, 4.0], dtype=torch.float64)) - 700.0  # far below exp's range
    normalised = self_normalised(log_weights).exp()
    assert torch.allclose(normalised, torch.tensor([0.125, 0.375, 0.5], dtype=torch.float64))
    broken = torch.tensor([[torch.nan, 0.0], [torch.nan, torch.inf]], dtype=torch.float64)
    assert torch.allclose(self_normalised(broken).exp(), torch.tensor([[0.0, 1.0], [0.5, 0.5]], dtype=torch.float64))


@pytest.mark.parametrize("mask", [None, MASK], ids=["all observed", "feature 2 missing"])
def test_iwae_bound_is_the_log_evidence_for_the_exact_posterior_at_every_k(mask):
    """With q = p(z | x_O) every weight is p(x_O), so IWAE_K = log p(x_O) exactly, for any K."""
    model = exact_encoder_model(mask)
    for k in (1, 7, 300):
        bound = iwae_bound(model, X[None], None if mask is None else mask[None], k, torch.Generator().manual_seed(k))
        assert float(bound) == pytest.approx(log_evidence(mask), abs=1e-9)


def test_iwae_bound_grows_with_k_towards_the_log_evidence():
    """For a wrong encoder, E[IWAE_K] rises with K and stays below log p(x_O). Each estimate is an
    average over many independent sets; the comparisons are at four standard errors."""
    model = wrong_encoder_model(MASK)
    rows, mask = X[None].expand(4000, -1), MASK[None].expand(4000, -1)
    estimates = {}
    for k in (1, 5, 50):
        values = iwae_bound(model, rows, mask, k, torch.Generator().manual_seed(k))
        estimates[k] = (float(values.mean()), float(values.std() / math.sqrt(len(values))))
    for small, large in ((1, 5), (5, 50)):
        (low, se_low), (high, se_high) = estimates[small], estimates[large]
        assert high - low > 4 * math.hypot(se_low, se_high)
    mean_50, se_50 = estimates[50]
    assert mean_50 < log_evidence(MASK) + 4 * se_50
    assert log_evidence(MASK) - mean_50 < log_evidence(MASK) - estimates[1][0]
