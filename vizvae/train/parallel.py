"""Data-parallel training on ``torch.distributed``, launched by ``torchrun`` (or not at all).

A step's **global batch** is cut into ``S`` equal **shards** (``--shards``, by default the world
size ``W``); rank ``r`` computes shards ``r·S/W … (r+1)·S/W − 1``, accumulating their gradients,
and the ranks average gradients with DistributedDataParallel (gloo on the CPU, NCCL on CUDA).
For the group models (UG-VAE, ML-VAE, GMVAE) one shard is one group of ``--batch-size`` rows, so
the group rule stays as it is and the global batch is ``S`` groups.

Randomness is tied to shards, not to ranks, so that a run depends on ``S`` and the seed alone:

* the **order** stream (which rows a step takes) is the same on every rank;
* each shard has its own stream for its masks and the model's noise.

With ``S = 1`` the one shard's stream *is* the order stream — exactly the single-process runs
vizvae has always made, so a shipped model's recorded command still rebuilds it. A 1-process run
with ``--shards 2`` computes what 2 ranks compute (the equivalence test compares them), and a run
resumed on a different number of ranks carries on unchanged as long as ``W`` divides ``S``.
"""

from __future__ import annotations

import os
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Callable, Iterable, Sequence

import torch
import torch.distributed as dist

from vizvae.errors import VizvaeError
from vizvae.evaluation.rows import RowSplit

DEFAULT_TIMEOUT_S = 300  # a collective that waits longer than this on a silent rank fails the run


class PeerFailure(VizvaeError):
    """Another rank stopped answering (it crashed, was killed, or the network between them broke)."""


@dataclass(frozen=True)
class Ranks:
    """This process's place in the run (``torchrun`` sets RANK, WORLD_SIZE and LOCAL_RANK)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def label(self) -> str:
        return f"rank {self.rank} of {self.world_size}"


SINGLE = Ranks()


def launched_ranks(environ: dict[str, str] | None = None) -> Ranks:
    """The ranks ``torchrun`` (or a scheduler) put in the environment; one process without them."""
    env = os.environ if environ is None else environ
    if "WORLD_SIZE" not in env:
        return SINGLE
    try:
        world, rank, local = int(env["WORLD_SIZE"]), int(env.get("RANK", 0)), int(env.get("LOCAL_RANK", 0))
    except ValueError:
        raise VizvaeError("WORLD_SIZE, RANK and LOCAL_RANK must be whole numbers (they are set by torchrun)") from None
    if world < 1 or not 0 <= rank < world or local < 0:
        raise VizvaeError(f"RANK {rank} does not fit WORLD_SIZE {world}")
    return Ranks(rank, world, local)


def start_process_group(ranks: Ranks, device: torch.device, timeout_s: float = DEFAULT_TIMEOUT_S) -> torch.device:
    """Join the run's process group (NCCL on CUDA, gloo on the CPU) and return this rank's device.
    ``timeout_s`` bounds every collective, so a rank that dies never leaves the others hanging."""
    if not ranks.distributed:
        return device
    if device.type == "cuda":
        device = torch.device("cuda", ranks.local_rank)
        torch.cuda.set_device(device)
    backend = "nccl" if device.type == "cuda" else "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend, rank=ranks.rank, world_size=ranks.world_size,
                                timeout=timedelta(seconds=timeout_s))
    return device


def stop_process_group() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def check_shards(shards: int, ranks: Ranks, rows_per_step: int | None) -> None:
    """Refuse a shard count the ranks cannot split evenly (``rows_per_step``: the global batch,
    None for the group models, whose shards are whole groups)."""
    if shards < 1 or shards % ranks.world_size:
        raise VizvaeError(f"--shards {shards} must be a positive multiple of the number of ranks ({ranks.world_size})")
    if rows_per_step is not None and rows_per_step % shards:
        raise VizvaeError(f"the batch of {rows_per_step} rows cannot be cut into {shards} equal shards; "
                          "make --batch-size a multiple of --shards")


@dataclass(frozen=True)
class ShardPlan:
    """``shards`` shards per step, of which this rank computes ``local``."""

    shards: int = 1
    ranks: Ranks = SINGLE

    @property
    def local(self) -> range:
        per_rank = self.shards // self.ranks.world_size
        return range(self.ranks.rank * per_rank, (self.ranks.rank + 1) * per_rank)

    def split(self, rows: torch.Tensor) -> list[torch.Tensor]:
        """This rank's shards of a global batch of row indices (equal, consecutive parts)."""
        size = len(rows) // self.shards
        return [rows[s * size: (s + 1) * size] for s in self.local]


def shard_seed(seed: int, shard: int) -> int:
    """The seed of shard ``shard``'s stream (distinct from every run seed's order stream)."""
    return (int(seed) * 1_000_003 + 7919 * (shard + 1)) % (2 ** 63)


class Streams:
    """The random streams of one training loop: ``order`` (rows, shared by all ranks) and one per
    local shard (``shard[s]``: masks and model noise). With one shard they are one generator."""

    def __init__(self, seed: int, plan: ShardPlan, device: torch.device | str):
        self.plan = plan
        self.order = torch.Generator(device=device).manual_seed(int(seed))
        if plan.shards == 1:
            self.shard = {0: self.order}
        else:
            self.shard = {s: torch.Generator(device=device).manual_seed(shard_seed(seed, s)) for s in plan.local}

    def state(self) -> dict[str, torch.Tensor]:
        """Every shard's state, gathered from every rank (a collective when distributed)."""
        states = {"rng.order": self.order.get_state()}
        if self.plan.shards > 1:
            local = torch.stack([self.shard[s].get_state() for s in self.plan.local])
            gathered = all_gather_bytes(local, self.plan.ranks)
            for s in range(self.plan.shards):
                states[f"rng.shard.{s}"] = gathered[s]
        return states

    def restore(self, tensors: dict[str, torch.Tensor]) -> None:
        self.order.set_state(tensors["rng.order"])
        if self.plan.shards > 1:
            for s in self.plan.local:
                self.shard[s].set_state(tensors[f"rng.shard.{s}"])


# -- collectives --------------------------------------------------------------------------------------
def _collective(operation: Callable[[], Any], ranks: Ranks, what: str) -> Any:
    """Run a collective; a rank that died or went silent becomes a ``PeerFailure`` naming this rank."""
    try:
        return operation()
    except RuntimeError as err:  # gloo and NCCL raise DistBackendError, a RuntimeError
        raise peer_failure(ranks, what, err) from err


def peer_failure(ranks: Ranks, what: str, err: BaseException) -> PeerFailure:
    text = str(err).strip()
    first_line = text.splitlines()[0][:200] if text else type(err).__name__
    return PeerFailure(f"{ranks.label()}: another rank stopped answering during {what} ({first_line}); the run "
                       "stops here. Its last resumable state can be continued with --resume")


def all_gather_bytes(local: torch.Tensor, ranks: Ranks) -> torch.Tensor:
    """(W·n, m) uint8 from every rank's (n, m) uint8 block, in rank order."""
    if not ranks.distributed:
        return local
    widened = local.to(torch.int32)
    blocks = [torch.empty_like(widened) for _ in range(ranks.world_size)]
    _collective(lambda: dist.all_gather(blocks, widened), ranks, "the gathering of the random streams")
    return torch.cat(blocks).to(torch.uint8)


def mean_over_ranks(values: dict[str, float | None], ranks: Ranks) -> dict[str, float | None]:
    """Each named scalar averaged over the ranks (None stays None: a scalar some model lacks)."""
    names = [name for name, value in values.items() if value is not None]
    if not ranks.distributed or not names:
        return dict(values)
    buffer = torch.tensor([float(values[name]) for name in names], dtype=torch.float64)
    _collective(lambda: dist.all_reduce(buffer), ranks, "the averaging of the step's scalars")
    means = dict(zip(names, (buffer / ranks.world_size).tolist()))
    return {name: means.get(name) for name in values}


def any_rank(flag: bool, ranks: Ranks) -> bool:
    """True on every rank when ``flag`` is True on at least one (e.g. a SIGTERM seen by one)."""
    if not ranks.distributed:
        return flag
    buffer = torch.tensor([1 if flag else 0], dtype=torch.int32)
    _collective(lambda: dist.all_reduce(buffer, op=dist.ReduceOp.MAX), ranks, "the agreement to stop")
    return bool(buffer.item())


def average_gradients(params: Iterable[torch.nn.Parameter], ranks: Ranks) -> None:
    """Average the gradients of ``params`` over the ranks in one coalesced all-reduce (Stage 3,
    whose three losses each reach their own parameters through ``backward(inputs=)``, a pattern
    DistributedDataParallel's per-backward bucketing cannot follow)."""
    if not ranks.distributed:
        return
    params = list(params)
    # a parameter one shard's loss did not reach has no gradient there (a shard whose labels are all
    # hidden, say): the ranks first agree which have one, and a rank without it adds zeros — as a
    # single process accumulating the same shards would have; none anywhere stays None, as there
    present = torch.tensor([p.grad is not None for p in params], dtype=torch.int32)
    _collective(lambda: dist.all_reduce(present, op=dist.ReduceOp.MAX), ranks, "the gradient all-reduce")
    for p, anywhere in zip(params, present.tolist()):
        if anywhere and p.grad is None:
            p.grad = torch.zeros_like(p)
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    _collective(lambda: dist.all_reduce(flat), ranks, "the gradient all-reduce")
    flat /= ranks.world_size
    offset = 0
    for g in grads:
        g.copy_(flat[offset: offset + g.numel()].view_as(g))
        offset += g.numel()


def gather_objects(value: Any, ranks: Ranks) -> list[Any]:
    """Every rank's ``value`` (JSON: numbers, strings, lists, dicts; numpy arrays become lists), in
    rank order, on every rank. Sent as JSON text in uint8 tensors, never pickled."""
    if not ranks.distributed:
        return [value]
    import json

    import numpy as np

    text = json.dumps(value, default=lambda v: v.tolist() if isinstance(v, (np.ndarray, np.generic)) else str(v))
    local = torch.frombuffer(bytearray(text.encode()), dtype=torch.uint8)
    sizes = [torch.zeros(1, dtype=torch.int64) for _ in range(ranks.world_size)]
    _collective(lambda: dist.all_gather(sizes, torch.tensor([len(local)])), ranks, "the gathering of results")
    longest = int(max(size.item() for size in sizes))
    padded = torch.zeros(longest, dtype=torch.uint8)
    padded[: len(local)] = local
    blocks = [torch.empty(longest, dtype=torch.uint8) for _ in range(ranks.world_size)]
    _collective(lambda: dist.all_gather(blocks, padded), ranks, "the gathering of results")
    return [json.loads(block[: int(size.item())].numpy().tobytes().decode()) for block, size in zip(blocks, sizes)]


def row_split(ranks: Ranks) -> RowSplit:
    """The evaluations' share of test rows for this rank (``evaluation.rows``)."""
    return RowSplit(ranks.rank, ranks.world_size, gather=lambda value: gather_objects(value, ranks))


class _Call(torch.nn.Module):
    """The module DistributedDataParallel wraps: its forward calls a loss function of the model."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model

    def forward(self, loss_of: Callable[..., Any], *args: Any) -> Any:
        return loss_of(*args)


class GradientSync:
    """Accumulate the local shards' gradients and average them over the ranks with
    DistributedDataParallel (one all-reduce per step, overlapped with the last shard's backward).
    On CUDA with ``mixed_precision`` the forward passes run under bf16 autocast."""

    def __init__(self, model: torch.nn.Module, ranks: Ranks, mixed_precision: bool = False,
                 trained: Sequence[torch.nn.Parameter] | None = None):
        """``trained``: the parameters the loop's optimiser steps (default: all that require a
        gradient); DDP synchronises exactly these, and every one must reach the loss each step."""
        self.ranks = ranks
        self.device = next(model.parameters()).device
        self.autocast = mixed_precision and self.device.type == "cuda"
        self.ddp = None
        if ranks.distributed and any(p.requires_grad for p in model.parameters()):
            from torch.nn.parallel import DistributedDataParallel

            wrapper = _Call(model)
            if trained is not None:
                keep = {id(p) for p in trained}
                ignored = [name for name, p in wrapper.named_parameters() if id(p) not in keep]
                DistributedDataParallel._set_params_and_buffers_to_ignore_for_model(wrapper, ignored)
            import warnings

            # a parameter stored transposed gets its gradient through a copy: slower, never wrong
            warnings.filterwarnings("ignore", message="Grad strides do not match bucket view strides")
            self.ddp = DistributedDataParallel(wrapper, forward_sync_buffers=False,
                                               device_ids=[self.device.index] if self.device.type == "cuda" else None)

    def close(self) -> None:
        """Take DDP's gradient hooks off the parameters (a later loop, e.g. Stage 3, syncs its own)."""
        if self.ddp is not None:
            import gc

            self.ddp = None
            gc.collect()

    def __enter__(self) -> GradientSync:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def backward(self, items: Sequence[Any], loss_of: Callable[[Any], tuple[torch.Tensor, dict[str, float | None]]]
                 ) -> dict[str, float | None]:
        """For each local shard ``item``: ``loss, scalars = loss_of(item)``; backward of the loss
        averaged over the local shards; returns the scalars averaged over every shard of the step."""
        totals: dict[str, float | None] = {}
        for i, item in enumerate(items):
            last = i == len(items) - 1
            with (self.ddp.no_sync() if self.ddp is not None and not last else nullcontext()):
                with (torch.autocast("cuda", dtype=torch.bfloat16) if self.autocast else nullcontext()):
                    loss, scalars = self.ddp(loss_of, item) if self.ddp is not None else loss_of(item)
                scaled = loss if len(items) == 1 else loss / len(items)
                if self.ddp is not None and last:  # DDP's all-reduce runs inside this backward
                    _collective(scaled.backward, self.ranks, "the gradient all-reduce")
                else:
                    scaled.backward()
            for name, value in scalars.items():
                totals[name] = None if value is None else (totals.get(name) or 0.0) + value / len(items)
        return mean_over_ranks(totals, self.ranks)
