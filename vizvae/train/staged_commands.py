"""CLI glue for the models with a predictor (pvae, hvae, miwae, hmcvae, hhvae) and their mixed-type
versions for tables (vaem, miwaem, hvaem, hmcvaem, hhvaem): build from the command line, train in
stages (``stages.py``), evaluate (bounds + imputation, and SAIA curves for tables), save, write the card.

    python -m vizvae train --model hhvae --dataset mnist --latent-dims 20,10 --steps 6000 \\
        --hmc-steps 300 --out runs/hhvae
    python -m vizvae train --model hhvaem --dataset boston --latent-dims 10,5 --marginal-steps 1000 \\
        --steps 4000 --hmc-steps 500 --out runs/boston-hhvaem
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path
from typing import Any

import torch

from vizvae.checkpoint import load_checkpoint, replacing_folder, resolve_checkpoint, write_checkpoint
from vizvae.data import Dataset
from vizvae.device import resolve_device
from vizvae.errors import VizvaeError
from vizvae.evaluation.rows import ALONE, RowSplit
from vizvae.models.base import MODEL_REGISTRY, LatentVariableModel
from vizvae.models.capabilities import TunedHMCModel
from vizvae.models.mixed import MIXED_MODELS  # the staged models on marginal VAEs' codes
from vizvae.progress import Progress
from vizvae.train.cards import write_model_card
from vizvae.train.loop import evaluate_model
from vizvae.train.options import (
    dataset_from_args, parallel_record, progress_from_args, recorded_command, run_context, training_steps,
)
from vizvae.train.parallel import row_split
from vizvae.train.stages import StageSettings, train_stages

STAGED_MODELS = ("pvae", "hvae", "miwae", "hmcvae", "hhvae")
# Mixed-type models on tables, where the command line leaves them open (thesis §5.4.1): latent [10, 5]
# ([4, 2] for tables of at most 10 features, as diabetes; one-layer models take the first size),
# 2·10⁴ Stage-2 steps, 500 Stage-3 steps with the networks at lr 1e-4 (at 1e-3 so short a Stage 3,
# its HMC objective estimated on 8 rows a step, pulled boston's predictor away: target NLL 0.99, not 0.54).
TABLE_DEFAULTS = {"latent_dims": "10,5", "small_latent_dims": "4,2", "steps": 20000, "hmc_steps": 500,
                  "lr_stage3": 1e-4}
GAUSSIAN_COUNTERPARTS = {"hmcvae": "pvae", "hhvae": "hvae", "hmcvaem": "vaem", "hhvaem": "hvaem"}  # what --init-from may start Stage 3 from


def add_staged_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("models with a predictor (pvae, hvae, miwae, hmcvae, hhvae)")
    group.add_argument("--latent-dims", help="ε layer sizes d_1,...,d_L, e.g. 20,10 (default: the model's)")
    group.add_argument("--hmc-steps", type=int, help="Stage-3 steps (HMC models; default 0 for images, "
                       f"{TABLE_DEFAULTS['hmc_steps']} for mixed-type tables)")
    group.add_argument("--hmc-batch-size", type=int, default=8, help="rows per Stage-3 HMC run")
    group.add_argument("--n-transitions", type=int, default=10, help="HMC transitions T")
    group.add_argument("--n-leapfrog", type=int, default=5, help="leapfrog steps LF per transition")
    group.add_argument("--sksd-chains", type=int, default=30, help="chains per row in Stage 3")
    group.add_argument("--lr-inflation", type=float, default=1e-2, help="Stage-3 learning rate of the inflation")
    group.add_argument("--lr-stage3", type=float, help="Stage-3 learning rate of the networks (default: --lr; 1e-4 for tables)")
    group.add_argument("--lr-step-sizes", type=float, help="Stage-3 learning rate of log step sizes (default: --lr)")
    group.add_argument("--target-acceptance", type=float, default=0.65,
                       help="Stage 3 steers the step sizes' overall scale to this mean acceptance (0: off, "
                       "eq. 5.9 alone)")
    group.add_argument("--plateau-window", type=int,
                       help="Stage 3 stops once its HMC objective plateaus and the acceptance is within 0.05 of "
                       "the target, judged over windows of this many steps; --hmc-steps is then a ceiling "
                       "(default: max(25, hmc-steps / 8); 0: run every --hmc-steps step)")
    group.add_argument("--importance", type=int, default=5, help="K of the MIWAE training bound")
    group.add_argument("--marginal-steps", type=int, default=1000,
                       help="mixed-type models: Stage-1 steps of the marginal VAEs (eq. 5.3)")
    group.add_argument("--marginal-hidden", type=int, default=64, help="hidden units of each marginal VAE")
    group.add_argument("--saia-rows", type=int, default=-1,
                       help="tables: test rows for the SAIA curves cached with the model (-1: all, 0: skip)")
    group.add_argument("--kl-balance-fraction", type=float, default=0.1, help="KL-balancing warm-up (eq. 5.7)")
    group.add_argument("--kl-anneal-fraction", type=float, default=0.0,
                       help="KL annealing: the KL's weight in the loss rises linearly from 0 to 1 over this share of "
                       "Stage 2 (0: off)")
    group.add_argument("--init-from", metavar="CHECKPOINT",
                       help="HMC models: start Stage 3 from this Gaussian counterpart (shipped name or folder; "
                       "hmcvae from a pvae, hhvae from an hvae), skipping Stage 2")
    group.add_argument("--imputation-rows", type=int, default=500,
                       help="test rows for the imputation evaluation written to the card (0: skip)")
    group.add_argument("--imputation-samples", type=int, default=20, help="posterior draws per row (k of eq. 5.14)")
    group.add_argument("--imputation-seeds", default="0,1,2", help="test-mask seeds (mean ± std over them)")


def _ints(text: str | None) -> tuple[int, ...] | None:
    return None if not text else tuple(int(v) for v in str(text).split(","))


def build_staged_model(args: argparse.Namespace, dataset: Dataset) -> LatentVariableModel:
    cls = MODEL_REGISTRY[args.model]
    return cls(cls.config_class(**staged_model_options(args, dataset, cls.config_class())))


def staged_model_options(args: argparse.Namespace, dataset: Dataset, defaults: Any) -> dict[str, Any]:
    """Constructor arguments of a model with a predictor (``defaults``: its default config)."""
    is_image = dataset.kind == "image"
    options: dict[str, Any] = {
        "input_shape": tuple(dataset.image_shape) if is_image else (dataset.n_features,),
        "latent_dims": _ints(args.latent_dims) or defaults.latent_dims,
        "hidden_dims": _ints(args.hidden) or (256,),
        "likelihood": args.likelihood or ("bernoulli" if is_image else "gaussian"),
        "sigma_mode": args.sigma_mode,
        "sigma": args.sigma,
        "beta": args.beta,
    }
    if dataset.y_train is None:
        options["target"] = None
    elif dataset.n_classes:
        options.update(target="categorical", n_classes=int(dataset.n_classes))
    else:
        options["target"] = "gaussian"
    fields = {field.name for field in dataclasses.fields(defaults)}
    if "n_transitions" in fields:  # a model with trained HMC hyper-parameters
        options.update(n_transitions=args.n_transitions, n_leapfrog=args.n_leapfrog, sksd_chains=args.sksd_chains,
                       hmc_seed=args.seed)
    if "n_importance" in fields:  # MIWAE's training bound
        options["n_importance"] = args.importance
    return options


def table_latent_dims(n_features: int, n_layers: int) -> str:
    dims = TABLE_DEFAULTS["small_latent_dims" if n_features <= 10 else "latent_dims"]
    return dims if n_layers > 1 else dims.split(",")[0]


def build_mixed_model(args: argparse.Namespace, dataset: Dataset) -> LatentVariableModel:
    """Marginal VAEs for the table's column types + the dependency model on their D codes, with a
    fixed-variance (0.1, §5.4.1) Gaussian decoder of the codes."""
    if dataset.kind != "table" or not dataset.schema:
        raise VizvaeError(f"--model {args.model} is for mixed-type tables (boston, diabetes, wine or a .csv with a "
                          f"schema), not the {dataset.kind} dataset {dataset.name!r}")
    cls = MODEL_REGISTRY[args.model]
    dependency_class = MODEL_REGISTRY[cls.dependency_key]
    defaults = dependency_class.config_class()
    dependency = staged_model_options(args, dataset, defaults)
    if not args.latent_dims:  # the thesis' sizes for tables, not the image models' defaults
        dependency["latent_dims"] = _ints(table_latent_dims(dataset.n_features, len(defaults.latent_dims)))
    dependency.update(likelihood="gaussian", sigma_mode="fixed", sigma=0.1 ** 0.5)
    config = cls.config_class(
        column_names=tuple(c.name for c in dataset.schema), column_kinds=tuple(c.kind for c in dataset.schema),
        n_categories=tuple(c.n_categories for c in dataset.schema), marginal_hidden=args.marginal_hidden,
        dependency=dependency_class.config_class(**dependency).to_json())
    return cls(config)


def counterpart_start(args: argparse.Namespace, device: torch.device) -> tuple[LatentVariableModel, dict[str, Any]]:
    """An HMC model holding the trained weights of its Gaussian counterpart (``--init-from``): the same
    architecture, read from the counterpart's config.json, plus fresh HMC hyper-parameters."""
    cls = MODEL_REGISTRY[args.model]
    if cls.native_sampler != "hmc":
        raise VizvaeError(f"--init-from starts Stage 3, which only HMC models (hmcvae, hhvae) have, not {args.model}")
    source = load_checkpoint(resolve_checkpoint(args.init_from), device=device)
    if source.config["model"] != GAUSSIAN_COUNTERPARTS[args.model]:
        raise VizvaeError(f"--init-from {args.init_from} is a {source.config['model']} checkpoint; start hmcvae from "
                          f"a pvae, hhvae from an hvae, hmcvaem from a vaem and hhvaem from an hvaem")
    if (source.config.get("dataset") or {}).get("name") != args.dataset:
        raise VizvaeError(f"--init-from {args.init_from} was trained on {source.config['dataset'].get('name')!r}, "
                          f"not {args.dataset!r}")
    hmc_options = {"n_transitions": args.n_transitions, "n_leapfrog": args.n_leapfrog,
                   "sksd_chains": args.sksd_chains, "hmc_seed": args.seed}
    config = dict(source.config["config"])
    if args.model in MIXED_MODELS:  # the HMC settings belong to the dependency model
        config["dependency"] = {**config["dependency"], **hmc_options}
    else:
        config.update(hmc_options)
    model = cls(cls.config_class(**config)).to(device)
    state = source.model.state_dict()
    expected = {k for k in model.state_dict() if not (k.startswith("hmc.") or k.startswith("dependency.hmc."))}
    if set(state) != expected or any(state[k].shape != model.state_dict()[k].shape for k in expected):
        raise VizvaeError(f"--init-from {args.init_from}: a {source.config['model']} checkpoint whose weights do not "
                          f"fit a {args.model}; start it from its Gaussian counterpart")
    model.load_state_dict(state, strict=False)
    return model, source.config


def stage_settings(args: argparse.Namespace, model: LatentVariableModel, dataset: Dataset) -> StageSettings:
    """The stages' lengths and learning rates from the command line, with the thesis' defaults for
    mixed-type tables (``TABLE_DEFAULTS``). A model started ``--init-from`` its counterpart skips
    Stages 1 and 2."""
    is_table_model = args.model in MIXED_MODELS
    if args.plateau_window is not None and args.plateau_window < 0:
        raise VizvaeError(f"--plateau-window must be ≥ 0 (0 runs every --hmc-steps step), got {args.plateau_window}")
    if not 0.0 <= args.kl_anneal_fraction <= 1.0:
        raise VizvaeError(f"--kl-anneal-fraction must lie in [0, 1], got {args.kl_anneal_fraction}")
    if not 0.0 <= args.target_acceptance < 1.0:
        raise VizvaeError(f"--target-acceptance must lie in [0, 1) (0 turns it off), got {args.target_acceptance}")
    steps = 0 if args.init_from else training_steps(args, dataset, TABLE_DEFAULTS["steps"] if is_table_model else None)
    hmc_steps = 0
    if isinstance(model, TunedHMCModel):
        hmc_steps = args.hmc_steps if args.hmc_steps is not None else (TABLE_DEFAULTS["hmc_steps"] if is_table_model else 0)
    lr_stage3 = TABLE_DEFAULTS["lr_stage3"] if args.lr_stage3 is None and is_table_model else args.lr_stage3
    return StageSettings(steps=steps, marginal_steps=args.marginal_steps if is_table_model and not args.init_from else 0,
                         hmc_steps=hmc_steps, batch_size=args.batch_size, hmc_batch_size=args.hmc_batch_size, lr=args.lr,
                         lr_inflation=args.lr_inflation, lr_stage3=lr_stage3, lr_step_sizes=args.lr_step_sizes,
                         kl_balance_fraction=args.kl_balance_fraction, kl_anneal_fraction=args.kl_anneal_fraction,
                         seed=args.seed,
                         target_acceptance=args.target_acceptance or None, plateau_window=args.plateau_window)


def announce_stages(progress: Progress, args: argparse.Namespace, model: LatentVariableModel, dataset: Dataset,
                    settings: StageSettings, device: torch.device) -> None:
    start = f"from {args.init_from}, " if args.init_from else ""
    progress.message(f"training {args.model} (latent {model.latent_dims}) on {dataset.name} "
                     f"({len(dataset.x_train)} rows, §5.4 missingness), {start}"
                     + (f"{settings.marginal_steps} marginal + " if settings.marginal_steps else "")
                     + f"{settings.steps} VI" + (f" + up to {settings.hmc_steps} HMC" if settings.hmc_steps else "")
                     + f" steps on {device}")


def with_inherited_stages(stages: list[dict[str, Any]], source_config: dict[str, Any] | None) -> list[dict[str, Any]]:
    """A model started from its counterpart keeps the counterpart's stage records (Stage 2 is its)."""
    if source_config is None:
        return stages
    source_training = source_config.get("training") or {}
    inherited = [dict(stage, source=source_config.get("name")) for stage in source_training.get("stages", [])
                 if stage.get("steps")]
    return inherited + [stage for stage in stages if stage["steps"]]


def staged_evaluation(args: argparse.Namespace, model: LatentVariableModel, dataset: Dataset,
                      progress: Progress, split: RowSplit = ALONE) -> dict[str, Any]:
    """Test bounds, and the imputation evaluation unless ``--imputation-rows 0`` (its rows shared
    between the ranks of a distributed run; every rank computes the bounds)."""
    evaluation = evaluate_model(model, dataset, seed=args.seed)
    if args.imputation_rows:
        from vizvae.evaluation.imputation import evaluate_imputation

        progress.message(f"imputation evaluation on {args.imputation_rows} test rows ...")
        evaluation.update(evaluate_imputation(model, dataset, rows=args.imputation_rows,
                                              n_samples=args.imputation_samples,
                                              seeds=tuple(int(s) for s in args.imputation_seeds.split(",")),
                                              split=split))
    return evaluation


def evaluation_summary(evaluation: dict[str, Any], dataset: Dataset) -> str:
    summary = f"test ELBO {evaluation['test_elbo']:.2f} nats"
    if "missing_nll" in evaluation:
        unit = "pixel" if dataset.kind == "image" else "feature"
        summary += f", missing NLL {evaluation['missing_nll']:.4f}/{unit}"
        if "target_nll" in evaluation:
            summary += f", target NLL {evaluation['target_nll']:.3f}"
        if "target_accuracy" in evaluation:
            summary += f", accuracy {evaluation['target_accuracy']:.3f}"
    return summary


def train_staged_command(args: argparse.Namespace) -> int:
    """Build (or start ``--init-from`` a counterpart), train in stages, evaluate, save, write the card."""
    torch.manual_seed(args.seed)
    dataset = dataset_from_args(args)
    device = resolve_device(args.device)
    source_config: dict[str, Any] | None = None
    if args.init_from:
        model, source_config = counterpart_start(args, device)
    else:
        build = build_mixed_model if args.model in MIXED_MODELS else build_staged_model
        model = build(args, dataset).to(device)
    settings = stage_settings(args, model, dataset)
    context = run_context(args, args.batch_size)
    progress = progress_from_args(args, args.model)
    announce_stages(progress, args, model, dataset, settings, device)
    started = time.perf_counter()
    stages = train_stages(model, dataset, settings, progress, context)
    seconds = time.perf_counter() - started
    stages = with_inherited_stages(stages, source_config)
    split = row_split(context.ranks)
    evaluation = staged_evaluation(args, model, dataset, progress, split)
    saia = None
    if args.model in MIXED_MODELS and args.saia_rows:
        from vizvae.evaluation.saia import evaluate_saia

        progress.message("SAIA curves (mi, kl, random) on the test rows ...")
        saia = evaluate_saia(model, dataset, rows=None if args.saia_rows < 0 else args.saia_rows, seed=args.seed,
                             split=split)
    if not context.ranks.is_main:
        return 0
    out = Path(args.out)
    history = next((s["history"] for s in stages if s["name"].startswith("stage 2")), stages[0]["history"])
    with replacing_folder(out, overwrite=args.overwrite) as staging:  # checkpoint, curves and card appear together
        write_checkpoint(
            model, staging, name=args.name or out.name, dataset=dataset.describe(),
            training={"settings": settings.to_json(), "seconds": round(seconds, 1), "device": str(device),
                      "history": history, "stages": stages, "command": recorded_command(),
                      "init_from": (source_config or {}).get("name"),
                      "parallel": parallel_record(context, args.batch_size, group_rows=False)},
            evaluation=evaluation,
        )
        if saia is not None:
            from vizvae.evaluation.saia import write_saia_cache

            write_saia_cache(staging, model, dataset, result=saia)
        write_model_card(staging)
    if context.saver is not None:
        context.saver.clean_up()
    progress.message(f"{evaluation_summary(evaluation, dataset)}; saved {out}")
    return 0
