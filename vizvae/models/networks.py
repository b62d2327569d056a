"""Encoder/decoder bodies (MLP and CNN) and the decoder's likelihood head.

Inputs are always flat, (batch, features); a CNN reshapes to its image internally, so every
model, loss and estimator sees the same shapes whatever the architecture.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import nn

from vizvae.models.distributions import BernoulliLikelihood, GaussianLikelihood, Likelihood


def mlp(sizes: Sequence[int], activation: type[nn.Module] = nn.ReLU, final_activation: bool = False) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2 or final_activation:
            layers.append(activation())
    return nn.Sequential(*layers)


class ConvEncoderBody(nn.Module):
    """(batch, C*H*W) -> (batch, out_features) via two stride-2 convolutions and a linear layer."""

    def __init__(self, image_shape: Sequence[int], out_features: int, channels: Sequence[int] = (32, 64)):
        super().__init__()
        c, h, w = image_shape
        self.image_shape = (c, h, w)
        convs: list[nn.Module] = []
        for cin, cout in zip((c, *channels[:-1]), channels):
            convs += [nn.Conv2d(cin, cout, 4, stride=2, padding=1), nn.ReLU()]
        self.convs = nn.Sequential(*convs)
        with torch.no_grad():
            n_flat = self.convs(torch.zeros(1, c, h, w)).numel()
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(n_flat, out_features), nn.ReLU())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.convs(x.reshape(-1, *self.image_shape)))


class ConvDecoderBody(nn.Module):
    """(batch, latent) -> (batch, out_channels*H*W) via a linear layer and two transposed
    convolutions; the output is cropped to H x W, so any image size works."""

    def __init__(self, in_features: int, image_shape: Sequence[int], out_channels: int, hidden: int = 256,
                 channels: Sequence[int] = (64, 32)):
        super().__init__()
        _, h, w = image_shape
        self.out_hw = (h, w)
        self.out_channels = out_channels
        self.start = (channels[0], math.ceil(h / 4), math.ceil(w / 4))
        self.fc = nn.Sequential(nn.Linear(in_features, hidden), nn.ReLU(), nn.Linear(hidden, math.prod(self.start)), nn.ReLU())
        self.deconvs = nn.Sequential(
            nn.ConvTranspose2d(channels[0], channels[1], 4, stride=2, padding=1), nn.ReLU(),
            nn.ConvTranspose2d(channels[1], out_channels, 4, stride=2, padding=1),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h, w = self.out_hw
        out = self.deconvs(self.fc(z).reshape(-1, *self.start))[:, :, :h, :w]
        return out.reshape(len(z), -1)


class LikelihoodHead(nn.Module):
    """Turns decoder outputs into p(x | z).

    ``bernoulli``: logits. ``gaussian`` with ``sigma_mode``:
    ``fixed`` (σ given, thesis §5.4.1 uses variance 0.1), ``global`` (one learned σ shared by all
    entries), ``learned`` (σ(z) from the decoder, floored at ``min_sigma`` because a free σ(z)
    can collapse onto the data; Berger Ch. 7).
    """

    def __init__(self, likelihood: str, n_features: int, sigma_mode: str = "fixed", sigma: float = 0.1 ** 0.5,
                 min_sigma: float = 1e-2, mean_activation: str | None = None):
        super().__init__()
        if likelihood not in ("bernoulli", "gaussian"):
            raise ValueError(f"likelihood must be 'bernoulli' or 'gaussian', got {likelihood!r}")
        if sigma_mode not in ("fixed", "global", "learned"):
            raise ValueError(f"sigma_mode must be 'fixed', 'global' or 'learned', got {sigma_mode!r}")
        self.likelihood = likelihood
        self.sigma_mode = sigma_mode
        self.n_features = n_features
        self.log_min_sigma = math.log(min_sigma)
        self.mean_activation = mean_activation
        if likelihood == "gaussian" and sigma_mode == "global":
            self.log_sigma = nn.Parameter(torch.tensor(math.log(sigma)))
        else:
            self.register_buffer("log_sigma", torch.tensor(math.log(sigma)))

    @property
    def n_outputs_per_feature(self) -> int:
        return 2 if (self.likelihood == "gaussian" and self.sigma_mode == "learned") else 1

    def forward(self, out: torch.Tensor) -> Likelihood:
        if self.likelihood == "bernoulli":
            return BernoulliLikelihood(out)
        if self.sigma_mode == "learned":
            mean, raw = out.split(self.n_features, dim=-1)
            log_std = self.log_min_sigma + nn.functional.softplus(raw - self.log_min_sigma)
        else:
            mean = out
            log_std = self.log_sigma.clamp_min(self.log_min_sigma).expand_as(mean)
        if self.mean_activation == "sigmoid":
            mean = torch.sigmoid(mean)
        return GaussianLikelihood(mean, log_std)
