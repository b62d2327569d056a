"""The root of every vizvae model, the per-row latent model, and the one ELBO.

A model is a config dataclass plus an ``nn.Module`` composed of parts (encoder, latent transform,
decoder with its likelihood, prior, optional predictor, posterior sampler). It says what it can do
by naming capabilities (``vizvae.models.capabilities``) among its bases. The per-row latent model
(``LatentVariableModel``, capability ``LatentModel``) has:

* ``encode(x, mask) -> DiagonalGaussian``          q(z | x_O)
* ``decode(z) -> Likelihood``                      p(x | z), batched over leading dims of z
* ``log_prior(z)``, ``log_likelihood(x, mask, z)``, ``log_joint(x, mask, z)``
* ``elbo(x, mask) -> ModelOutput``                 the training objective, per sample
* ``posterior_draws(x, mask, n)``                  draws of its own sampler (``native_sampler``)
* ``sample_prior(n)``, ``generate(n)``, ``reconstruct(x, mask)``

Models with a predictor p(y | x̂, z) (thesis §5.2.3, capability ``PredictorModel``) take the
target and its mask as optional keywords — ``encode(x, mask, y=, y_mask=)``,
``log_joint(x, mask, z, y, y_mask)``, ``elbo(x, mask, ..., y=, y_mask=)`` — and add
``predict_y(x, mask, z)``; without ``y`` every call means the same as for a model without one.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any, ClassVar, NamedTuple

import torch
from torch import nn

from vizvae.models.capabilities import LatentModel
from vizvae.models.distributions import DiagonalGaussian, Likelihood, masked_sum, standard_normal_log_prob


@dataclass
class ModelOutput:
    """What every model's ``elbo`` and ``objective`` return, so trainers don't care which model
    they hold. ``elbo`` is always the evidence lower bound; a model trained on another bound (MIWAE's
    L_K) reports that one in ``extras`` (``"miwae_bound"``)."""

    loss: torch.Tensor  # scalar to minimise (−β-weighted ELBO, averaged over the batch)
    elbo: torch.Tensor  # (batch,) the evidence lower bound (β = 1)
    log_likelihood: torch.Tensor  # (batch,) E_q log p(x_O | z)
    kl: torch.Tensor  # (batch,) KL(q(z|x_O) || p(z))
    extras: dict[str, torch.Tensor] = field(default_factory=dict)


class PosteriorDraws(NamedTuple):
    """Draws a model's own sampler makes from p(z | x_O, y_O): ``samples`` (batch, k, latent) and
    ``log_weights`` (batch, k), self-normalised importance weights, or None for equal weights."""

    samples: torch.Tensor
    log_weights: torch.Tensor | None = None


@dataclass
class ModelConfig:
    """Base of model configs: JSON-able constructor arguments."""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "ModelConfig":
        names = {f.name for f in fields(cls)}
        unknown = set(data) - names
        if unknown:
            raise TypeError(f"{cls.__name__} does not take {sorted(unknown)}")
        values = {k: (tuple(v) if isinstance(v, list) else v) for k, v in data.items()}
        return cls(**values)


@dataclass
class DataConfig(ModelConfig):
    """A config whose first field is the shape of one data point."""

    input_shape: tuple[int, ...] = (1, 28, 28)  # (C, H, W) for images, (D,) for tables

    @property
    def n_features(self) -> int:
        return math.prod(self.input_shape)


class VizvaeModel(nn.Module):
    """What every model has, whatever it can do: its config, registry key and a summary."""

    model_key: ClassVar[str] = ""
    config_class: ClassVar[type[ModelConfig]] = ModelConfig

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config

    @property
    def latent_dims(self) -> list[int]:
        """Sizes of the latent layers (one entry for a flat VAE)."""
        raise NotImplementedError

    @property
    def latent_dim(self) -> int:
        return sum(self.latent_dims)

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def describe(self) -> dict[str, Any]:
        """Architecture summary for model cards: layers and parameter count."""
        return {
            "model": self.model_key,
            "class": type(self).__name__,
            "parameters": int(sum(p.numel() for p in self.parameters())),
            "latent_dims": self.latent_dims,
            "layers": [f"{name}: {module}" for name, module in self.named_modules()
                       if name and not list(module.children())],
        }


class LatentVariableModel(VizvaeModel, LatentModel):
    """A per-row latent model with a Gaussian encoder, a standard-normal prior and the one ELBO.
    Its own posterior sampler is the encoder unless a model declares another."""

    native_sampler: ClassVar[str] = "encoder"

    # -- the parts ------------------------------------------------------------------------
    def encode(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> DiagonalGaussian:
        raise NotImplementedError

    def decode(self, z: torch.Tensor) -> Likelihood:
        raise NotImplementedError

    def log_prior(self, z: torch.Tensor) -> torch.Tensor:
        return standard_normal_log_prob(z)

    def kl(self, posterior: DiagonalGaussian, z: torch.Tensor) -> torch.Tensor:
        """KL(q || p) per sample; analytic for a standard-normal prior. ``z`` lets a model
        without a closed form fall back to a Monte Carlo estimate."""
        return posterior.kl_standard_normal()

    def kl_weight(self) -> float:
        """β of the training loss when ``elbo`` is not given one (1: the plain ELBO)."""
        return 1.0

    # -- derived quantities ----------------------------------------------------------------
    def log_likelihood(self, x: torch.Tensor, mask: torch.Tensor | None, z: torch.Tensor) -> torch.Tensor:
        """log p(x_O | z): z (..., batch, latent), x (batch, features) -> (..., batch)."""
        return masked_sum(self.decode(z).log_prob(x), mask)

    def log_likelihood_terms(self, x: torch.Tensor, mask: torch.Tensor | None, z: torch.Tensor,
                             y: torch.Tensor | None = None, y_mask: torch.Tensor | None = None,
                             ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(log p(x_O | z), log p(y_O | x̂, z)), both (..., batch), from one decode. The second is
        None for a model without a predictor or when ``y`` is None; models with one override this."""
        return self.log_likelihood(x, mask, z), None

    def log_joint(self, x: torch.Tensor, mask: torch.Tensor | None, z: torch.Tensor,
                  y: torch.Tensor | None = None, y_mask: torch.Tensor | None = None) -> torch.Tensor:
        """log p(x_O, y_O, z), the unnormalised log posterior in z (y_O only with a predictor)."""
        log_x, log_y = self.log_likelihood_terms(x, mask, z, y, y_mask)
        joint = log_x + self.log_prior(z)
        return joint if log_y is None else joint + log_y

    def elbo(self, x: torch.Tensor, mask: torch.Tensor | None = None, n_samples: int = 1,
             beta: float | None = None, generator: torch.Generator | None = None,
             y: torch.Tensor | None = None, y_mask: torch.Tensor | None = None,
             kl_balance: bool = False) -> ModelOutput:
        """ELBO = E_q[log p(x_O|z) + log p(y_O|x̂,z)] − KL(q(z|x_O,y_O) || p(z)) (eq. 5.6); the loss
        weights the KL by β. ``kl_balance`` reweights the per-layer KLs of an ε-space hierarchy
        in the loss by eq. (5.7) (standard-normal prior per layer); the returned ELBO never is."""
        beta = self.kl_weight() if beta is None else beta
        posterior = self.encode(x, mask) if y is None else self.encode(x, mask, y=y, y_mask=y_mask)
        z = posterior.rsample(n_samples, generator)  # (samples, batch, latent)
        log_x, log_y = self.log_likelihood_terms(x, mask, z, y, y_mask)
        log_likelihood = log_x.mean(0)
        fit = log_likelihood
        extras: dict[str, torch.Tensor] = {}
        if log_y is not None:
            log_target = log_y.mean(0)
            fit = fit + log_target
            extras["log_target"] = log_target.detach()
        kl = self.kl(posterior, z)
        kl_in_loss = kl
        if kl_balance and len(self.latent_dims) > 1:
            layer_kl = layer_kls(posterior, self.latent_dims)  # (batch, L)
            kl_in_loss = (layer_kl * kl_balance_weights(layer_kl, self.latent_dims)).sum(-1)
            extras["layer_kl"] = layer_kl.detach()
        elbo = fit - kl
        loss = -(fit - beta * kl_in_loss).mean()
        return ModelOutput(loss=loss, elbo=elbo.detach(), log_likelihood=log_likelihood.detach(), kl=kl.detach(),
                           extras=extras)

    def posterior_draws(self, x: torch.Tensor, mask: torch.Tensor | None, n_samples: int,
                        generator: torch.Generator | None = None) -> PosteriorDraws:
        """This model's own posterior sampler: draws of the Gaussian encoder, (batch, k, latent)."""
        return PosteriorDraws(self.encode(x, mask).rsample(n_samples, generator).transpose(0, 1))

    def sample_prior(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        return torch.randn((n, self.latent_dim), generator=generator, device=self.device)

    @torch.no_grad()
    def generate(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Decoder means of n prior samples: (n, features)."""
        return self.decode(self.sample_prior(n, generator)).mean

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Decoder mean at the posterior mean."""
        return self.decode(self.encode(x, mask).mean).mean


def layer_kls(posterior: DiagonalGaussian, latent_dims: list[int]) -> torch.Tensor:
    """KL(q(ε_l | x) || N(0, I)) of each layer of a factorised posterior: (batch, L)."""
    per_dimension = posterior.kl_per_dimension()  # (batch, latent)
    return torch.stack([part.sum(-1) for part in per_dimension.split(list(latent_dims), dim=-1)], dim=-1)


def kl_balance_weights(layer_kl: torch.Tensor, latent_dims: list[int]) -> torch.Tensor:
    """KL-balancing factors γ_l = d_l E_B[KL_l] / Σ_i d_i E_B[KL_i] (eq. 5.7, after Vahdat & Kautz
    2020): (L,), detached, summing to 1.

    A layer whose KL is small next to the others gets a small weight, so the optimiser is not
    pushed to switch it off (posterior collapse of the deeper layers); since Σ γ_l = 1 the warm-up
    also weakens the whole KL term, like a KL annealing. (Rescaling to mean 1, as NVAE does, doubled
    the weight on the dominant layer of our [20, 10] MNIST H-VAE and gave a worse ELBO.)
    """
    dims = torch.as_tensor(list(latent_dims), dtype=layer_kl.dtype, device=layer_kl.device)
    magnitude = dims * layer_kl.detach().mean(0).clamp_min(1e-2)  # floor: a collapsed layer keeps a weight
    return magnitude / magnitude.sum()


MODEL_REGISTRY: dict[str, type[VizvaeModel]] = {}


def register_model(cls: type[VizvaeModel]) -> type[VizvaeModel]:
    """Class decorator: makes the model loadable from checkpoints and trainable from the CLI."""
    MODEL_REGISTRY[cls.model_key] = cls
    return cls
