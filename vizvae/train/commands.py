"""CLI glue for training: build a model from command-line options, fit, evaluate, save."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Callable

import torch

from vizvae.checkpoint import replacing_folder, write_checkpoint
from vizvae.data import Dataset
from vizvae.device import resolve_device
from vizvae.errors import VizvaeError
from vizvae.models import VAE, VAEConfig
from vizvae.models.base import LatentVariableModel
from vizvae.train.cards import write_model_card
from vizvae.train.loop import TrainSettings, evaluate_model, fit
from vizvae.models.capabilities import GroupModel
from vizvae.train.options import (
    add_scale_arguments, dataset_from_args, parallel_record, progress_from_args, recorded_command, run_context,
    training_steps, validate_train_arguments,
)
from vizvae.train.parallel import PeerFailure, launched_ranks, start_process_group, stop_process_group
from vizvae.train.resume import StopRequested
from vizvae.train.staged_commands import (
    MIXED_MODELS, STAGED_MODELS, add_staged_arguments, build_mixed_model, build_staged_model, train_staged_command,
)
from vizvae.train.ugvae_commands import (
    GROUP_MODELS, add_ugvae_arguments, build_digit_classifier, build_group_model, train_digit_classifier_command,
)


def add_train_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="model key, e.g. vae")
    parser.add_argument("--dataset", required=True, help="mnist, digits, boston, diabetes, wine or a path")
    parser.add_argument("--latent-dim", type=int, default=16)
    parser.add_argument("--beta", type=float, default=1.0, help="KL weight (β-VAE when > 1)")
    length = parser.add_mutually_exclusive_group()
    length.add_argument("--steps", type=int, help="optimiser steps")
    length.add_argument("--epochs", type=int, help="passes over the train split")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--hidden", help="hidden layer sizes, comma-separated (default 256,256; 256 for models "
                        "with a predictor)")
    parser.add_argument("--architecture", choices=["mlp", "cnn"], default="mlp")
    parser.add_argument("--likelihood", choices=["bernoulli", "gaussian"], help="default: bernoulli for images")
    parser.add_argument("--sigma-mode", choices=["fixed", "global", "learned"], default="fixed")
    parser.add_argument("--sigma", type=float, default=0.1 ** 0.5, help="Gaussian σ (fixed) or its start")
    parser.add_argument("--missing", choices=["none", "protocol"],
                        help="train with the thesis §5.4 random-missingness protocol (default none; models "
                        "with a predictor always use it)")
    parser.add_argument("--no-binarize", action="store_true", help="keep grey levels (images)")
    parser.add_argument("--name", help="checkpoint name (default: the --out folder's name)")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda")
    parser.add_argument("--threads", type=int, help="CPU threads for torch (1 keeps rebuilds reproducible and is "
                        "fastest on a busy machine; default: torch's choice)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument("--out", required=True, help="checkpoint folder to write (refused if it exists and is not "
                        "empty, unless --overwrite)")
    parser.add_argument("--overwrite", action="store_true", help="replace the checkpoint (or the non-empty folder) at "
                        "--out; its other files are kept")
    add_staged_arguments(parser)
    add_ugvae_arguments(parser)
    add_scale_arguments(parser)


def build_vae(args: argparse.Namespace, dataset: Dataset) -> LatentVariableModel:
    is_image = dataset.kind == "image"
    config = VAEConfig(
        input_shape=tuple(dataset.image_shape) if is_image else (dataset.n_features,),
        latent_dim=args.latent_dim,
        hidden_dims=tuple(int(h) for h in (args.hidden or "256,256").split(",")),
        architecture=args.architecture,
        likelihood=args.likelihood or ("bernoulli" if is_image else "gaussian"),
        sigma_mode=args.sigma_mode,
        sigma=args.sigma,
        beta=args.beta,
    )
    return VAE(config)


# model key -> builder; later model families add themselves here
MODEL_BUILDERS: dict[str, Callable[[argparse.Namespace, Dataset], LatentVariableModel]] = {"vae": build_vae}
# model key -> its own train command, for families trained in stages (Algorithm 1)
MODEL_TRAINERS: dict[str, Callable[[argparse.Namespace], int]] = {}
MODEL_BUILDERS.update({key: build_staged_model for key in STAGED_MODELS})
MODEL_TRAINERS.update({key: train_staged_command for key in STAGED_MODELS})
MODEL_BUILDERS.update({key: build_mixed_model for key in MIXED_MODELS})  # VAEM ... HH-VAEM on tables
MODEL_TRAINERS.update({key: train_staged_command for key in MIXED_MODELS})
MODEL_BUILDERS.update({key: build_group_model for key in GROUP_MODELS})  # UG-VAE, ML-VAE, GMVAE
# the Fréchet distance's feature extractor (not a latent-variable model; its own trainer)
MODEL_BUILDERS["digit-classifier"] = build_digit_classifier
MODEL_TRAINERS["digit-classifier"] = train_digit_classifier_command


def train_command(args: argparse.Namespace) -> int:
    if args.model not in MODEL_BUILDERS:
        print(f"error: unknown --model {args.model!r}; expected one of {', '.join(MODEL_BUILDERS)}", file=sys.stderr)
        return 2
    try:
        validate_train_arguments(args)
        ranks = launched_ranks()
        if ranks.distributed and args.model == "digit-classifier":
            raise VizvaeError("the digit classifier trains in one process: run it without torchrun")
    except VizvaeError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if args.threads:
        torch.set_num_threads(args.threads)
    try:  # a distributed run joins its process group first (torchrun sets the ranks)
        args.device = str(start_process_group(ranks, resolve_device(args.device), args.dist_timeout))
        trainer = MODEL_TRAINERS.get(args.model, train_single_stage_command)
        return trainer(args)
    except StopRequested as err:
        if ranks.is_main:
            print(f"stopped: {err}", file=sys.stderr)
        return 143  # 128 + SIGTERM, as a shell reports a run that SIGTERM ended
    except PeerFailure as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    finally:
        stop_process_group()


def train_single_stage_command(args: argparse.Namespace) -> int:
    """Fit a model by its ELBO alone (``fit``), evaluate its bounds, save it and write its card
    (only rank 0 of a distributed run prints and writes)."""
    torch.manual_seed(args.seed)
    dataset = dataset_from_args(args)
    device = resolve_device(args.device)
    model = MODEL_BUILDERS[args.model](args, dataset).to(device)
    steps = training_steps(args, dataset)
    group_rows = isinstance(model, GroupModel)  # a shard is one whole group
    context = run_context(args, None if group_rows else args.batch_size)
    settings = TrainSettings(steps=steps, batch_size=args.batch_size, lr=args.lr, seed=args.seed,
                             missing=args.missing or "none")
    progress = progress_from_args(args, f"train {args.model}")
    progress.message(f"training {args.model} on {dataset.name} ({len(dataset.x_train)} rows) for {steps} steps on "
                     f"{device}" + _ranks_note(context.plan.shards, context.ranks.world_size))
    started = time.perf_counter()
    history = fit(model, dataset, settings, progress, context=context)
    seconds = time.perf_counter() - started
    if not context.ranks.is_main:
        return 0
    evaluation = evaluate_model(model, dataset, seed=args.seed)
    out = Path(args.out)
    with replacing_folder(out, overwrite=args.overwrite) as staging:  # checkpoint and card appear together
        write_checkpoint(
            model, staging, name=args.name or out.name, dataset=dataset.describe(),
            training={"settings": settings.to_json(), "seconds": round(seconds, 1), "device": str(device),
                      "history": history, "command": recorded_command(),
                      "parallel": parallel_record(context, args.batch_size, group_rows)},
            evaluation=evaluation,
        )
        write_model_card(staging)
    if context.saver is not None:
        context.saver.clean_up()
    progress.message(f"test ELBO {evaluation['test_elbo']:.2f} nats, IWAE(50) {evaluation['test_iwae_50']:.2f}; saved {out}")
    return 0


def _ranks_note(shards: int, world_size: int) -> str:
    if shards == 1 and world_size == 1:
        return ""
    return f", {shards} shards on {world_size} rank{'s' if world_size > 1 else ''}"
