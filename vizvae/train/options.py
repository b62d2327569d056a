"""What every ``python -m vizvae train`` command reads from its command line the same way: the
dataset, the progress reporting, the command line itself (recorded in the checkpoint), and the
training length."""

from __future__ import annotations

import argparse
import shlex
import sys
from typing import Any

from vizvae.data import Dataset, load_dataset
from vizvae.data.datasets import TABLE_DATASETS
from vizvae.progress import Progress
from vizvae.train.parallel import DEFAULT_TIMEOUT_S, ShardPlan, check_shards, launched_ranks
from vizvae.train.resume import RunContext, Saver, check_same_run, read_state, run_identity

DEFAULT_EPOCHS = 50


def dataset_from_args(args: argparse.Namespace) -> Dataset:
    """``--dataset``, binarised for a Bernoulli likelihood unless ``--no-binarize``."""
    is_image = args.dataset not in TABLE_DATASETS and not str(args.dataset).endswith(".csv")
    likelihood = args.likelihood or ("bernoulli" if is_image else "gaussian")
    options: dict[str, Any] = {}
    if is_image:
        options["binarize"] = likelihood == "bernoulli" and not args.no_binarize
    return load_dataset(args.dataset, **options)


def progress_from_args(args: argparse.Namespace, label: str) -> Progress:
    """Bars and messages on stderr unless ``--quiet`` (and only from rank 0 of a distributed run)."""
    return Progress(label=label, enabled=not args.quiet and launched_ranks().is_main)


DEFAULT_SAVE_EVERY = 500


def add_scale_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("training at scale (torchrun) and resumable runs")
    group.add_argument("--shards", type=int, help="cut each step's batch into this many shards (default: the number of "
                       "ranks); a run's result depends on the seed and the shards, not on the ranks computing them. "
                       "Group models (ugvae, mlvae, gmvae) take one group of --batch-size rows per shard")
    group.add_argument("--save-every", type=int, default=DEFAULT_SAVE_EVERY,
                       help=f"write a resumable state every this many steps (default {DEFAULT_SAVE_EVERY}; 0: only "
                       "when stopped with SIGTERM)")
    group.add_argument("--state-dir", help="folder of the resumable state (default: --out with .state appended; with "
                       "--resume, the folder resumed from)")
    group.add_argument("--resume", metavar="DIR", help="continue the run whose state is in DIR (same command, same "
                       "options; the number of ranks may change if it divides the shards)")
    group.add_argument("--dist-timeout", type=float, default=DEFAULT_TIMEOUT_S,
                       help=f"seconds a rank waits on a silent peer before the run fails (default {DEFAULT_TIMEOUT_S})")
    group.add_argument("--precision", choices=["bf16", "fp32"], default="bf16",
                       help="CUDA training: bf16 autocast for the networks (the HMC stage stays float32); the CPU "
                       "always trains in float32")


def run_context(args: argparse.Namespace, rows_per_step: int | None) -> RunContext:
    """The shard plan, saver (and any state to resume) of a ``train`` command. ``rows_per_step``:
    the global batch, None when a shard is a whole group."""
    from pathlib import Path

    ranks = launched_ranks()
    pending = read_state(args.resume) if getattr(args, "resume", None) else None
    shards = args.shards or (int(pending.info["shards"]) if pending else ranks.world_size)
    check_shards(shards, ranks, rows_per_step)
    hmc_rows = getattr(args, "hmc_batch_size", None)
    if shards > 1 and hmc_rows and (getattr(args, "hmc_steps", 0) or 0) > 0 and hmc_rows % shards:
        from vizvae.errors import VizvaeError

        raise VizvaeError(f"--hmc-batch-size {hmc_rows} cannot be cut into {shards} equal shards")
    identity = run_identity({**vars(args), "shard_count": shards})
    if pending is not None:
        check_same_run(pending.info, identity, args.resume)
    folder = Path(args.state_dir or args.resume or f"{str(args.out).rstrip('/')}.state")
    saver = Saver(folder, every=max(0, args.save_every), ranks=ranks, identity=identity, pending=pending)
    saver.listen_for_sigterm()
    return RunContext(ShardPlan(shards, ranks), saver, mixed_precision=args.precision == "bf16")


def parallel_record(context: RunContext, rows_per_step: int, group_rows: bool) -> dict[str, Any]:
    """What the checkpoint says about how it was trained in parallel."""
    shards, ranks = context.plan.shards, context.ranks
    return {"world_size": ranks.world_size, "shards": shards,
            "global_batch": rows_per_step * shards if group_rows else rows_per_step,
            "backend": "nccl" if ranks.distributed and _cuda_run() else ("gloo" if ranks.distributed else None)}


def _cuda_run() -> bool:
    import torch.distributed as dist

    return dist.is_initialized() and dist.get_backend() == "nccl"


def recorded_command() -> str:
    """The ``train`` command line that is running, to store in the checkpoint ("" when the
    trainer was called from Python rather than the CLI)."""
    if sys.argv[1:2] != ["train"]:
        return ""
    return "python -m vizvae train " + " ".join(shlex.quote(a) for a in sys.argv[2:])


# argument -> the least value it takes (None: no bound below; floats must also be finite)
_AT_LEAST = {"steps": 1, "epochs": 1, "latent_dim": 1, "batch_size": 1, "threads": 1, "hmc_steps": 0,
             "hmc_batch_size": 1, "n_transitions": 1, "n_leapfrog": 1, "sksd_chains": 1, "importance": 1,
             "marginal_steps": 0, "marginal_hidden": 1, "imputation_rows": 0, "imputation_samples": 1, "clusters": 1,
             "global_dim": 0, "saia_rows": -1, "seed": 0, "shards": 1, "save_every": 0}
_POSITIVE_FLOATS = ("lr", "sigma", "lr_inflation", "lr_stage3", "lr_step_sizes", "dist_timeout")
_FINITE_FLOATS = ("beta", "target_acceptance", "kl_balance_fraction", "kl_anneal_fraction")
_INT_LISTS = ("latent_dims", "hidden", "imputation_seeds")


def validate_train_arguments(args: argparse.Namespace) -> None:
    """Refuse, before any work, a ``train`` argument no training could use (``--steps 0``,
    ``--latent-dim -3``, ``--out`` naming a file or an existing checkpoint without ``--overwrite``):
    one line naming the option."""
    import math

    from vizvae.checkpoint import check_out_folder
    from vizvae.errors import VizvaeError

    def option(name: str) -> str:
        return "--" + name.replace("_", "-")

    for name, least in _AT_LEAST.items():
        value = getattr(args, name, None)
        if value is not None and value < least:
            raise VizvaeError(f"{option(name)} must be at least {least}, got {value}")
    for name in _POSITIVE_FLOATS + _FINITE_FLOATS:
        value = getattr(args, name, None)
        if value is not None and not math.isfinite(value):
            raise VizvaeError(f"{option(name)} must be a finite number, got {value}")
        if value is not None and name in _POSITIVE_FLOATS and value <= 0:
            raise VizvaeError(f"{option(name)} must be positive, got {value}")
    if getattr(args, "beta", None) is not None and args.beta < 0:
        raise VizvaeError(f"--beta must be at least 0, got {args.beta}")
    for name in _INT_LISTS:
        text = getattr(args, name, None)
        if not text:
            continue
        parts = str(text).split(",")
        least = 0 if name == "imputation_seeds" else 1
        if not all(p.strip().lstrip("-").isdigit() and int(p) >= least for p in parts):
            raise VizvaeError(f"{option(name)} must be whole numbers of at least {least} separated by commas, "
                              f"got {text!r}")
    check_out_folder(args.out, overwrite=getattr(args, "overwrite", False))


def training_steps(args: argparse.Namespace, dataset: Dataset, default_steps: int | None = None) -> int:
    """``--steps``, else ``--epochs`` passes over the train split, else ``default_steps`` (else
    ``DEFAULT_EPOCHS`` passes)."""
    steps_per_epoch = max(1, len(dataset.x_train) // args.batch_size)
    if args.steps is not None:
        return args.steps
    if args.epochs is not None:
        return args.epochs * steps_per_epoch
    return default_steps if default_steps is not None else DEFAULT_EPOCHS * steps_per_epoch
