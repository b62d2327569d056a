"""Evaluations that loop over test rows (imputation, inpainting, SAIA) split those rows between the
ranks of a distributed run (``torchrun -m vizvae evaluate ...`` or the evaluation at the end of
``torchrun -m vizvae train ...``) and gather the per-row scores on every rank.

Split, the rows go in fixed chunks, each drawing its randomness from its own stream seeded by
(seed, chunk): the figures are then the same for any number of ranks. Alone, an evaluation keeps
its single stream over all rows, the one its recorded figures were computed with.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable

import torch


def _alone(value: Any) -> list[Any]:
    return [value]


@dataclass(frozen=True)
class RowSplit:
    """This process's share (``index`` of ``count``) and ``gather``: every process's object, in order."""

    index: int = 0
    count: int = 1
    gather: Callable[[Any], list[Any]] = field(default=_alone, compare=False)

    @property
    def split(self) -> bool:
        return self.count > 1

    @property
    def is_main(self) -> bool:
        return self.index == 0

    def block(self, n: int) -> range:
        """This process's contiguous run of ``n`` items (the first processes take one more when uneven)."""
        per, extra = divmod(n, self.count)
        start = self.index * per + min(self.index, extra)
        return range(start, start + per + (1 if self.index < extra else 0))


ALONE = RowSplit()


def chunk_generator(seed: int, chunk: int, device: torch.device | str) -> torch.Generator:
    return torch.Generator(device=device).manual_seed((int(seed) * 1_000_003 + 104_729 * (chunk + 1)) % (2 ** 63))


def scores_by_chunks(score: Callable[[slice, torch.Generator], dict[str, list[Any]]], n_rows: int, chunk: int,
                     seed: int, split: RowSplit, device: torch.device | str) -> dict[str, list[Any]]:
    """``score(rows, generator)`` -> per-row lists, over this process's chunks of ``n_rows`` rows,
    gathered from every process in row order."""
    local: dict[str, list[Any]] = {}
    for index in split.block(math.ceil(n_rows / chunk)):
        rows = slice(index * chunk, min((index + 1) * chunk, n_rows))
        for key, values in score(rows, chunk_generator(seed, index, device)).items():
            local.setdefault(key, []).extend(values)
    merged: dict[str, list[Any]] = {}
    for part in split.gather(local):
        for key, values in part.items():
            merged.setdefault(key, []).extend(values)
    return merged
