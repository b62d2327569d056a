"""The ε-space hierarchy (thesis §5.2.3–5.2.6): the configs and the two parts that make a latent model's
latent space ε-space, of which the per-row families with a predictor (pvae, hvae, miwae, hmcvae, hhvae;
``vizvae.models.families``) are combinations.

Generative model, L layers, each with a standard-normal noise variable ε_l (H-VAE, eqs 5.5–5.7):

    h_L = ε_L,    h_l = f_μl(h_{l+1}) + f_σl(h_{l+1}) ⊙ ε_l   (eq. 5.5),
    x ~ p(x | h_1),    y ~ p(y | x̂, h_1),

where x̂ is x_O completed by the decoder mean. Inference is over ε = (ε_1, ..., ε_L), concatenated
in that order into one latent vector (so the model has the shared interface: ``encode`` gives one
diagonal Gaussian over all of ε, ``decode(ε)`` the likelihood of x). In ε-space the prior is
N(0, I) and the posterior is smooth enough for HMC; over h it would make HMC diverge (App. B.1.2).

Bottom-up encoder: r_0 = (x_O zero-filled, mask, y_O zero-filled, its mask), r_l = f_r(r_{l-1}),
q(ε_l | x_O, y_O) = N(g_μl(r_l), g_σl(r_l)), independent across layers, so the KL of eq. (5.6) is a
sum of analytic per-layer KLs.

The parts here: the encoder ``BottomUpEncoder`` and the latent transform ``TopDownTransform`` (the
identity at L = 1). The decoder, prior, predictor and posterior sampler are the composed model's
(``vizvae.models.composed``). With L = 1 and the encoder sampler the model is a one-layer VAE with a
predictor that takes masks for x and y: ``PartialVAE`` (key ``pvae``), the thesis' "VAE" of Tables 5.3–5.5.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from vizvae.models.base import DataConfig
from vizvae.models.distributions import DiagonalGaussian, gaussian_from_logvar
from vizvae.models.networks import mlp
from vizvae.models.predictor import TARGET_KINDS, Predictor, target_features

SIGMA_FLOOR = 1e-3  # keeps f_σ(h) > 0 so h_1 stays a function of every ε_l
SOFTPLUS_INVERSE_OF_ONE = math.log(math.expm1(1.0 - SIGMA_FLOOR))  # softplus(b) = 1 − floor, so softplus(b) + floor = 1


@dataclass
class HierarchicalVAEConfig(DataConfig):
    latent_dims: tuple[int, ...] = (20, 10)  # d_1 (next to x), ..., d_L (top)
    hidden_dims: tuple[int, ...] = (256,)  # encoder body r_0 -> r_1; r_l -> r_{l+1} keep the last width
    decoder_hidden_dims: tuple[int, ...] | None = None  # None: reversed hidden_dims
    transform_hidden: int = 256  # f_μl, f_σl of eq. (5.5)
    predictor_hidden_dims: tuple[int, ...] = (256,)
    likelihood: str = "bernoulli"  # "bernoulli" | "gaussian"
    sigma_mode: str = "fixed"
    sigma: float = 0.1 ** 0.5
    target: str | None = "categorical"  # "categorical" | "gaussian" | None (no predictor)
    n_classes: int = 10
    target_sigma: float = 0.1 ** 0.5
    beta: float = 1.0
    architecture: str = "mlp"  # the only one so far

    @property
    def decoder_hidden(self) -> tuple[int, ...]:
        """The decoder's hidden widths, from h_1's side."""
        return tuple(reversed(self.hidden_dims)) if self.decoder_hidden_dims is None else tuple(self.decoder_hidden_dims)

    @property
    def target_width(self) -> int:
        """Columns the target adds to the encoder input: its value (one-hot for a label) and its mask."""
        return 0 if self.target is None else (self.n_classes if self.target == "categorical" else 1) + 1


@dataclass
class PartialVAEConfig(HierarchicalVAEConfig):
    latent_dims: tuple[int, ...] = (20,)


@dataclass
class MIWAEConfig(PartialVAEConfig):
    n_importance: int = 5  # K of the training bound


@dataclass
class HHVAEConfig(HierarchicalVAEConfig):
    n_transitions: int = 10  # T
    n_leapfrog: int = 5  # LF
    step_size_low: float = 0.02  # φ ~ U(low, high) at initialisation (authors' code)
    step_size_high: float = 0.05
    initial_inflation: float = 1.0
    sksd_chains: int = 30  # chains per data point in Stage 3 (§5.4.1)
    hmc_seed: int = 0  # seeds the initial step sizes only, so the networks' init matches the Gaussian model's


@dataclass
class HMCVAEConfig(HHVAEConfig):
    latent_dims: tuple[int, ...] = (20,)


class BottomUpEncoder(nn.Module):
    """r_0 -> r_1 -> ... -> r_L and one Gaussian head per layer: q(ε | x_O, y_O) over all of ε."""

    def __init__(self, n_inputs: int, latent_dims: Sequence[int], hidden_dims: Sequence[int],
                 target: str | None = None, n_classes: int = 10):
        super().__init__()
        width = hidden_dims[-1]
        self.target, self.n_classes = target, n_classes  # how y_O enters r_0 (None: it does not)
        self.first = mlp([n_inputs, *hidden_dims], final_activation=True)  # r_1 = f_r(r_0)
        self.up = nn.ModuleList(nn.Sequential(nn.Linear(width, width), nn.ReLU()) for _ in latent_dims[1:])
        self.heads = nn.ModuleList(nn.Linear(width, 2 * d) for d in latent_dims)  # g_μl, g_σl

    @classmethod
    def from_config(cls, config: HierarchicalVAEConfig) -> "BottomUpEncoder":
        if not config.latent_dims:
            raise ValueError("latent_dims needs at least one layer")
        if config.architecture != "mlp":
            raise ValueError(f"the ε-space encoder is an MLP only, got architecture {config.architecture!r}")
        if config.target is not None and config.target not in TARGET_KINDS:
            raise ValueError(f"target must be one of {TARGET_KINDS} or None, got {config.target!r}")
        return cls(2 * config.n_features + config.target_width, config.latent_dims, config.hidden_dims,
                   config.target, config.n_classes)

    def inputs(self, x: torch.Tensor, mask: torch.Tensor | None, y: torch.Tensor | None = None,
               y_mask: torch.Tensor | None = None) -> torch.Tensor:
        """r_0 = [x_O zero-filled, mask, y_O zero-filled, y mask]: (batch, 2·features + target width)."""
        observed = torch.ones_like(x, dtype=torch.bool) if mask is None else mask
        x_filled = torch.where(observed, x, torch.zeros((), dtype=x.dtype, device=x.device))
        parts = [x_filled, observed.to(x.dtype)]
        if self.target is not None:
            parts.append(target_features(y, y_mask, len(x), self.target, self.n_classes, x))
        return torch.cat(parts, dim=-1)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None, y: torch.Tensor | None = None,
                y_mask: torch.Tensor | None = None) -> DiagonalGaussian:
        """q(ε | x_O, y_O) over the concatenated ε: (batch, Σ d_l)."""
        r = self.first(self.inputs(x, mask, y, y_mask))
        means, stds = [], []
        for layer, head in enumerate(self.heads):
            if layer > 0:
                r = self.up[layer - 1](r)  # r_l = f_r(r_{l-1})
            layer = gaussian_from_logvar(*head(r).chunk(2, dim=-1))
            means.append(layer.mean)
            stds.append(layer.std)
        return DiagonalGaussian(torch.cat(means, dim=-1), torch.cat(stds, dim=-1))


class TopDownTransform(nn.Module):
    """ε -> h_1 by eq. (5.5): h_L = ε_L, h_l = f_μl(h_{l+1}) + f_σl(h_{l+1}) ⊙ ε_l."""

    def __init__(self, latent_dims: Sequence[int], hidden: int):
        super().__init__()
        self.latent_dims = list(latent_dims)
        # nets[l] maps h_{l+1} (layer l+1, 0-based) to [f_μ, f_σ pre-activation] of layer l
        self.nets = nn.ModuleList(
            mlp([latent_dims[l + 1], hidden, 2 * latent_dims[l]]) for l in range(len(latent_dims) - 1)
        )
        # Start at the identity, h_l = ε_l (f_μ = 0, f_σ = 1): the model begins as a one-layer VAE
        # and learns to use the upper layers. From a random start the mean-field q over ε routed
        # most information through f_μ(h_2) on MNIST [20, 10] (KL 3 of 12 nats in the bottom layer).
        for net in self.nets:
            last = net[-1]
            nn.init.zeros_(last.weight)
            with torch.no_grad():
                last.bias.zero_()
                last.bias[last.bias.shape[0] // 2:].fill_(SOFTPLUS_INVERSE_OF_ONE)

    @classmethod
    def from_config(cls, config: HierarchicalVAEConfig) -> "TopDownTransform":
        return cls(config.latent_dims, config.transform_hidden)

    def forward(self, eps: torch.Tensor) -> torch.Tensor:
        """``eps`` (..., Σ d_l) -> h_1 (..., d_1)."""
        return self.hidden_layers(eps)[0]

    def hidden_layers(self, eps: torch.Tensor) -> list[torch.Tensor]:
        """[h_1, ..., h_L], each (..., d_l)."""
        layers = list(eps.split(self.latent_dims, dim=-1))
        h = layers[-1]
        hs = [h]
        for l in range(len(layers) - 2, -1, -1):
            mean, raw_scale = self.nets[l](h).chunk(2, dim=-1)
            h = mean + (F.softplus(raw_scale) + SIGMA_FLOOR) * layers[l]
            hs.append(h)
        return hs[::-1]


def predictor_part(config: HierarchicalVAEConfig) -> Predictor | None:
    """The predictor p(y | x̂, h_1) the config names, or None (``target=None``)."""
    if config.target is None:
        return None
    return Predictor(config.n_features, config.latent_dims[0], config.predictor_hidden_dims, config.target,
                     config.n_classes, config.target_sigma)
