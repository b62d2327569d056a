"""The posterior page's numbers: how far HMC moved from the encoder, per dimension."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vizvae.inference.posterior_view import (
    chain_plane_limits, is_inflated, masked_preview, most_moved_dimensions, shift_from_encoder,
)


def test_the_shift_is_zero_for_samples_with_the_encoders_moments_and_adds_mean_and_spread():
    rng = np.random.default_rng(0)
    mean, std = np.array([0.0, 1.0, -2.0]), np.array([1.0, 0.5, 2.0])
    exact = rng.standard_normal((4000, 3))
    exact = (exact - exact.mean(0)) / exact.std(0)  # exactly standardised: the encoder's moments
    assert shift_from_encoder(mean + std * exact, mean, std) == pytest.approx(np.zeros(3), abs=1e-12)
    # dimension 0: mean moved by 3 σ; dimension 1: spread doubled; dimension 2: both
    moved = mean + std * exact * np.array([1.0, 2.0, 0.5]) + std * np.array([3.0, 0.0, -1.0])
    assert shift_from_encoder(moved, mean, std) == pytest.approx([3.0, np.log(2.0), 1.0 + np.log(2.0)])


def test_stuck_chains_have_a_finite_shift_and_the_corner_shows_the_most_moved_dimensions():
    samples = np.zeros((50, 6))
    samples[:, 4] = np.linspace(-1, 1, 50)  # only z4 moves
    shift = shift_from_encoder(samples, np.zeros(6), np.ones(6))
    assert np.isfinite(shift).all() and shift[0] == pytest.approx(np.log(1e6))
    mean = np.zeros(6)
    samples = np.random.default_rng(1).standard_normal((2000, 6)) + np.array([0, 5, 0, 4, 0, 6])
    assert most_moved_dimensions(samples, mean, np.ones(6), k=3) == [1, 3, 5]


def test_inflation_limits_and_preview():
    assert not is_inflated(np.ones(3), np.ones(3)) and is_inflated(1.5 * np.ones(3), np.ones(3))
    limits = chain_plane_limits(np.zeros((3, 2, 2)), [], mass_limits=((-1.0, 2.0), (-3.0, 4.0)))
    (low_1, high_1), (low_2, high_2) = limits
    assert low_1 < -1 and high_1 > 2 and low_2 < -3 and high_2 > 4
    (low_1, high_1), _ = chain_plane_limits(np.zeros((3, 2, 2)), [(np.zeros(2), np.eye(2))])
    assert low_1 < -2.5 < 2.5 < high_1  # the 2.5σ ellipse fits
    x = np.array([0.1, 0.9, 0.3])
    assert masked_preview(x, None) is x
    assert masked_preview(x, torch.tensor([True, False, True])).tolist() == [0.1, 0.5, 0.3]
