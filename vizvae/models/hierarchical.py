"""Hierarchical VAE in ε-space (H-VAE, thesis §5.2.4, eqs 5.5–5.7), with the predictor of §5.2.3.

Generative model, L layers, each with a standard-normal noise variable ε_l:

    h_L = ε_L,    h_l = f_μl(h_{l+1}) + f_σl(h_{l+1}) ⊙ ε_l   (eq. 5.5),
    x ~ p(x | h_1),    y ~ p(y | x̂, h_1),

where x̂ is x_O completed by the decoder mean. Inference is over ε = (ε_1, ..., ε_L), concatenated
in that order into one latent vector (so the model has the shared interface: ``encode`` gives one
diagonal Gaussian over all of ε, ``decode(ε)`` the likelihood of x). In ε-space the prior is
N(0, I) and the posterior is smooth enough for HMC; over h it would make HMC diverge (App. B.1.2).

Bottom-up encoder: r_0 = (x_O zero-filled, mask, y_O zero-filled, its mask), r_l = f_r(r_{l-1}),
q(ε_l | x_O, y_O) = N(g_μl(r_l), g_σl(r_l)), independent across layers, so the KL of eq. (5.6) is a
sum of analytic per-layer KLs.

With L = 1 the transform is the identity (h_1 = ε_1) and the model is a one-layer VAE with a
predictor that takes masks for x and y: ``PartialVAE`` (key ``pvae``), the thesis' "VAE" of
Tables 5.3–5.5.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from vizvae.inference.hmc import layer_slices_from_sizes
from vizvae.models.base import LatentVariableModel, ModelConfig, ModelOutput, register_model
from vizvae.models.distributions import DiagonalGaussian, Likelihood, masked_sum
from vizvae.models.networks import mlp
from vizvae.models.predictor import TARGET_KINDS, Predictor, target_features
from vizvae.models.vae import LOGVAR_RANGE, Decoder, VAEConfig

SIGMA_FLOOR = 1e-3  # keeps f_σ(h) > 0 so h_1 stays a function of every ε_l
SOFTPLUS_INVERSE_OF_ONE = math.log(math.e - 1.0 - SIGMA_FLOOR)  # softplus(b) + floor = 1


@dataclass
class HierarchicalVAEConfig(ModelConfig):
    input_shape: tuple[int, ...] = (1, 28, 28)  # (C, H, W) for images, (D,) for tables
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
    def n_features(self) -> int:
        n = 1
        for s in self.input_shape:
            n *= s
        return n


class PosteriorDraws(NamedTuple):
    """Draws a model's own sampler makes from p(ε | x_O, y_O): ``samples`` (batch, k, latent) and
    ``log_weights`` (batch, k), self-normalised importance weights, or None for equal weights."""

    samples: torch.Tensor
    log_weights: torch.Tensor | None = None


class BottomUpEncoder(nn.Module):
    """r_0 -> r_1 -> ... -> r_L and one Gaussian head per layer: q(ε | x_O, y_O) over all of ε."""

    def __init__(self, n_inputs: int, latent_dims: Sequence[int], hidden_dims: Sequence[int]):
        super().__init__()
        width = hidden_dims[-1]
        self.first = mlp([n_inputs, *hidden_dims], final_activation=True)  # r_1 = f_r(r_0)
        self.up = nn.ModuleList(nn.Sequential(nn.Linear(width, width), nn.ReLU()) for _ in latent_dims[1:])
        self.heads = nn.ModuleList(nn.Linear(width, 2 * d) for d in latent_dims)  # g_μl, g_σl

    def forward(self, r0: torch.Tensor) -> DiagonalGaussian:
        r = self.first(r0)
        means, stds = [], []
        for layer, head in enumerate(self.heads):
            if layer > 0:
                r = self.up[layer - 1](r)  # r_l = f_r(r_{l-1})
            mean, logvar = head(r).chunk(2, dim=-1)
            means.append(mean)
            stds.append(torch.exp(0.5 * logvar.clamp(*LOGVAR_RANGE)))
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


@register_model
class HierarchicalVAE(LatentVariableModel):
    """H-VAE in ε-space with a predictor (key ``hvae``); see the module docstring."""

    model_key = "hvae"
    config_class = HierarchicalVAEConfig

    def __init__(self, config: HierarchicalVAEConfig):
        super().__init__(config)
        if not config.latent_dims:
            raise ValueError("latent_dims needs at least one layer")
        if config.architecture != "mlp":
            raise ValueError(f"{type(self).__name__} has an MLP architecture only, got {config.architecture!r}")
        if config.target is not None and config.target not in TARGET_KINDS:
            raise ValueError(f"target must be one of {TARGET_KINDS} or None, got {config.target!r}")
        n = config.n_features
        self.target_width = 0 if config.target is None else (
            (config.n_classes if config.target == "categorical" else 1) + 1)
        self.encoder = BottomUpEncoder(2 * n + self.target_width, config.latent_dims, config.hidden_dims)
        self.transform = TopDownTransform(config.latent_dims, config.transform_hidden)
        decoder_hidden = config.decoder_hidden_dims
        decoder_hidden = tuple(reversed(config.hidden_dims)) if decoder_hidden is None else tuple(decoder_hidden)
        # the one-layer VAE's Decoder, fed h_1; its MLP reverses hidden_dims, so reverse them back
        self.decoder = Decoder(VAEConfig(input_shape=tuple(config.input_shape), hidden_dims=tuple(reversed(decoder_hidden)),
                                         likelihood=config.likelihood, sigma_mode=config.sigma_mode,
                                         sigma=config.sigma), config.latent_dims[0])
        self.predictor = None if config.target is None else Predictor(
            n, config.latent_dims[0], config.predictor_hidden_dims, config.target, config.n_classes,
            config.target_sigma)

    @property
    def latent_dims(self) -> list[int]:
        return list(self.config.latent_dims)

    @property
    def has_predictor(self) -> bool:
        return self.predictor is not None

    @property
    def target_kind(self) -> str | None:
        """"categorical" (a label), "gaussian" (a real target) or None (no predictor)."""
        return self.config.target

    def layer_slices(self) -> list[slice]:
        """Latent dimensions of each ε_l inside the concatenated ε."""
        return layer_slices_from_sizes(self.latent_dims)

    # -- the parts ------------------------------------------------------------------------
    def encoder_inputs(self, x: torch.Tensor, mask: torch.Tensor | None, y: torch.Tensor | None = None,
                       y_mask: torch.Tensor | None = None) -> torch.Tensor:
        """r_0 = [x_O zero-filled, mask, y_O zero-filled, y mask]: (batch, 2·features + target width)."""
        observed = torch.ones_like(x, dtype=torch.bool) if mask is None else mask
        x_filled = torch.where(observed, x, torch.zeros((), dtype=x.dtype, device=x.device))
        parts = [x_filled, observed.to(x.dtype)]
        if self.config.target is not None:
            parts.append(target_features(y, y_mask, len(x), self.config.target, self.config.n_classes, x))
        return torch.cat(parts, dim=-1)

    def encode(self, x: torch.Tensor, mask: torch.Tensor | None = None, y: torch.Tensor | None = None,
               y_mask: torch.Tensor | None = None) -> DiagonalGaussian:
        """q(ε | x_O, y_O) over the concatenated ε: (batch, Σ d_l)."""
        return self.encoder(self.encoder_inputs(x, mask, y, y_mask))

    def hidden(self, z: torch.Tensor) -> torch.Tensor:
        """h_1(ε), (..., d_1): what the decoder and the predictor see."""
        return self.transform(z)

    def decode(self, z: torch.Tensor) -> Likelihood:
        return self.decoder(self.transform(z))

    def observed_decoder(self, columns: torch.Tensor):
        """h_1 -> p(x_columns | h_1), computing only those outputs of the decoder's last layer.

        A log-density that only needs x_O (no predictor term) need not decode the missing pixels:
        for one image with half its pixels hidden this halves the dominant matmul of every HMC
        gradient evaluation. None when the decoder is not an MLP with one output per feature."""
        body, head = self.decoder.body, self.decoder.head
        if not (isinstance(body, nn.Sequential) and isinstance(body[-1], nn.Linear)) or head.n_outputs_per_feature != 1:
            return None
        trunk, last = body[:-1], body[-1]
        weight, bias = last.weight[columns], last.bias[columns]  # (|columns|, hidden), (|columns|,)

        def decode(h1: torch.Tensor) -> Likelihood:
            lead = h1.shape[:-1]
            out = F.linear(trunk(h1.reshape(-1, h1.shape[-1])), weight, bias)
            return head(out.reshape(*lead, -1))

        return decode

    @staticmethod
    def imputed(x: torch.Tensor, mask: torch.Tensor | None, likelihood: Likelihood) -> torch.Tensor:
        """x̂: observed entries of x, decoder means in the missing ones (broadcast to the decode's shape)."""
        if mask is None:
            return x.expand_as(likelihood.mean)
        return torch.where(mask, x, likelihood.mean)

    # -- derived quantities ------------------------------------------------------------------
    def log_likelihood_terms(self, x, mask, z, y=None, y_mask=None):
        """log p(x_O | h_1) and log p(y_O | x̂, h_1) from one pass through transform and decoder.

        ``z`` (..., batch, latent) with ``x`` (batch, features), ``y``/``y_mask`` (batch,); any
        extra leading dims on x/y must broadcast (HMC uses x (batch, 1, D), z (batch, chains, latent))."""
        h1 = self.transform(z)
        likelihood = self.decoder(h1)
        log_x = masked_sum(likelihood.log_prob(x), mask)
        if y is None or self.predictor is None:
            return log_x, None
        outputs = self.predictor(self.imputed(x, mask, likelihood), h1)
        return log_x, self.predictor.log_prob(outputs, y, y_mask)

    def predict_y(self, x: torch.Tensor, mask: torch.Tensor | None, z: torch.Tensor) -> torch.Tensor:
        """p(y | x̂, h_1): (..., batch, classes) probabilities (or (..., batch, 1) Gaussian means)."""
        if self.predictor is None:
            raise NotImplementedError("this model was built without a predictor (target=None)")
        h1 = self.transform(z)
        likelihood = self.decoder(h1)
        return self.predictor.predictive(self.predictor(self.imputed(x, mask, likelihood), h1))

    # -- training and sampling -------------------------------------------------------------------
    def objective(self, x: torch.Tensor, mask: torch.Tensor | None, y: torch.Tensor | None = None,
                  y_mask: torch.Tensor | None = None, generator: torch.Generator | None = None,
                  warmup: bool = False) -> ModelOutput:
        """The Stage-2 training objective: the ELBO (5.6), KL-balanced (5.7) during the warm-up."""
        return self.elbo(x, mask, generator=generator, y=y, y_mask=y_mask, kl_balance=warmup)

    def posterior_draws(self, x: torch.Tensor, mask: torch.Tensor | None, n_samples: int,
                        generator: torch.Generator | None = None, y: torch.Tensor | None = None,
                        y_mask: torch.Tensor | None = None) -> PosteriorDraws:
        """This model's own posterior sampler: here, draws from the Gaussian encoder."""
        posterior = self.encode(x, mask, y, y_mask)
        return PosteriorDraws(posterior.rsample(n_samples, generator).transpose(0, 1))  # (batch, k, latent)

    def generative_parameters(self) -> list[nn.Parameter]:
        """θ: transform, decoder and predictor — what the HMC objective trains in Stage 3."""
        modules = [self.transform, self.decoder] + ([self.predictor] if self.predictor is not None else [])
        return [p for m in modules for p in m.parameters()]

    def encoder_parameters(self) -> list[nn.Parameter]:
        """ψ: the bottom-up encoder, trained by the ELBO in every stage."""
        return list(self.encoder.parameters())


@dataclass
class PartialVAEConfig(HierarchicalVAEConfig):
    latent_dims: tuple[int, ...] = (20,)


@register_model
class PartialVAE(HierarchicalVAE):
    """One-layer VAE with a predictor and masks for x and y (key ``pvae``): the H-VAE machinery at
    L = 1, the Gaussian counterpart of HMC-VAE in Tables 5.3–5.5."""

    model_key = "pvae"
    config_class = PartialVAEConfig
