"""``python -m vizvae import``: a VAE trained elsewhere, brought as two ``torch.export`` programs,
becomes a vizvae checkpoint folder without retraining and without running any code from the files.

    python -m vizvae import --encoder enc.pt2 --decoder dec.pt2 --input-shape 1,28,28 --latent-dim 16 \\
        --likelihood bernoulli --dataset mnist --out runs/theirs

The encoder maps x (batch, features) to (mean, log_var), each (batch, latent); the decoder maps z
(batch, latent) to Bernoulli logits or a Gaussian mean (batch, features). Both are audited
(``models.exported.audit_pt2``), run once on a zero batch to check those shapes, and copied into
the folder beside a ``model.safetensors`` holding their SHA-256 (the key of every cached result).
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

import torch

from vizvae.checkpoint import (
    CONFIG, EXPORTED_KEY, FORMAT, FORMAT_VERSION, check_out_folder, library_versions, replacing_folder,
    write_weights_and_config,
)
from vizvae.errors import VizvaeError
from vizvae.models.exported import PROGRAM_FILES, ExportedConfig, ExportedVAE, load_program, program_sha256


def add_import_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--encoder", required=True, help="torch.export program: x -> (mean, log_var)")
    parser.add_argument("--decoder", required=True, help="torch.export program: z -> logits (bernoulli) or mean (gaussian)")
    parser.add_argument("--input-shape", required=True, help="one item's shape, e.g. 1,28,28 or 13")
    parser.add_argument("--latent-dim", type=int, required=True)
    parser.add_argument("--likelihood", choices=["bernoulli", "gaussian"], default="bernoulli")
    parser.add_argument("--sigma", type=float, default=0.1 ** 0.5, help="the Gaussian likelihood's fixed σ")
    parser.add_argument("--dataset", required=True, help="the data it models: mnist, shapes, ... or a path")
    parser.add_argument("--name", help="checkpoint name (default: the --out folder's name)")
    parser.add_argument("--out", required=True)
    parser.add_argument("--overwrite", action="store_true")


def checked_model(args: argparse.Namespace) -> ExportedVAE:
    """The two programs as a model, after one zero batch has shown they fit the shapes given."""
    try:
        shape = tuple(int(v) for v in str(args.input_shape).split(","))
    except ValueError:
        raise VizvaeError(f"--input-shape must be whole numbers separated by commas, got {args.input_shape!r}") from None
    if not shape or min(shape) < 1 or args.latent_dim < 1 or not args.sigma > 0:
        raise VizvaeError("--input-shape and --latent-dim must be positive, --sigma above 0")
    config = ExportedConfig(input_shape=shape, latent_dim=args.latent_dim, likelihood=args.likelihood,
                            sigma=args.sigma)
    model = ExportedVAE(config, load_program(args.encoder), load_program(args.decoder))
    features = int(torch.tensor(shape).prod())
    try:
        with torch.no_grad():
            posterior = model.encode(torch.zeros(2, features))
            decoded = model.decode(torch.zeros(2, args.latent_dim)).mean
    except Exception as err:  # noqa: BLE001 - a program that does not fit fails in its own way
        raise VizvaeError(f"the programs do not run on a batch of {features}-value items and {args.latent_dim}-D "
                          f"codes ({type(err).__name__}: {str(err)[:160]})") from None
    if tuple(posterior.mean.shape) != (2, args.latent_dim) or tuple(decoded.shape) != (2, features):
        raise VizvaeError(f"the encoder gives means of shape {tuple(posterior.mean.shape)[1:]} and the decoder "
                          f"{tuple(decoded.shape)[1:]}; expected ({args.latent_dim},) and ({features},)")
    return model


def import_command(args: argparse.Namespace) -> int:
    from vizvae.data import load_dataset

    try:
        check_out_folder(args.out, overwrite=args.overwrite)
        model = checked_model(args)
        dataset = load_dataset(args.dataset, **({"binarize": True} if args.likelihood == "bernoulli" else {}))
    except VizvaeError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    out = Path(args.out)
    digests = [bytes.fromhex(program_sha256(path)) for path in (args.encoder, args.decoder)]
    state = {"anchor": torch.zeros(()), "program_sha256": torch.tensor([list(d) for d in digests], dtype=torch.uint8)}
    config = {"format": FORMAT, "format_version": FORMAT_VERSION, "name": args.name or out.name,
              "model": EXPORTED_KEY, "model_class": type(model).__name__, "latent_dims": model.latent_dims,
              "architecture": model.describe(), "config": model.config.to_json(), "dataset": dataset.describe(),
              "training": {"imported": {"encoder": Path(args.encoder).name, "decoder": Path(args.decoder).name}},
              "evaluation": {}, "versions": library_versions()}
    with replacing_folder(out, overwrite=args.overwrite) as staging:
        for source, name in zip((args.encoder, args.decoder), PROGRAM_FILES):
            shutil.copyfile(source, staging / name)
        write_weights_and_config(staging, state, {"format": FORMAT, "model": EXPORTED_KEY}, config)
    print(f"imported {model.latent_dim}-D {args.likelihood} VAE as {out} ({CONFIG}, {', '.join(PROGRAM_FILES)})",
          file=sys.stderr)
    return 0
