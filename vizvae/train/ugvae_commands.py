"""CLI glue for UG-VAE and its baselines (thesis Ch. 4) and for the digit classifier behind the
Fréchet distance. ``commands.py`` registers these in ``MODEL_BUILDERS`` / ``MODEL_TRAINERS``.

    python -m vizvae train --model ugvae --dataset mnist --clusters 10 --global-dim 20 --latent-dim 20 \
        --hidden 256 --batch-size 128 --out runs/ugvae          # one batch = one group
    python -m vizvae train --model mlvae ...                    # K = 1
    python -m vizvae train --model gmvae ...                    # no global variable
    python -m vizvae train --model ugvae --dataset mnist+digits ...   # half of every batch per domain
"""

from __future__ import annotations

import argparse

from vizvae.data import Dataset
from vizvae.models.base import LatentVariableModel

GROUP_MODELS = ("ugvae", "mlvae", "gmvae")


def add_ugvae_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("UG-VAE, ML-VAE, GMVAE (one batch = one group)")
    group.add_argument("--clusters", type=int, default=10, help="K, clusters of the local mixture prior "
                       "(ugvae, gmvae; mlvae has 1)")
    group.add_argument("--global-dim", type=int, default=20, help="dimension of the global β (ugvae, mlvae; "
                       "gmvae has none)")


def build_group_model(args: argparse.Namespace, dataset: Dataset) -> LatentVariableModel:
    from vizvae.models.ugvae import GMVAE, MLVAE, UGVAE, UGVAEConfig

    if dataset.kind != "image":
        raise SystemExit(f"error: --model {args.model} is built for images; {dataset.name} is a table")
    cls = {"ugvae": UGVAE, "mlvae": MLVAE, "gmvae": GMVAE}[args.model]
    config = UGVAEConfig(
        input_shape=tuple(dataset.image_shape),
        latent_dim=args.latent_dim,
        global_dim=0 if args.model == "gmvae" else args.global_dim,
        clusters=1 if args.model == "mlvae" else args.clusters,
        hidden_dim=int((args.hidden or "256").split(",")[0]),
        likelihood=args.likelihood or "bernoulli",
        sigma_mode=args.sigma_mode,
        sigma=args.sigma,
        group_size=args.batch_size,
    )
    return cls(config)


def build_digit_classifier(args: argparse.Namespace, dataset: Dataset):
    from vizvae.evaluation.classifier import ClassifierConfig, DigitClassifier

    return DigitClassifier(ClassifierConfig(image_shape=tuple(dataset.image_shape)))


def train_digit_classifier_command(args: argparse.Namespace) -> int:
    from vizvae.evaluation.classifier import train_classifier_command

    return train_classifier_command(args)
