"""The shipped models and the exact commands that rebuild them (``python -m vizvae rebuild``).

Every recipe is a ``train`` command line, so a shipped checkpoint is reproducible from its
seed with nothing but the CLI.
"""

from __future__ import annotations

SHIPPED_RECIPES: dict[str, list[str]] = {
    "mnist-vae-2d": ["--model", "vae", "--dataset", "mnist", "--latent-dim", "2", "--steps", "6000", "--seed", "0",
                     "--threads", "1"],
    "mnist-vae-16d": ["--model", "vae", "--dataset", "mnist", "--latent-dim", "16", "--steps", "6000", "--seed", "0",
                      "--threads", "1"],
    "mnist-betavae-16d-b4": ["--model", "vae", "--dataset", "mnist", "--latent-dim", "16", "--beta", "4",
                             "--steps", "6000", "--seed", "0", "--threads", "1"],
    # UG-VAE (thesis Ch. 4, App. A Table A.1 on MNIST: K = 10, dim_z = dim_β = 20, one 256-unit layer), its
    # ML-VAE (K = 1) and β-VAE (β = 10) baselines with the same local architecture, and a UG-VAE trained on
    # batches that are half MNIST, half sklearn digits (domain alignment, §4.3.2). One batch = one group.
    "mnist-ugvae": ["--model", "ugvae", "--dataset", "mnist", "--latent-dim", "20", "--global-dim", "20",
                    "--clusters", "10", "--hidden", "256", "--batch-size", "128", "--steps", "4000", "--seed", "0"],
    "mnist-mlvae": ["--model", "mlvae", "--dataset", "mnist", "--latent-dim", "20", "--global-dim", "20",
                    "--hidden", "256", "--batch-size", "128", "--steps", "4000", "--seed", "0"],
    "mnist-betavae-b10": ["--model", "vae", "--dataset", "mnist", "--latent-dim", "20", "--hidden", "256",
                          "--beta", "10", "--batch-size", "128", "--steps", "4000", "--seed", "0"],
    "mnist-digits-ugvae": ["--model", "ugvae", "--dataset", "mnist+digits", "--latent-dim", "20", "--global-dim", "20",
                           "--clusters", "10", "--hidden", "256", "--batch-size", "128", "--steps", "4000",
                           "--seed", "0"],
    # Thesis Ch. 5 on binarised MNIST with the label as target y, trained under the §5.4 missingness
    # protocol; Tables 5.3–5.5 (`evaluate --task imputation`, written into each card). One 256-unit
    # layer per network. The HMC models start Stage 3 from their Gaussian counterpart's Stage 2
    # (rebuild that one first); Stage 3 is ~60 steps instead of the thesis' 10⁴, so the networks
    # get a gentle learning rate (1e-3 with a fresh Adam state only adds noise in so few steps) and
    # the 2·T·dim step sizes a larger one (1e-2, as the inflation) so that they move at all.
    "mnist-pvae": ["--model", "pvae", "--dataset", "mnist", "--latent-dims", "20", "--steps", "3000",
                   "--seed", "0", "--threads", "1"],
    "mnist-miwae": ["--model", "miwae", "--dataset", "mnist", "--latent-dims", "20", "--importance", "5",
                    "--steps", "3000", "--seed", "0", "--threads", "1"],
    "mnist-hvae": ["--model", "hvae", "--dataset", "mnist", "--latent-dims", "20,10", "--steps", "3000",
                   "--seed", "0", "--threads", "1"],
    "mnist-hmcvae": ["--model", "hmcvae", "--dataset", "mnist", "--init-from", "mnist-pvae", "--hmc-steps", "60",
                     "--hmc-batch-size", "8", "--lr-stage3", "1e-4", "--lr-step-sizes", "1e-2", "--seed", "0",
                     "--threads", "1"],
    "mnist-hhvae": ["--model", "hhvae", "--dataset", "mnist", "--init-from", "mnist-hvae", "--hmc-steps", "60",
                    "--hmc-batch-size", "8", "--lr-stage3", "1e-4", "--lr-step-sizes", "1e-2", "--seed", "0",
                    "--threads", "1"],
    # 2-D latent, both stages in one run, so exact posterior grids are possible in the app
    "mnist-hmcvae-2d": ["--model", "hmcvae", "--dataset", "mnist", "--latent-dims", "2", "--steps", "2500",
                        "--hmc-steps", "40", "--hmc-batch-size", "8", "--lr-stage3", "1e-4", "--lr-step-sizes",
                        "1e-2", "--seed", "0", "--threads", "1"],
    "shapes-vae-b1": ["--model", "vae", "--dataset", "shapes", "--latent-dim", "10", "--beta", "1", "--steps", "4000", "--seed", "0", "--threads", "1"],
    "shapes-betavae-b4": ["--model", "vae", "--dataset", "shapes", "--latent-dim", "10", "--beta", "4", "--steps", "4000", "--seed", "0", "--threads", "1"],
    "shapes-betavae-b10": ["--model", "vae", "--dataset", "shapes", "--latent-dim", "10", "--beta", "10", "--steps", "4000", "--seed", "0", "--threads", "1"],
    # UG-VAE on shapes for the disentanglement comparison (z matches the β-VAEs' 10 dims; K = 3 shapes)
    "shapes-ugvae": ["--model", "ugvae", "--dataset", "shapes", "--latent-dim", "10", "--global-dim", "10",
                     "--clusters", "3", "--hidden", "256", "--batch-size", "128", "--steps", "3000", "--seed", "0",
                     "--threads", "1"],
}

# Shipped files that are not latent-variable models (the picker does not list them); rebuilt by the
# same `python -m vizvae rebuild [--only NAME]`.
AUXILIARY_RECIPES: dict[str, list[str]] = {
    # features for the Fréchet distance (`evaluate --task fd`), in place of Inception
    "mnist-digit-classifier": ["--model", "digit-classifier", "--dataset", "mnist", "--steps", "1500", "--seed", "0"],
}
ALL_RECIPES: dict[str, list[str]] = {**SHIPPED_RECIPES, **AUXILIARY_RECIPES}
