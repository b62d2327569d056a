"""The vizvae command line: ``python -m vizvae {train,models,check,rebuild,...}``."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vizvae.errors import VizvaeError

if TYPE_CHECKING:
    from vizvae.checkpoint import CheckpointInfo


def parse_options(items: list[str]) -> dict[str, str]:
    """``-o KEY=VALUE`` options of ``evaluate`` and ``bench``."""
    bad = [item for item in items if "=" not in item]
    if bad:
        raise VizvaeError(f"options must look like KEY=VALUE, got {bad}")
    return dict(item.split("=", 1) for item in items)


MODELS_HEADER = ("name", "model", "dataset", "latent", "size", "test ELBO", "path")


def models_table(infos: list[CheckpointInfo]) -> str:
    """The listing of ``python -m vizvae models``: a header and one row per checkpoint, every column
    as wide as its widest cell (a dataset such as ``mnist+digits`` never pushes a row out of line).
    Paths inside the working directory are shown relative to it."""
    rows = [MODELS_HEADER] + [_models_row(info) for info in infos]
    widths = [max(len(row[column]) for row in rows) for column in range(len(MODELS_HEADER))]
    right = {"size", "test ELBO"}  # numbers line up on their last digit
    return "\n".join("  ".join(cell.rjust(width) if MODELS_HEADER[column] in right else cell.ljust(width)
                               for column, (cell, width) in enumerate(zip(row, widths))).rstrip()
                     for row in rows)


def _models_row(info: CheckpointInfo) -> tuple[str, ...]:
    elbo = info.evaluation.get("test_elbo")
    path = Path(info.path)
    try:
        path = path.resolve().relative_to(Path.cwd().resolve())
    except ValueError:
        pass
    return (info.name, info.model, info.dataset, ",".join(str(d) for d in info.latent_dims) or "-",
            f"{info.size_bytes / 1e6:.2f} MB", "-" if elbo is None else f"{float(elbo):.2f}", str(path))


def models_command(args: argparse.Namespace) -> int:
    from vizvae.checkpoint import checkpoint_info, shipped_checkpoints

    infos = list(shipped_checkpoints())
    failures = []
    for path in args.paths:
        try:
            infos.append(checkpoint_info(path))
        except VizvaeError as err:
            failures.append(str(err))
    if args.json:
        print(json.dumps([info.to_json() for info in infos], indent=1))
    elif infos:
        print(models_table(infos))
    for failure in failures:
        print(f"error: {failure}", file=sys.stderr)
    return 1 if failures else 0


def check_command(args: argparse.Namespace) -> int:
    from vizvae.checkpoint import load_checkpoint

    try:
        checkpoint = load_checkpoint(args.path, device="cpu", max_model_mb=args.max_model_mb,
                                     trust_code=True)  # the operator's own command line
    except VizvaeError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    config = checkpoint.config
    print(f"ok: {checkpoint.name} ({config['model']} on {config['dataset'].get('name')}, latent {config['latent_dims']})")
    return 0


def rebuild_command(args: argparse.Namespace) -> int:
    from vizvae.checkpoint import SHIPPED_DIR
    from vizvae.train.recipes import ALL_RECIPES as SHIPPED_RECIPES  # models and the FD's digit classifier

    out_root = Path(args.out) if args.out else SHIPPED_DIR
    names = args.only or list(SHIPPED_RECIPES)
    unknown = [n for n in names if n not in SHIPPED_RECIPES]
    if unknown:
        print(f"error: unknown shipped model(s) {unknown}; expected {list(SHIPPED_RECIPES)}", file=sys.stderr)
        return 2
    for name in names:
        command = [sys.executable, "-m", "vizvae", "train", *SHIPPED_RECIPES[name], "--out", str(out_root / name),
                   "--overwrite", "--device", args.device]
        print("$", " ".join(command[1:]), flush=True)
        result = subprocess.run(command)
        if result.returncode:
            return result.returncode
    return _precompute_rebuilt(out_root, names)


def _precompute_rebuilt(out_root: Path, names: list[str]) -> int:
    """After training: what the app would compute on a first visit, stored with each model (not
    with the digit classifier, which is no latent-variable model)."""
    from vizvae.train.recipes import SHIPPED_RECIPES as MODEL_RECIPES

    built = [str(out_root / name) for name in names
             if name in MODEL_RECIPES and (out_root / name / "model.safetensors").is_file()]
    if not built:
        return 0
    command = [sys.executable, "-m", "vizvae", "precompute", *built]
    print("$", " ".join(command[1:]), flush=True)
    return subprocess.run(command).returncode


def import_command(args: argparse.Namespace) -> int:
    from vizvae.train.imports import import_command as run_import

    return run_import(args)


def evaluate_command(args: argparse.Namespace) -> int:
    from vizvae.checkpoint import load_checkpoint, resolve_checkpoint
    from vizvae.evaluation import get_task, saves_results

    from vizvae.device import resolve_device
    from vizvae.train.parallel import launched_ranks, row_split, start_process_group, stop_process_group

    task = get_task(args.task)
    options = parse_options(args.option)
    ranks = launched_ranks()  # under torchrun, the tasks that loop over rows share them between the ranks
    try:
        device = start_process_group(ranks, resolve_device(args.device))
        checkpoint = load_checkpoint(resolve_checkpoint(args.model), device=device, max_model_mb=args.max_model_mb,
                                     trust_code=True)  # the operator's own command line
        if ranks.distributed:
            options["row_split"] = row_split(ranks)
            if not ranks.is_main:
                options.pop("save", None)
        results = task(checkpoint, options)
    finally:
        stop_process_group()
    if not ranks.is_main:
        return 0
    if saves_results(options):  # the task stored its results in config.json: the card shows them
        from vizvae.train.cards import write_model_card

        write_model_card(checkpoint.path)
    print_results(results, args.json)
    return 0


def print_results(results: dict, as_json: bool, key_width: int = 0) -> None:
    """One JSON object, or one ``key value`` line per entry."""
    if as_json:
        print(json.dumps(results))
        return
    for key, value in results.items():
        print(f"{key:{key_width}s} {value}" if key_width else f"{key}: {value}")


def bench_command(args: argparse.Namespace) -> int:
    import time

    from vizvae.bench import BENCHMARKS, benchmark

    available = sorted(BENCHMARKS)
    names = args.only or available
    unknown = sorted(set(names) - set(available))
    if unknown:
        print(f"error: unknown benchmark(s) {unknown}; available: {available}", file=sys.stderr)
        return 2
    options = parse_options(args.option)
    if args.device != "cpu":
        options["device"] = args.device
    results: dict = {}
    for name in names:
        started = time.perf_counter()
        if not args.json:
            print(f"# bench {name}", file=sys.stderr, flush=True)
        results.update(benchmark(name)(options))
        if not args.json:
            print(f"#   {time.perf_counter() - started:.1f} s", file=sys.stderr)
    print_results(results, args.json, key_width=36)
    return 0


def card_command(args: argparse.Namespace) -> int:
    from vizvae.checkpoint import resolve_checkpoint, shipped_checkpoints
    from vizvae.train.cards import write_model_card

    targets = [resolve_checkpoint(p) for p in args.paths] or [info.path for info in shipped_checkpoints()]
    for target in targets:
        print(f"card: {write_model_card(target)}")
    return 0


def add_train_parser(sub: Any, argv: list[str]) -> None:
    """The ``train`` command. Its arguments come from ``vizvae.train.commands``, which imports torch
    and every model family (seconds): only a ``train`` command line pays for it, so ``models``,
    ``check`` and ``--help`` start at once."""
    train = sub.add_parser("train", help="train a model and save a checkpoint folder")
    if argv[:1] != ["train"]:
        return
    from vizvae.train.commands import add_train_arguments, train_command

    add_train_arguments(train)
    train.set_defaults(func=train_command)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = argparse.ArgumentParser(prog="python -m vizvae", description="Train, check and list vizvae models.")
    sub = parser.add_subparsers(dest="command", required=True)
    add_train_parser(sub, argv)

    models = sub.add_parser("models", help="list shipped checkpoints and the ones given")
    models.add_argument("paths", nargs="*", help="extra checkpoint folders")
    models.add_argument("--json", action="store_true")
    models.set_defaults(func=models_command)

    check = sub.add_parser("check", help="exit 0 if a checkpoint loads, else print why")
    check.add_argument("path")
    check.add_argument("--max-model-mb", type=int, help="largest model it may build, in MiB (default "
                       "$VIZVAE_MAX_MODEL_MB, else 512)")
    check.set_defaults(func=check_command)

    imported = sub.add_parser("import", help="make a checkpoint of a VAE trained elsewhere: two torch.export programs "
                              "(no code from them runs), or a Python adapter and its weights (trusted code)")
    imported.set_defaults(func=import_command)
    if argv[:1] == ["import"]:
        from vizvae.train.imports import add_import_arguments

        add_import_arguments(imported)

    rebuild = sub.add_parser("rebuild", help="retrain every shipped model in assets/models/ from its seed")
    rebuild.add_argument("--only", nargs="*", help="names of shipped models to rebuild")
    rebuild.add_argument("--out", help="folder to write into (default assets/models)")
    rebuild.add_argument("--device", default="cpu", help="cpu keeps rebuilt weights reproducible")
    rebuild.set_defaults(func=rebuild_command)

    precompute = sub.add_parser("precompute", help="store with shipped models what the app would compute on a first "
                                "visit (projections, Fréchet distances, default posteriors)")
    if argv[:1] == ["precompute"]:
        from vizvae.train.precompute import add_precompute_arguments

        add_precompute_arguments(precompute)

    evaluate = sub.add_parser("evaluate", help="evaluate a shipped model (by name) or a checkpoint folder")
    evaluate.add_argument("model", help="shipped model name or checkpoint folder")
    evaluate.add_argument("--task", default="bounds", help="bounds, ... (see vizvae/evaluation)")
    evaluate.add_argument("--json", action="store_true", help="print one JSON object")
    evaluate.add_argument("--option", "-o", action="append", default=[], metavar="KEY=VALUE",
                          help="task option, e.g. -o rows=200")
    evaluate.add_argument("--device", default="auto")
    evaluate.add_argument("--max-model-mb", type=int, help="largest model it may build, in MiB (default "
                          "$VIZVAE_MAX_MODEL_MB, else 512)")
    evaluate.set_defaults(func=evaluate_command)

    card = sub.add_parser("card", help="rewrite card.md and the stored preview grids (default: every shipped model)")
    card.add_argument("paths", nargs="*", help="shipped model names or checkpoint folders")
    card.set_defaults(func=card_command)

    bench = sub.add_parser("bench", help="run the benchmarks in vizvae/bench/ and bench/ (ratios measured side by side)")
    bench.add_argument("--only", nargs="*",
                       help="benchmark names: acquisition, hmc (vizvae/bench/), app, pages, load (bench/)")
    bench.add_argument("--json", action="store_true", help="print one JSON object")
    bench.add_argument("--device", choices=["cpu", "cuda"], default="cpu",
                       help="cuda: the hmc benchmark adds its GPU figures (hmc_gpu_ms, hmc_gemm_roofline_fraction, "
                       "train_images_per_s); it stops with the reason on a machine without CUDA")
    bench.add_argument("--option", "-o", action="append", default=[], metavar="KEY=VALUE")
    bench.set_defaults(func=bench_command)

    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except VizvaeError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
