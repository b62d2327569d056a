"""VAE and β-VAE (Kingma & Welling 2014; Higgins et al. 2017).

Gaussian encoder, standard-normal prior, Bernoulli or Gaussian decoder, MLP or CNN. Missing
entries are zero-filled at the encoder input and the mask is concatenated (partial-VAE style),
and they are left out of the likelihood (SPEC §3).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from vizvae.models.base import LatentVariableModel, ModelConfig, register_model
from vizvae.models.distributions import DiagonalGaussian, Likelihood
from vizvae.models.networks import ConvDecoderBody, ConvEncoderBody, LikelihoodHead, mlp

LOGVAR_RANGE = (-12.0, 8.0)  # keeps σ in [2.5e-3, 55]: avoids inf/0 early in training


@dataclass
class VAEConfig(ModelConfig):
    input_shape: tuple[int, ...] = (1, 28, 28)  # (C, H, W) for images, (D,) for tables
    latent_dim: int = 16
    hidden_dims: tuple[int, ...] = (256, 256)
    architecture: str = "mlp"  # "mlp" | "cnn"
    likelihood: str = "bernoulli"  # "bernoulli" | "gaussian"
    sigma_mode: str = "fixed"  # gaussian only: "fixed" | "global" | "learned"
    sigma: float = 0.1 ** 0.5
    beta: float = 1.0
    use_mask: bool = True

    @property
    def n_features(self) -> int:
        n = 1
        for s in self.input_shape:
            n *= s
        return n


class GaussianEncoder(nn.Module):
    """x_O (zero-filled) and the mask -> q(z | x_O) = N(μ, diag σ²)."""

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

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None) -> DiagonalGaussian:
        if mask is not None:
            x = torch.where(mask, x, torch.zeros((), dtype=x.dtype, device=x.device))
        if self.use_mask:
            m = torch.ones_like(x) if mask is None else mask.to(x.dtype)
            # channel-wise concatenation keeps the CNN's image layout: (B, 2C*H*W)
            x = torch.cat([x, m], dim=-1)
        mean, logvar = self.head(self.body(x)).chunk(2, dim=-1)
        std = torch.exp(0.5 * logvar.clamp(*LOGVAR_RANGE))
        return DiagonalGaussian(mean, std)


class Decoder(nn.Module):
    """z -> p(x | z); batched over any leading dimensions of z."""

    def __init__(self, config: VAEConfig, in_dim: int):
        super().__init__()
        is_image = len(config.input_shape) == 3
        self.head = LikelihoodHead(
            config.likelihood, config.n_features, config.sigma_mode, config.sigma,
            mean_activation="sigmoid" if (is_image and config.likelihood == "gaussian") else None,
        )
        n_out = config.n_features * self.head.n_outputs_per_feature
        if config.architecture == "cnn":
            c, h, w = config.input_shape
            self.body: nn.Module = ConvDecoderBody(in_dim, (c, h, w), c * self.head.n_outputs_per_feature,
                                                   hidden=config.hidden_dims[-1])
        else:
            self.body = mlp([in_dim, *reversed(config.hidden_dims), n_out])

    def forward(self, z: torch.Tensor) -> Likelihood:
        lead = z.shape[:-1]
        out = self.body(z.reshape(-1, z.shape[-1]))
        return self.head(out.reshape(*lead, -1))


@register_model
class VAE(LatentVariableModel):
    model_key = "vae"
    config_class = VAEConfig

    def __init__(self, config: VAEConfig):
        super().__init__(config)
        if config.architecture not in ("mlp", "cnn"):
            raise ValueError(f"architecture must be 'mlp' or 'cnn', got {config.architecture!r}")
        if config.architecture == "cnn" and len(config.input_shape) != 3:
            raise ValueError("a CNN needs an image input_shape (C, H, W)")
        self.encoder = GaussianEncoder(config, config.latent_dim)
        self.decoder = Decoder(config, config.latent_dim)

    @property
    def latent_dims(self) -> list[int]:
        return [self.config.latent_dim]

    def encode(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> DiagonalGaussian:
        return self.encoder(x, mask)

    def decode(self, z: torch.Tensor) -> Likelihood:
        return self.decoder(z)
