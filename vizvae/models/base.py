"""The interface every vizvae model shares (SPEC §3), and the one ELBO.

A model is a config dataclass plus an ``nn.Module`` built from parts (encoder, decoder,
prior, likelihood). Pages and estimators talk to models only through this interface:

* ``encode(x, mask) -> DiagonalGaussian``          q(z | x_O)
* ``decode(z) -> Likelihood``                      p(x | z), batched over leading dims of z
* ``log_prior(z)``, ``log_likelihood(x, mask, z)``, ``log_joint(x, mask, z)``
* ``elbo(x, mask) -> ModelOutput``                 the training objective, per sample
* ``sample_prior(n)``, ``generate(n)``, ``reconstruct(x, mask)``
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any, ClassVar

import torch
from torch import nn

from vizvae.models.distributions import DiagonalGaussian, Likelihood, masked_sum, standard_normal_log_prob


@dataclass
class ModelOutput:
    """What every model's ``elbo`` returns, so trainers don't care which model they hold."""

    loss: torch.Tensor  # scalar to minimise (−β-weighted ELBO, averaged over the batch)
    elbo: torch.Tensor  # (batch,) the evidence lower bound (β = 1)
    log_likelihood: torch.Tensor  # (batch,) E_q log p(x_O | z)
    kl: torch.Tensor  # (batch,) KL(q(z|x_O) || p(z))
    extras: dict[str, torch.Tensor] = field(default_factory=dict)


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


class LatentVariableModel(nn.Module):
    model_key: ClassVar[str] = ""
    config_class: ClassVar[type[ModelConfig]] = ModelConfig

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config

    # -- shape of the latent space -------------------------------------------------------
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

    # -- derived quantities ----------------------------------------------------------------
    def log_likelihood(self, x: torch.Tensor, mask: torch.Tensor | None, z: torch.Tensor) -> torch.Tensor:
        """log p(x_O | z): z (..., batch, latent), x (batch, features) -> (..., batch)."""
        return masked_sum(self.decode(z).log_prob(x), mask)

    def log_joint(self, x: torch.Tensor, mask: torch.Tensor | None, z: torch.Tensor) -> torch.Tensor:
        """log p(x_O, z), the unnormalised log posterior in z."""
        return self.log_likelihood(x, mask, z) + self.log_prior(z)

    def elbo(self, x: torch.Tensor, mask: torch.Tensor | None = None, n_samples: int = 1,
             beta: float | None = None, generator: torch.Generator | None = None) -> ModelOutput:
        """ELBO = E_q[log p(x_O|z)] − KL(q(z|x_O) || p(z)); the loss weights the KL by β."""
        beta = getattr(self.config, "beta", 1.0) if beta is None else beta
        posterior = self.encode(x, mask)
        z = posterior.rsample(n_samples, generator)  # (samples, batch, latent)
        log_likelihood = self.log_likelihood(x, mask, z).mean(0)
        kl = self.kl(posterior, z)
        elbo = log_likelihood - kl
        loss = -(log_likelihood - beta * kl).mean()
        return ModelOutput(loss=loss, elbo=elbo.detach(), log_likelihood=log_likelihood.detach(), kl=kl.detach())

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


MODEL_REGISTRY: dict[str, type[LatentVariableModel]] = {}


def register_model(cls: type[LatentVariableModel]) -> type[LatentVariableModel]:
    """Class decorator: makes the model loadable from checkpoints and trainable from the CLI."""
    MODEL_REGISTRY[cls.model_key] = cls
    return cls
