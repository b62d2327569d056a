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
    """Bars and messages on stderr unless ``--quiet``."""
    return Progress(label=label, enabled=not args.quiet)


def recorded_command() -> str:
    """The ``train`` command line that is running, to store in the checkpoint ("" when the
    trainer was called from Python rather than the CLI)."""
    if sys.argv[1:2] != ["train"]:
        return ""
    return "python -m vizvae train " + " ".join(shlex.quote(a) for a in sys.argv[2:])


def training_steps(args: argparse.Namespace, dataset: Dataset, default_steps: int | None = None) -> int:
    """``--steps``, else ``--epochs`` passes over the train split, else ``default_steps`` (else
    ``DEFAULT_EPOCHS`` passes)."""
    steps_per_epoch = max(1, len(dataset.x_train) // args.batch_size)
    if args.steps:
        return args.steps
    if args.epochs:
        return args.epochs * steps_per_epoch
    return default_steps if default_steps is not None else DEFAULT_EPOCHS * steps_per_epoch
