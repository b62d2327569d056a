"""Groups of data points: the random training groups of UG-VAE and the structured test
batches of thesis §4.3.3 (Fig. 4.8c, Table 4.2).

A UG-VAE group is one mini-batch. Training groups are random (no supervision); with two
domains (§4.3.2) each group takes half of its rows from each. At test time, batches are
built *by rule* — even digits, odd digits, Fibonacci {0,1,2,3,5,8}, primes {2,3,5,7}, one digit,
random, hand-picked digits — optionally within one domain, and the global posterior of each
batch says whether the model noticed what the batch has in common.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Iterator, Sequence

import numpy as np
import torch

from vizvae.errors import DataError

# rule name -> the digits it names (None: any digit)
DIGIT_RULES: dict[str, frozenset[int] | None] = {
    "even": frozenset({0, 2, 4, 6, 8}),
    "odd": frozenset({1, 3, 5, 7, 9}),
    "fibonacci": frozenset({0, 1, 2, 3, 5, 8}),
    "primes": frozenset({2, 3, 5, 7}),
    "random": None,
}
RULE_NAMES = ("even", "odd", "fibonacci", "primes", "digit", "random", "hand-picked")
RULE_LABELS = {
    "even": "even digits", "odd": "odd digits", "fibonacci": "Fibonacci digits", "primes": "prime digits",
    "digit": "one digit", "random": "random", "hand-picked": "hand-picked digits",
}


@dataclass(frozen=True)
class BatchRule:
    """Which rows a batch may hold: digits in ``digits`` (None: any) from ``domain`` (None: any)."""

    name: str
    digits: frozenset[int] | None
    domain: str | None = None

    @property
    def label(self) -> str:
        if self.name == "digit" and self.digits:
            text = f"digit {next(iter(self.digits))}"
        elif self.digits is None:
            text = RULE_LABELS.get(self.name, self.name)
        else:
            text = f"{RULE_LABELS.get(self.name, self.name)} {{{','.join(map(str, sorted(self.digits)))}}}"
        return text if self.domain is None else f"{text} ({self.domain})"

    @property
    def short_label(self) -> str:
        """A table-sized name: "even", "primes", "digit 7", "{1,4}", "random (digits)"."""
        if self.name == "digit" and self.digits:
            text = f"digit {next(iter(self.digits))}"
        elif self.name == "hand-picked" and self.digits:
            text = "{" + ",".join(map(str, sorted(self.digits))) + "}"
        else:
            text = {"fibonacci": "Fibonacci"}.get(self.name, self.name)
        return text if self.domain is None else f"{text} ({self.domain})"


def make_rule(name: str, digit: int | None = None, digits: Iterable[int] | None = None,
              domain: str | None = None) -> BatchRule:
    """A rule by name; "digit" takes ``digit``, "hand-picked" takes ``digits``."""
    if name in DIGIT_RULES:
        return BatchRule(name, DIGIT_RULES[name], domain)
    if name == "digit":
        if digit is None:
            raise DataError("the 'digit' rule needs the digit")
        return BatchRule(name, frozenset({int(digit)}), domain)
    if name == "hand-picked":
        chosen = frozenset(int(d) for d in (digits or ()))
        if not chosen:
            raise DataError("the 'hand-picked' rule needs at least one digit")
        return BatchRule(name, chosen, domain)
    raise DataError(f"unknown batch rule {name!r}; expected one of {', '.join(RULE_NAMES)}")


def eligible_rows(labels: np.ndarray, rule: BatchRule, domains: np.ndarray | None = None) -> np.ndarray:
    """Row indices a batch of this rule may draw from."""
    labels = np.asarray(labels).astype(int)
    keep = np.ones(len(labels), dtype=bool)
    if rule.digits is not None:
        keep &= np.isin(labels, sorted(rule.digits))
    if rule.domain is not None:
        if domains is None:
            raise DataError(f"this data set has no domains, so no batch can come from {rule.domain!r}")
        keep &= np.asarray(domains) == rule.domain
    return np.flatnonzero(keep)


def sample_batches(labels: np.ndarray, rule: BatchRule, n_batches: int, batch_size: int,
                   rng: np.random.Generator | int, domains: np.ndarray | None = None) -> np.ndarray:
    """``n_batches`` batches of ``batch_size`` distinct rows that follow ``rule``:
    (n_batches, batch_size) int64. Rows repeat across batches, never within one (a repeated row
    would count twice in the product of Gaussians)."""
    rng = np.random.default_rng(rng) if not isinstance(rng, np.random.Generator) else rng
    rows = eligible_rows(labels, rule, domains)
    if len(rows) < batch_size:
        raise DataError(f"only {len(rows)} rows are {rule.label}: too few for batches of {batch_size}")
    return np.stack([rng.choice(rows, size=batch_size, replace=False) for _ in range(n_batches)]).astype(np.int64)


# -- domains (§4.3.2) ---------------------------------------------------------------------------------
def domain_labels(dataset, split: str = "test") -> np.ndarray | None:
    """The domain name of every row of a split of a mixed data set (e.g. ``mnist+digits``,
    whose rows are ordered domain by domain), or None for a single-domain data set."""
    info = dataset.preprocessing
    if "domains" not in info:
        return None
    sizes = info[f"domain_sizes_{split}"]
    return np.repeat(np.asarray(info["domains"], dtype=object), sizes)


def domain_sizes(dataset, split: str = "train") -> list[int] | None:
    sizes = dataset.preprocessing.get(f"domain_sizes_{split}")
    return None if sizes is None else [int(s) for s in sizes]


# -- training groups ------------------------------------------------------------------------------------
class RandomGroups:
    """Endless row indices of random training groups, one batch each (see ``random_groups``).

    One domain smaller than a batch gives all its rows, reshuffled, every step. Its position is ``state()`` — each domain's current permutation and cursor — so that a
    resumed run (``vizvae.train.resume``) draws the very groups the interrupted one would have."""

    def __init__(self, n: int, batch_size: int, generator: torch.Generator, device: torch.device | str = "cpu",
                 domain_sizes: Sequence[int] | None = None):
        sizes = [int(s) for s in domain_sizes] if domain_sizes else [int(n)]
        if sum(sizes) != n:
            raise DataError(f"domain sizes {sizes} do not add up to the {n} training rows")
        self.sizes = sizes
        self.offsets = np.cumsum([0, *sizes[:-1]]).tolist()
        self.shares = [batch_size // len(sizes) + (1 if i < batch_size % len(sizes) else 0) for i in range(len(sizes))]
        if len(sizes) > 1 and any(share > size for share, size in zip(self.shares, sizes)):
            raise DataError(f"a batch of {batch_size} needs {self.shares} rows from domains of {sizes} rows")
        self.generator, self.device = generator, device
        self.orders = [torch.randperm(size, generator=generator, device=device) for size in sizes]
        self.cursors = [0] * len(sizes)

    def __iter__(self) -> Iterator[torch.Tensor]:
        return self

    def __next__(self) -> torch.Tensor:
        parts = []
        for i, (size, share, offset) in enumerate(zip(self.sizes, self.shares, self.offsets)):
            if self.cursors[i] + share > size:
                self.orders[i] = torch.randperm(size, generator=self.generator, device=self.device)
                self.cursors[i] = 0
            parts.append(self.orders[i][self.cursors[i]: self.cursors[i] + share] + offset)
            self.cursors[i] += share
        return parts[0] if len(parts) == 1 else torch.cat(parts)

    def state(self) -> tuple[dict[str, torch.Tensor], dict[str, list[int]]]:
        """(tensors, JSON) that ``restore`` takes back."""
        return {f"order_{i}": order.cpu() for i, order in enumerate(self.orders)}, {"cursors": list(self.cursors)}

    def restore(self, tensors: dict[str, torch.Tensor], info: dict[str, list[int]]) -> None:
        orders = [tensors[f"order_{i}"].to(self.device) for i in range(len(self.sizes))]
        if [len(o) for o in orders] != self.sizes or len(info["cursors"]) != len(self.sizes):
            raise DataError("the saved data order does not fit this data set")
        self.orders, self.cursors = orders, [int(c) for c in info["cursors"]]


def random_groups(n: int, batch_size: int, generator: torch.Generator, device: torch.device | str = "cpu",
                  domain_sizes: Sequence[int] | None = None) -> RandomGroups:
    """Endless row indices of random training groups, one batch each.

    One domain: passes over a fresh random permutation (a batch never straddles two passes).
    Several domains (rows ordered domain by domain): every group takes an equal share of rows
    from each domain, each domain walking its own permutation — "50 % of each batch from each
    data set" (§4.3.2)."""
    return RandomGroups(n, batch_size, generator, device, domain_sizes)
