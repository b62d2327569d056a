"""Models. Each file is one family; all share ``LatentVariableModel``'s interface."""

from vizvae.models.base import MODEL_REGISTRY, LatentVariableModel, ModelConfig, ModelOutput, register_model
from vizvae.models.distributions import (
    BernoulliLikelihood, DiagonalGaussian, GaussianLikelihood, Likelihood, masked_sum,
)
from vizvae.models.vae import VAE, VAEConfig

__all__ = [
    "MODEL_REGISTRY", "VAE", "BernoulliLikelihood", "DiagonalGaussian", "GaussianLikelihood",
    "LatentVariableModel", "Likelihood", "ModelConfig", "ModelOutput", "VAEConfig", "masked_sum",
    "register_model",
]
