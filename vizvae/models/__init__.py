"""Models: one file per family, each a combination of parts (encoder, latent transform, decoder
and likelihood, prior, predictor, posterior sampler) that declares what it can do
(``vizvae.models.capabilities``)."""

from vizvae.models.base import (
    MODEL_REGISTRY, DataConfig, LatentVariableModel, ModelConfig, ModelOutput, PosteriorDraws, VizvaeModel,
    register_model,
)
from vizvae.models.capabilities import (
    GroupModel, LatentModel, PredictorModel, TableModel, TunedHMCModel, check_capabilities,
)
from vizvae.models.distributions import (
    BernoulliLikelihood, DiagonalGaussian, GaussianLikelihood, Likelihood, masked_sum,
)
from vizvae.models.vae import VAEConfig
from vizvae.models.ugvae import GMVAE, MLVAE, UGVAE, UGVAEConfig
from vizvae.models.hierarchical import (
    HHVAEConfig, HierarchicalVAEConfig, HMCVAEConfig, MIWAEConfig, PartialVAEConfig,
)
from vizvae.models.mixed import MIXED_MODELS, MixedConfig, MixedTypeModel
from vizvae.models.composed import ComposedVAE
from vizvae.models.families import (
    HHVAE, HHVAEM, HMCVAE, HMCVAEM, HVAEM, MIWAE, MIWAEM, VAE, VAEM, HierarchicalVAE, PartialVAE,
)

__all__ = [
    "MODEL_REGISTRY", "VAE", "BernoulliLikelihood", "DataConfig", "DiagonalGaussian", "GaussianLikelihood",
    "LatentVariableModel", "Likelihood", "ModelConfig", "ModelOutput", "PosteriorDraws", "VAEConfig", "VizvaeModel",
    "masked_sum", "register_model",
    "GroupModel", "LatentModel", "PredictorModel", "TableModel", "TunedHMCModel", "check_capabilities",
    "GMVAE", "MLVAE", "UGVAE", "UGVAEConfig",
    "ComposedVAE", "HHVAE", "HHVAEConfig", "HMCVAE", "HMCVAEConfig", "HierarchicalVAE", "HierarchicalVAEConfig", "MIWAE",
    "MIWAEConfig", "PartialVAE", "PartialVAEConfig",
    "HHVAEM", "HMCVAEM", "HVAEM", "MIWAEM", "MIXED_MODELS", "VAEM", "MixedConfig", "MixedTypeModel",
]
