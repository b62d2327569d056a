"""Models. Each file is one family; all share ``LatentVariableModel``'s interface."""

from vizvae.models.base import MODEL_REGISTRY, LatentVariableModel, ModelConfig, ModelOutput, register_model
from vizvae.models.distributions import (
    BernoulliLikelihood, DiagonalGaussian, GaussianLikelihood, Likelihood, masked_sum,
)
from vizvae.models.vae import VAE, VAEConfig
from vizvae.models.ugvae import GMVAE, MLVAE, UGVAE, UGVAEConfig
from vizvae.models.hierarchical import HierarchicalVAE, HierarchicalVAEConfig, PartialVAE, PartialVAEConfig
from vizvae.models.miwae import MIWAE, MIWAEConfig
from vizvae.models.hmc_models import HHVAE, HHVAEConfig, HMCVAE, HMCVAEConfig
from vizvae.models.mixed import HHVAEM, HMCVAEM, HVAEM, MIWAEM, MIXED_MODELS, VAEM, MixedConfig, MixedTypeModel

__all__ = [
    "MODEL_REGISTRY", "VAE", "BernoulliLikelihood", "DiagonalGaussian", "GaussianLikelihood",
    "LatentVariableModel", "Likelihood", "ModelConfig", "ModelOutput", "VAEConfig", "masked_sum",
    "register_model",
    "GMVAE", "MLVAE", "UGVAE", "UGVAEConfig",
    "HHVAE", "HHVAEConfig", "HMCVAE", "HMCVAEConfig", "HierarchicalVAE", "HierarchicalVAEConfig", "MIWAE",
    "MIWAEConfig", "PartialVAE", "PartialVAEConfig",
    "HHVAEM", "HMCVAEM", "HVAEM", "MIWAEM", "MIXED_MODELS", "VAEM", "MixedConfig", "MixedTypeModel",
]
