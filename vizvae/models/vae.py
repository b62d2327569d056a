"""The parts of the plain VAE and β-VAE (Kingma & Welling 2014; Higgins et al. 2017), and the one
decoder every per-row model shares.

The VAE itself is a combination of parts (``vizvae.models.families.VAE``): the Gaussian encoder
below (MLP or CNN), no latent transform, the ``Decoder``, a standard-normal prior, no predictor and
the encoder as its posterior sampler. Missing entries are zero-filled at the encoder input and the
mask is concatenated (partial-VAE style), and they are left out of the likelihood (SPEC §3).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
from torch import nn

from vizvae.models.base import DataConfig
from vizvae.models.distributions import DiagonalGaussian, Likelihood, gaussian_from_logvar
from vizvae.models.networks import ConvDecoderBody, ConvEncoderBody, LikelihoodHead, mlp

ARCHITECTURES = ("mlp", "cnn")


@dataclass
class VAEConfig(DataConfig):
    latent_dim: int = 16
    hidden_dims: tuple[int, ...] = (256, 256)
    architecture: str = "mlp"  # "mlp" | "cnn"
    likelihood: str = "bernoulli"  # "bernoulli" | "gaussian"
    sigma_mode: str = "fixed"  # gaussian only: "fixed" | "global" | "learned"
    sigma: float = 0.1 ** 0.5
    beta: float = 1.0  # the KL weight of the loss (β-VAE when > 1)
    use_mask: bool = True

    # -- what the composed model reads (not fields: the saved config keeps the fields above) -----------
    @property
    def latent_dims(self) -> tuple[int, ...]:
        """One latent layer."""
        return (self.latent_dim,)

    @property
    def decoder_hidden(self) -> tuple[int, ...]:
        """The decoder mirrors the encoder, latent side first."""
        return tuple(reversed(self.hidden_dims))


class GaussianEncoder(nn.Module):
    """x_O (zero-filled) and the mask -> q(z | x_O) = N(μ, diag σ²), by an MLP or a CNN."""

    def __init__(self, config: VAEConfig, out_dim: int):
        super().__init__()
        self.use_mask = config.use_mask
        n_in = config.n_features * (2 if config.use_mask else 1)
        if config.architecture == "cnn":
            c, h, w = config.input_shape
            self.body: nn.Module = ConvEncoderBody((c * (2 if config.use_mask else 1), h, w), config.hidden_dims[-1])
        else:
            self.body = mlp([n_in, *config.hidden_dims], final_activation=True)
        self.head = nn.Linear(config.hidden_dims[-1], 2 * out_dim)

    @classmethod
    def from_config(cls, config: VAEConfig) -> "GaussianEncoder":
        if config.architecture not in ARCHITECTURES:
            raise ValueError(f"architecture must be 'mlp' or 'cnn', got {config.architecture!r}")
        if config.architecture == "cnn" and len(config.input_shape) != 3:
            raise ValueError("a CNN needs an image input_shape (C, H, W)")
        return cls(config, config.latent_dim)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None, y: torch.Tensor | None = None,
                y_mask: torch.Tensor | None = None) -> DiagonalGaussian:
        """q(z | x_O): (batch, latent). A VAE has no target, so ``y`` is not an input."""
        if mask is not None:
            x = torch.where(mask, x, torch.zeros((), dtype=x.dtype, device=x.device))
        if self.use_mask:
            m = torch.ones_like(x) if mask is None else mask.to(x.dtype)
            # channel-wise concatenation keeps the CNN's image layout: (B, 2C*H*W)
            x = torch.cat([x, m], dim=-1)
        mean, logvar = self.head(self.body(x)).chunk(2, dim=-1)
        return gaussian_from_logvar(mean, logvar)


class IdentityTransform(nn.Module):
    """The latent transform of a one-layer VAE: the decoder sees z itself."""

    @classmethod
    def from_config(cls, config: DataConfig) -> "IdentityTransform":
        return cls()

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return z


class Decoder(nn.Module):
    """z -> p(x | z); batched over any leading dimensions of z. ``hidden_dims`` run from the latent
    side to the data side; a CNN uses the first as the width of its linear layer."""

    def __init__(self, input_shape: Sequence[int], in_dim: int, hidden_dims: Sequence[int], likelihood: str,
                 sigma_mode: str = "fixed", sigma: float = 0.1 ** 0.5, architecture: str = "mlp"):
        super().__init__()
        is_image = len(input_shape) == 3
        n_features = DataConfig(tuple(input_shape)).n_features
        self.head = LikelihoodHead(
            likelihood, n_features, sigma_mode, sigma,
            mean_activation="sigmoid" if (is_image and likelihood == "gaussian") else None,
        )
        n_out = n_features * self.head.n_outputs_per_feature
        if architecture == "cnn":
            c, h, w = input_shape
            self.body: nn.Module = ConvDecoderBody(in_dim, (c, h, w), c * self.head.n_outputs_per_feature,
                                                   hidden=hidden_dims[0])
        else:
            self.body = mlp([in_dim, *hidden_dims, n_out])

    def forward(self, z: torch.Tensor) -> Likelihood:
        lead = z.shape[:-1]
        out = self.body(z.reshape(-1, z.shape[-1]))
        return self.head(out.reshape(*lead, -1))
