"""CLI glue for training: build a model from command-line options, fit, evaluate, save."""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path
from typing import Any, Callable

import torch

from vizvae.checkpoint import save_checkpoint
from vizvae.data import Dataset, load_dataset
from vizvae.data.datasets import TABLE_DATASETS
from vizvae.device import resolve_device
from vizvae.models.base import LatentVariableModel
from vizvae.models.vae import VAE, VAEConfig
from vizvae.train.loop import TrainSettings, evaluate_model, fit
from vizvae.train.progress import ProgressBar
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
    parser.add_argument("--out", required=True, help="checkpoint folder to write")
    add_staged_arguments(parser)
    add_ugvae_arguments(parser)


def dataset_from_args(args: argparse.Namespace) -> Dataset:
    is_image = args.dataset not in TABLE_DATASETS and not str(args.dataset).endswith(".csv")
    likelihood = args.likelihood or ("bernoulli" if is_image else "gaussian")
    options: dict[str, Any] = {}
    if is_image:
        options["binarize"] = likelihood == "bernoulli" and not args.no_binarize
    return load_dataset(args.dataset, **options)


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
    if getattr(args, "threads", None):
        torch.set_num_threads(args.threads)
    if args.model in MODEL_TRAINERS:
        return MODEL_TRAINERS[args.model](args)
    torch.manual_seed(args.seed)
    dataset = dataset_from_args(args)
    device = resolve_device(args.device)
    model = MODEL_BUILDERS[args.model](args, dataset).to(device)
    steps_per_epoch = max(1, len(dataset.x_train) // args.batch_size)
    steps = args.steps if args.steps else (args.epochs or 50) * steps_per_epoch
    settings = TrainSettings(steps=steps, batch_size=args.batch_size, lr=args.lr, seed=args.seed,
                             missing=args.missing or "none")
    progress = ProgressBar(steps, label=f"train {args.model}", enabled=not args.quiet)
    progress.message(f"training {args.model} on {dataset.name} ({len(dataset.x_train)} rows) for {steps} steps on {device}")
    started = time.perf_counter()
    history = fit(model, dataset, settings, progress)
    seconds = time.perf_counter() - started
    evaluation = evaluate_model(model, dataset, seed=args.seed)
    out = Path(args.out)
    name = args.name or out.name
    command = "python -m vizvae train " + " ".join(shlex.quote(a) for a in sys.argv[2:]) if sys.argv[1:2] == ["train"] else ""
    save_checkpoint(
        model, out, name=name, dataset=dataset.describe(),
        training={"settings": settings.to_json(), "seconds": round(seconds, 1), "device": str(device),
                  "history": history, "command": command},
        evaluation=evaluation,
    )
    write_model_card(out)
    progress.message(f"test ELBO {evaluation['test_elbo']:.2f} nats, IWAE(50) {evaluation['test_iwae_50']:.2f}; saved {out}")
    return 0


def write_model_card(folder: str | Path) -> Path:
    """A human-readable card beside the config: what the model is and how well it does."""

    from vizvae.viz.card import write_previews

    folder = Path(folder)
    write_previews(folder)
    config = json.loads((folder / "config.json").read_text())
    model = config["config"]
    training = config.get("training", {})
    stages = training.get("stages", [])  # models trained in stages (Algorithm 1): all stages count
    steps = sum(s["steps"] for s in stages) if stages else training.get("settings", {}).get("steps", "?")
    seconds = round(sum(s["seconds"] for s in stages), 1) if stages else training.get("seconds", "?")
    dependency = model.get("dependency")  # mixed-type models: marginal VAEs + a dependency model
    architecture = model if dependency is None else dependency
    lines = [
        f"# {config['name']}",
        "",
        f"- model: `{config['model']}` ({config['model_class']}), latent dims {config['latent_dims']}",
        f"- dataset: `{config['dataset']['name']}` ({config['dataset']['n_train']} train / {config['dataset']['n_test']} test rows)",
    ]
    if dependency is not None:
        columns = ", ".join(f"{n} ({k})" for n, k in zip(model["column_names"], model["column_kinds"]))
        lines.append(f"- marginal VAEs: one per column, 1-D latent, {model['marginal_hidden']} hidden units: {columns}")
        lines.append(f"- dependency model on the {len(model['column_kinds'])} marginal codes: Gaussian decoder "
                     f"(variance {round(dependency.get('sigma', 0) ** 2, 3)}), predictor of "
                     f"`{config['dataset'].get('target_name') or 'y'}` ({dependency.get('target')})")
    lines += [
        f"- architecture: {architecture.get('architecture', 'mlp')}, hidden {architecture.get('hidden_dims', architecture.get('hidden_dim', '?'))}, "
        f"likelihood {architecture.get('likelihood', '?')}" + (f", β = {architecture['beta']}" if "beta" in architecture else ""),
        f"- trained: {steps} steps, seed {training.get('settings', {}).get('seed', '?')}, "
        f"{seconds} s on {training.get('device', '?')}",
        f"- rebuild: `{_rebuild_command(folder, config)}`",
    ]
    for stage in stages:
        source = f", inherited from `{stage['source']}`" if stage.get("source") else ""
        lines.append(f"  - {stage['name']}: {stage['steps']} steps, {stage['seconds']} s{source}")
    lines += [
        "",
        "## Evaluation (test split, nats per data point"
        + ((f"; missing_nll per missing {'feature' if dependency is not None else 'pixel'})")
           if "missing_nll" in config.get("evaluation", {}) else ")"),
        "",
        "| metric | value |",
        "|---|---|",
    ]
    lines += [f"| {k} | {v} |" for k, v in config.get("evaluation", {}).items()]
    lines += _imputation_comparison(config)
    lines += _saia_comparison(folder, config)
    path = folder / "card.md"
    path.write_text("\n".join(lines) + "\n")
    return path


def _rebuild_command(folder: Path, config: dict[str, Any]) -> str:
    """A shipped model is rebuilt by name; any other by the train command that made it."""
    from vizvae.checkpoint import SHIPPED_DIR
    from vizvae.train.recipes import ALL_RECIPES

    if folder.resolve().parent == SHIPPED_DIR.resolve() and folder.name in ALL_RECIPES:
        return f"python -m vizvae rebuild --only {folder.name}"
    return (config.get("training") or {}).get("command", "")


def _imputation_comparison(config: dict[str, Any]) -> list[str]:
    """Tables 5.3–5.5 analogue: every shipped model of the same data with imputation results."""
    from vizvae.checkpoint import shipped_checkpoints

    if "missing_nll" not in (config.get("evaluation") or {}):
        return []
    dataset = (config.get("dataset") or {}).get("name")
    rows = [info for info in shipped_checkpoints() if info.dataset == dataset and "missing_nll" in info.evaluation]
    if not rows:
        return []
    lines = ["", "## Imputation under the test-mask protocol, all shipped models of this data "
             "(`python -m vizvae evaluate MODEL --task imputation --json`)", "",
             "| model | missing_nll | target_nll | target_accuracy | sampler |", "|---|---|---|---|---|"]
    for info in rows:
        e = info.evaluation
        lines.append(f"| {info.name} | {e['missing_nll']} ± {e.get('missing_nll_std', '-')} | "
                     f"{e.get('target_nll', '-')} ± {e.get('target_nll_std', '-')} | "
                     f"{e.get('target_accuracy', '-')} | {e.get('imputation_sampler', '-')} |")
    return lines


def _saia_comparison(folder: Path, config: dict[str, Any]) -> list[str]:
    """Fig. 5.5 in numbers: the area under each strategy's error curve, for this model and every shipped
    model of the same table whose curves are cached (``saia.json``)."""
    from vizvae.checkpoint import shipped_checkpoints
    from vizvae.evaluation.saia import CACHE_FILE

    own = folder / CACHE_FILE
    if not own.is_file():
        return []
    dataset = (config.get("dataset") or {}).get("name")
    sources = {config["name"]: own}
    for info in shipped_checkpoints():
        if info.dataset == dataset and (Path(info.path) / CACHE_FILE).is_file():
            sources.setdefault(info.name, Path(info.path) / CACHE_FILE)
    lines = ["", "## Sequential feature acquisition, area under the error curve (smaller is better; "
             "`python -m vizvae evaluate MODEL --task saia --json`)", ""]
    header = None
    for name, file in sources.items():
        saia = json.loads(file.read_text())
        if header is None:
            header = list(saia["areas"])
            lines += [f"Error: {saia['error']}, mean over {saia['rows']} test rows, {saia['options']['samples']} draws "
                      "per step.", "", "| model | " + " | ".join(header) + " | error after 0 / 3 / all features (mi) |",
                      "|---|" + "---|" * (len(header) + 1)]
        curve = saia["curves"].get("mi", [])
        ends = " / ".join(str(round(curve[i], 3)) for i in (0, min(3, len(curve) - 1), len(curve) - 1)) if curve else "-"
        lines.append(f"| {name} | " + " | ".join(str(saia["areas"].get(k, "-")) for k in header) + f" | {ends} |")
    return lines
