"""The shipped models and the exact commands that rebuild them (``python -m vizvae rebuild``).

Every recipe is a ``train`` command line, so a shipped checkpoint is reproducible from its
seed with nothing but the CLI.
"""

from __future__ import annotations

SHIPPED_RECIPES: dict[str, list[str]] = {
    "mnist-vae-2d": ["--model", "vae", "--dataset", "mnist", "--latent-dim", "2", "--steps", "6000", "--seed", "0"],
    "mnist-vae-16d": ["--model", "vae", "--dataset", "mnist", "--latent-dim", "16", "--steps", "6000", "--seed", "0"],
    "mnist-betavae-16d-b4": ["--model", "vae", "--dataset", "mnist", "--latent-dim", "16", "--beta", "4",
                             "--steps", "6000", "--seed", "0"],
}
