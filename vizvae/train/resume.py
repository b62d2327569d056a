"""Resumable training: every ``--save-every`` steps, and when the process gets SIGTERM, a training
run writes its whole state to a folder; ``--resume DIR`` carries on from there and ends with the
weights an uninterrupted run would have had (bit for bit on the CPU).

The state is two files, never a pickle:

* ``state-<stage>-<step>.safetensors`` — the weights, every optimiser's moment tensors, every
  random stream (the order stream, each shard's stream, torch's global one) and the data order
  (the current permutations);
* ``state.json`` — the run's identity (its training options), the stage and step, the cursors,
  the optimisers' settings, the smoothed scalars and history so far, the loop's own counters, and
  the records of the stages already done.

Each file is written to a temporary name and renamed; ``state.json`` goes last and names its
tensors file, so a kill at any instant leaves the previous state or the new one, never a mix.
Only rank 0 writes; every rank reads (the folder must be on storage every node sees).
"""

from __future__ import annotations

import json
import os
import signal
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import torch

from vizvae.errors import VizvaeError
from vizvae.progress import TrainingLog
from vizvae.train.parallel import SINGLE, Ranks, ShardPlan, Streams, any_rank

STATE_JSON = "state.json"
FORMAT = "vizvae-train-state/1"
MAX_STATE_JSON_BYTES = 64 * 1024 * 1024
# options that do not change what is computed, so a resumed run may set them differently
RUN_CONTROL = frozenset({"resume", "quiet", "threads", "overwrite", "save_every", "state_dir", "dist_timeout",
                         "device", "out", "name", "func", "command", "shards"})


class StopRequested(VizvaeError):
    """The run was asked to stop (SIGTERM) and has written its state."""


@dataclass
class LoopState:
    """What a training loop adds to the model and its log to be resumable."""

    optimizers: Sequence[torch.optim.Optimizer]
    streams: Streams
    rows: Any  # RandomGroups or ProtocolBatches: state() -> (tensors, json); restore(tensors, json)
    counters: Callable[[], dict[str, Any]] = dict  # the loop's own running values (JSON)
    restore_counters: Callable[[dict[str, Any]], None] = lambda values: None


@dataclass
class SavedState:
    info: dict[str, Any]
    tensors: dict[str, torch.Tensor]


def run_identity(options: dict[str, Any]) -> dict[str, Any]:
    """The options that define what a run computes (JSON values only)."""
    return {key: value for key, value in sorted(options.items())
            if key not in RUN_CONTROL and (value is None or isinstance(value, (str, int, float, bool)))}


def read_state(folder: str | Path, identity: dict[str, Any] | None = None) -> SavedState:
    """The state in ``folder``; refused with one clear line when it is missing or damaged, or (given
    ``identity``) from a run with other options."""
    from safetensors.torch import load_file

    folder = Path(folder)
    file = folder / STATE_JSON
    if not file.is_file():
        raise VizvaeError(f"--resume {folder}: no {STATE_JSON} there (a run writes it every --save-every steps "
                          "and when it is stopped with SIGTERM)")
    if file.stat().st_size > MAX_STATE_JSON_BYTES:
        raise VizvaeError(f"--resume {folder}: {STATE_JSON} is larger than any state vizvae writes")
    try:
        info = json.loads(file.read_text())
    except (ValueError, UnicodeDecodeError) as err:
        raise VizvaeError(f"--resume {folder}: {STATE_JSON} is not valid JSON ({err})") from None
    if not isinstance(info, dict) or info.get("format") != FORMAT:
        raise VizvaeError(f"--resume {folder}: {STATE_JSON} is not a vizvae training state")
    name = str(info.get("tensors", ""))
    if Path(name).name != name or not (folder / name).is_file():
        raise VizvaeError(f"--resume {folder}: the tensors file {name!r} that {STATE_JSON} names is missing")
    if identity is not None:
        check_same_run(info, identity, folder)
    try:
        tensors = load_file(str(folder / name))
    except Exception as err:  # safetensors raises its own error types for a damaged file
        raise VizvaeError(f"--resume {folder}: {name} cannot be read ({err})") from None
    return SavedState(info, tensors)


def check_same_run(info: dict[str, Any], identity: dict[str, Any], folder: str | Path) -> None:
    """Refuse to resume a state saved by a run with other options (named, with both values)."""
    saved = info.get("identity") or {}
    if saved == identity:
        return
    changed = sorted(k for k in set(saved) | set(identity) if saved.get(k) != identity.get(k))
    raise VizvaeError(f"--resume {folder}: the state comes from a run with other options ("
                      + ", ".join(f"--{k.replace('_', '-')} {saved.get(k)!r} there, {identity.get(k)!r} now"
                                  for k in changed[:6]) + "); resume with the original command")


def _optimizer_parts(index: int, optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    state = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    plain: dict[str, dict[str, Any]] = {}
    for param_id, values in state["state"].items():
        for key, value in values.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optim.{index}.{param_id}.{key}"] = value.detach().cpu().contiguous().clone()
            else:
                plain.setdefault(str(param_id), {})[key] = value
    return tensors, {"param_groups": state["param_groups"], "plain": plain}


def _restore_optimizer(index: int, optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor],
                       saved: dict[str, Any]) -> None:
    prefix = f"optim.{index}."
    per_param: dict[int, dict[str, Any]] = {}
    for name, value in tensors.items():
        if name.startswith(prefix):
            param_id, key = name[len(prefix):].split(".", 1)
            per_param.setdefault(int(param_id), {})[key] = value
    for param_id, values in saved.get("plain", {}).items():
        per_param.setdefault(int(param_id), {}).update(values)
    optimizer.load_state_dict({"state": per_param, "param_groups": saved["param_groups"]})


@dataclass
class Saver:
    """Writes and restores the state of the training loops of one run (see the module docstring)."""

    folder: Path | None
    every: int = 0
    ranks: Ranks = SINGLE
    identity: dict[str, Any] = field(default_factory=dict)
    pending: SavedState | None = None  # a state to resume, consumed by the loop of its stage
    stage: int = 0
    stages_done: list[dict[str, Any]] = field(default_factory=list)
    stop_requested: bool = False
    written: list[str] = field(default_factory=list)

    def listen_for_sigterm(self) -> None:
        """SIGTERM asks for a stop after the current step, with the state written (main thread only)."""
        def request_stop(signum: int, frame: Any) -> None:
            self.stop_requested = True

        signal.signal(signal.SIGTERM, request_stop)

    def resume_loop(self, model: torch.nn.Module, log: TrainingLog, loop: LoopState) -> int:
        """Restore the pending state if it belongs to this stage; the first step to run."""
        state = self.pending
        if state is None or int(state.info["stage"]) != self.stage:
            return 1
        self.pending = None
        tensors, info = state.tensors, state.info
        try:
            model.load_state_dict({k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")})
            for index, optimizer in enumerate(loop.optimizers):
                _restore_optimizer(index, optimizer, tensors, info["optimizers"][index])
            loop.streams.restore(tensors)
            loop.rows.restore({k[len("rows."):]: v for k, v in tensors.items() if k.startswith("rows.")}, info["rows"])
            torch.set_rng_state(tensors["rng.torch"])
            log.restore(info["log"], int(info["step"]))
            loop.restore_counters(info.get("counters", {}))
        except (KeyError, IndexError, RuntimeError, ValueError, TypeError) as err:
            raise VizvaeError(f"--resume {self.folder}: the saved state is damaged or does not fit this run "
                              f"({type(err).__name__}: {str(err)[:200]})") from None
        return int(info["step"]) + 1

    def after_step(self, step: int, model: torch.nn.Module, log: TrainingLog, loop: LoopState) -> None:
        """Write the state when it is due (every ``every`` steps, or on a stop any rank asked for);
        after a stop, raise ``StopRequested``."""
        if self.folder is None:
            return
        stop = any_rank(self.stop_requested, self.ranks)
        if stop or (self.every and step % self.every == 0 and step < log.total):
            self.write(step, model, log, loop)
        if stop:
            raise StopRequested(f"stopped at step {step} of {log.total} ({self.ranks.label()}); the state is in "
                                f"{self.folder}: continue with the same command and --resume {self.folder}")

    def write(self, step: int, model: torch.nn.Module, log: TrainingLog, loop: LoopState) -> None:
        tensors = {f"model.{k}": v.detach().cpu().contiguous().clone() for k, v in model.state_dict().items()}
        optimizers = []
        for index, optimizer in enumerate(loop.optimizers):
            part, saved = _optimizer_parts(index, optimizer)
            tensors.update(part)
            optimizers.append(saved)
        tensors.update({k: v.cpu() for k, v in loop.streams.state().items()})  # a collective: every rank
        rows_tensors, rows_info = loop.rows.state()
        tensors.update({f"rows.{k}": v.contiguous() for k, v in rows_tensors.items()})
        tensors["rng.torch"] = torch.get_rng_state()
        if not self.ranks.is_main:
            return
        info = {"format": FORMAT, "identity": self.identity, "stage": self.stage, "step": step,
                "world_size": self.ranks.world_size, "shards": loop.streams.plan.shards,
                "optimizers": optimizers, "rows": rows_info, "log": log.state(), "counters": loop.counters(),
                "stages_done": self.stages_done, "tensors": f"state-{self.stage}-{step}.safetensors"}
        self._write_files(tensors, info)

    def _write_files(self, tensors: dict[str, torch.Tensor], info: dict[str, Any]) -> None:
        from safetensors.torch import save_file

        assert self.folder is not None
        self.folder.mkdir(parents=True, exist_ok=True)
        name = info["tensors"]
        temporary = self.folder / f".{name}.tmp-{os.getpid()}"
        save_file(tensors, str(temporary))
        os.replace(temporary, self.folder / name)
        temporary = self.folder / f".{STATE_JSON}.tmp-{os.getpid()}"
        temporary.write_text(json.dumps(info, default=_plain))
        os.replace(temporary, self.folder / STATE_JSON)  # the commit point
        for old in self.written:
            if old != name:
                (self.folder / old).unlink(missing_ok=True)
        self.written = [name]

    def clean_up(self) -> None:
        """After a finished run: remove the state files (this run's and the one it resumed from),
        and the folder when that leaves it empty."""
        if not self.ranks.is_main or self.folder is None or not self.folder.is_dir():
            return
        for file in [self.folder / STATE_JSON, *self.folder.glob("state-*.safetensors"), *self.folder.glob(".state*.tmp-*")]:
            file.unlink(missing_ok=True)
        try:
            self.folder.rmdir()
        except OSError:  # the folder holds files of its own: leave them
            pass


def _plain(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.tolist()
    if isinstance(value, (set, tuple)):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not JSON")


@dataclass
class RunContext:
    """How a training loop runs beyond its settings: its shards and ranks, its saver, and whether
    CUDA training uses bf16 autocast."""

    plan: ShardPlan = field(default_factory=ShardPlan)
    saver: Saver | None = None
    mixed_precision: bool = True

    @property
    def ranks(self) -> Ranks:
        return self.plan.ranks


ALONE = RunContext()
