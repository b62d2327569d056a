"""The matrix products a function runs, and their FLOPs: the numerator of the roofline fractions
of the ``hmc`` benchmark (CPU and CUDA alike)."""

from __future__ import annotations

import math

import torch

GEMM_OPS = ("mm", "addmm", "bmm", "baddbmm")


def recorded_gemms(function, *args) -> list[tuple[str, list[tuple[int, ...]]]]:
    """The matrix products one call of ``function(*args)`` runs: (aten op name, input shapes)."""
    from torch.utils._python_dispatch import TorchDispatchMode

    calls: list[tuple[str, list[tuple[int, ...]]]] = []

    class Recorder(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args_=(), kwargs=None):
            name = func.overloadpacket.__name__
            if name in GEMM_OPS:
                calls.append((name, [tuple(a.shape) for a in args_ if isinstance(a, torch.Tensor)]))
            return func(*args_, **(kwargs or {}))

    with Recorder():
        function(*args)
    return calls


def gemm_flops(calls: list[tuple[str, list[tuple[int, ...]]]]) -> int:
    """2·m·k·n per product (batched: × batch)."""
    total = 0
    for name, shapes in calls:
        a, b = shapes[-2], shapes[-1]  # addmm/baddbmm: (bias, a, b)
        total += 2 * math.prod(a) * b[-1]
    return total
