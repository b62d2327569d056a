"""Batch rules and training groups (vizvae/data/batches.py)."""

import numpy as np
import pytest
import torch

from vizvae.data import load_dataset
from vizvae.data.batches import (
    DIGIT_RULES, domain_labels, domain_sizes, eligible_rows, make_rule, random_groups, sample_batches,
)
from vizvae.errors import DataError

NAMED = {
    "even": {0, 2, 4, 6, 8},
    "odd": {1, 3, 5, 7, 9},
    "fibonacci": {0, 1, 2, 3, 5, 8},
    "primes": {2, 3, 5, 7},
    "random": set(range(10)),
}


@pytest.mark.parametrize("name", list(NAMED))
def test_each_rule_yields_exactly_the_digits_it_names(mnist, name):
    labels = mnist.y_test.astype(int)
    batches = sample_batches(labels, make_rule(name), n_batches=20, batch_size=128, rng=0)
    assert batches.shape == (20, 128)
    for batch in batches:
        assert len(set(batch.tolist())) == 128  # distinct rows within a batch
        assert set(labels[batch].tolist()) <= NAMED[name]
    assert set(labels[batches.ravel()].tolist()) == NAMED[name]  # and every named digit turns up


def test_one_digit_and_hand_picked_rules(mnist):
    labels = mnist.y_test.astype(int)
    seven = sample_batches(labels, make_rule("digit", digit=7), 5, 64, rng=1)
    assert set(labels[seven.ravel()].tolist()) == {7}
    picked = sample_batches(labels, make_rule("hand-picked", digits=[1, 4]), 5, 64, rng=1)
    assert set(labels[picked.ravel()].tolist()) == {1, 4}
    assert make_rule("digit", digit=7).label == "digit 7"
    assert make_rule("primes").label == "prime digits {2,3,5,7}"
    assert DIGIT_RULES["random"] is None and make_rule("random").label == "random"
    assert make_rule("fibonacci").short_label == "Fibonacci" and make_rule("hand-picked", digits=[4, 1]).short_label == "{1,4}"
    assert make_rule("random", domain="digits").short_label == "random (digits)"


def test_rules_that_cannot_fill_a_batch_say_so(mnist):
    labels = mnist.y_test.astype(int)  # about 100 test images per digit
    threes = int((labels == 3).sum())
    with pytest.raises(DataError, match=f"only {threes} rows are digit 3"):
        sample_batches(labels, make_rule("digit", digit=3), 1, 128, rng=0)
    with pytest.raises(DataError):
        make_rule("squares")
    with pytest.raises(DataError):
        make_rule("hand-picked", digits=[])


def test_the_same_seed_draws_the_same_batches(mnist):
    labels = mnist.y_test.astype(int)
    a = sample_batches(labels, make_rule("odd"), 3, 32, rng=5)
    b = sample_batches(labels, make_rule("odd"), 3, 32, rng=5)
    assert np.array_equal(a, b)


def test_mixed_domains_rows_and_domain_rules():
    mixed = load_dataset("mnist+digits", binarize=True)
    domains = domain_labels(mixed, "test")
    assert list(domains[:1000]) == ["mnist"] * 1000 and list(domains[1000:]) == ["digits"] * 359
    assert domain_sizes(mixed, "train") == [4000, 1438]
    rows = eligible_rows(mixed.y_test, make_rule("even", domain="digits"), domains)
    assert set(domains[rows]) == {"digits"} and set(mixed.y_test[rows].astype(int)) == NAMED["even"]
    assert domain_labels(load_dataset("mnist", binarize=True)) is None
    with pytest.raises(DataError):
        eligible_rows(mixed.y_test, make_rule("odd", domain="digits"), None)


def test_random_groups_are_the_old_epoch_permutations():
    n, batch = 10, 4
    groups = random_groups(n, batch, torch.Generator().manual_seed(0))
    drawn = [next(groups) for _ in range(4)]
    # the loop's former code: a fresh permutation whenever the next batch would run past the end
    generator = torch.Generator().manual_seed(0)
    first, second = torch.randperm(n, generator=generator), torch.randperm(n, generator=generator)
    expected = [first[0:4], first[4:8], second[0:4], second[4:8]]
    for got, want in zip(drawn, expected):
        assert torch.equal(got, want)


def test_balanced_groups_take_half_from_each_domain():
    groups = random_groups(13, 6, torch.Generator().manual_seed(0), domain_sizes=[10, 3])
    for _ in range(7):
        rows = next(groups)
        assert len(rows) == 6 and len(set(rows.tolist())) == 6
        assert (rows < 10).sum() == 3 and (rows >= 10).sum() == 3
    with pytest.raises(DataError):
        next(random_groups(13, 8, torch.Generator(), domain_sizes=[10, 3]))  # 4 rows from a domain of 3
