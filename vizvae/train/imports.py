"""``python -m vizvae import``: a VAE trained elsewhere becomes a vizvae checkpoint folder without
retraining, from two ``torch.export`` programs (no code from them runs: ``models.exported``) or from
a Python adapter and its safetensors weights (trusted code: ``models.adapter``).

    python -m vizvae import --encoder enc.pt2 --decoder dec.pt2 --input-shape 1,28,28 --latent-dim 16 \\
        --likelihood bernoulli --dataset mnist --out runs/theirs
    python -m vizvae import --adapter my_vae.py:build --weights w.safetensors --input-shape 1,28,28 \\
        --latent-dim 16 --dataset mnist --out runs/mine

The encoder maps x (batch, features) to (mean, log_var), each (batch, latent); the decoder maps z
(batch, latent) to Bernoulli logits or a Gaussian mean (batch, features). Both are audited
(``models.exported.audit_pt2``), run once on a zero batch to check those shapes, and copied into
the folder beside a ``model.safetensors`` holding their SHA-256 (the key of every cached result).
An adapter's network may also have ``log_joint(x, z)`` and ``predict(x)``, run once on the zero
batch as well (``models.adapter``).
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

import torch

from typing import Any

from safetensors.torch import load_file

from vizvae.checkpoint import (
    ADAPTER_KEY, CONFIG, EXPORTED_KEY, FORMAT, FORMAT_VERSION, check_out_folder, library_versions, replacing_folder,
    write_weights_and_config,
)
from vizvae.errors import VizvaeError
from vizvae.models.adapter import ADAPTER_FILE, AdapterConfig, AdapterVAE, check_optional_methods, run_adapter
from vizvae.models.exported import PROGRAM_FILES, ExportedConfig, ExportedVAE, ForeignVAE, load_program
from vizvae.paths import file_sha256


def add_import_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--encoder", help="torch.export program: x -> (mean, log_var)")
    parser.add_argument("--decoder", help="torch.export program: z -> logits (bernoulli) or mean (gaussian)")
    parser.add_argument("--adapter", metavar="FILE.py:FUNCTION", help="trusted Python: FUNCTION() returns a "
                        "torch.nn.Module with encode(x) -> (mean, log_var) and decode(z), and optionally "
                        "log_joint(x, z) -> (batch,) and predict(x) -> (batch, targets)")
    parser.add_argument("--weights", help="the adapter network's weights (safetensors)")
    parser.add_argument("--input-shape", required=True, help="one item's shape, e.g. 1,28,28 or 13")
    parser.add_argument("--latent-dim", type=int, required=True)
    parser.add_argument("--likelihood", choices=["bernoulli", "gaussian"], default="bernoulli")
    parser.add_argument("--sigma", type=float, default=0.1 ** 0.5, help="the Gaussian likelihood's fixed σ")
    parser.add_argument("--dataset", required=True, help="the data it models: mnist, shapes, ... or a path")
    parser.add_argument("--name", help="checkpoint name (default: the --out folder's name)")
    parser.add_argument("--out", required=True)
    parser.add_argument("--overwrite", action="store_true")


def import_config(args: argparse.Namespace, **extra: str) -> Any:
    try:
        shape = tuple(int(v) for v in str(args.input_shape).split(","))
    except ValueError:
        raise VizvaeError(f"--input-shape must be whole numbers separated by commas, got {args.input_shape!r}") from None
    if not shape or min(shape) < 1 or args.latent_dim < 1 or not args.sigma > 0:
        raise VizvaeError("--input-shape and --latent-dim must be positive, --sigma above 0")
    cls = AdapterConfig if extra else ExportedConfig
    return cls(input_shape=shape, latent_dim=args.latent_dim, likelihood=args.likelihood, sigma=args.sigma, **extra)


def imported_model(args: argparse.Namespace) -> ForeignVAE:
    """The model the options describe: two programs, or the adapter's network with its weights."""
    if bool(args.adapter) == bool(args.encoder or args.decoder):
        raise VizvaeError("give either --encoder and --decoder (exported programs) or --adapter and --weights")
    if args.adapter:
        file, _, entry = str(args.adapter).rpartition(":") if ":" in str(args.adapter) else (args.adapter, "", "build")
        if not Path(file).is_file():
            raise VizvaeError(f"--adapter {file}: no such file")
        if not args.weights:
            raise VizvaeError("--adapter needs --weights (a safetensors file of its network)")
        config = import_config(args, entry=entry, adapter_sha256=file_sha256(file))
        model = AdapterVAE(config, run_adapter(file, entry))
        try:
            model.net.load_state_dict(load_file(args.weights))
        except Exception as err:  # noqa: BLE001 - a wrong or unreadable file, said in one line
            reason = " ".join(str(err).split())[:200]  # one line
            raise VizvaeError(f"--weights {args.weights}: do not fit the adapter's network ({reason})") from None
        return model
    if not (args.encoder and args.decoder):
        raise VizvaeError("exported programs need both --encoder and --decoder")
    return ExportedVAE(import_config(args), load_program(args.encoder), load_program(args.decoder))


def checked_model(args: argparse.Namespace) -> ForeignVAE:
    """The imported model, after one zero batch has shown it fits the shapes given."""
    model = imported_model(args)
    features, latent = model.config.n_features, args.latent_dim
    try:
        with torch.no_grad():
            posterior = model.encode(torch.zeros(2, features))
            decoded = model.decode(torch.zeros(2, latent)).mean
            if isinstance(model, AdapterVAE):
                check_optional_methods(model, features, latent)
    except VizvaeError:
        raise
    except Exception as err:  # noqa: BLE001 - a network that does not fit fails in its own way
        raise VizvaeError(f"the model does not run on a batch of {features}-value items and {latent}-D codes "
                          f"({type(err).__name__}: {str(err)[:160]})") from None
    if tuple(posterior.mean.shape) != (2, latent) or tuple(decoded.shape) != (2, features):
        raise VizvaeError(f"the encoder gives means of shape {tuple(posterior.mean.shape)[1:]} and the decoder "
                          f"{tuple(decoded.shape)[1:]}; expected ({latent},) and ({features},)")
    return model


def import_command(args: argparse.Namespace) -> int:
    from vizvae.data import load_dataset

    try:
        check_out_folder(args.out, overwrite=args.overwrite)
        model = checked_model(args)
        dataset = load_dataset(args.dataset, **({"binarize": True} if args.likelihood == "bernoulli" else {}))
        if dataset.n_features != model.config.n_features:
            raise VizvaeError(f"--dataset {args.dataset} has items of {dataset.n_features} values; the model takes "
                              f"{model.config.n_features} (--input-shape {args.input_shape})")
    except VizvaeError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    out = Path(args.out)
    if isinstance(model, AdapterVAE):
        state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
        sources = {args.adapter.rpartition(":")[0] if ":" in args.adapter else args.adapter: ADAPTER_FILE}
        key = ADAPTER_KEY
    else:
        digests = [bytes.fromhex(file_sha256(path)) for path in (args.encoder, args.decoder)]
        state = {"anchor": torch.zeros(()), "program_sha256": torch.tensor([list(d) for d in digests], dtype=torch.uint8)}
        sources = dict(zip((args.encoder, args.decoder), PROGRAM_FILES))
        key = EXPORTED_KEY
    config = {"format": FORMAT, "format_version": FORMAT_VERSION, "name": args.name or out.name,
              "model": key, "model_class": type(model).__name__, "latent_dims": model.latent_dims,
              "architecture": model.describe(), "config": model.config.to_json(), "dataset": dataset.describe(),
              "training": {"imported": {Path(source).name: name for source, name in sources.items()}},
              "evaluation": {}, "versions": library_versions()}
    with replacing_folder(out, overwrite=args.overwrite) as staging:
        for source, name in sources.items():
            shutil.copyfile(source, staging / name)
        write_weights_and_config(staging, state, {"format": FORMAT, "model": key}, config)
        from vizvae.train.cards import write_model_card

        write_model_card(staging, trust_code=True)  # the card and its preview grids, as a trained model has
    print(f"imported {model.latent_dim}-D {args.likelihood} VAE as {out} ({CONFIG}, {', '.join(sources.values())})",
          file=sys.stderr)
    return 0
