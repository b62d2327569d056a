"""The registered per-row families, each a combination of parts.

Every family below is ``ComposedVAE`` (``vizvae.models.composed``) with a config class, an encoder
part, a latent transform part and a posterior sampler part, and with the add-ons of the parts it
has; the mixed-type families are marginal VAEs with one of the predictor families as their
dependency model (``vizvae.models.mixed``). The classes only name the combination:

    key     config                 encoder, transform                  sampler            add-ons
    vae     VAEConfig              GaussianEncoder, IdentityTransform  EncoderSampler     -
    pvae    PartialVAEConfig       BottomUpEncoder, TopDownTransform   EncoderSampler     WithPredictor
    hvae    HierarchicalVAEConfig  BottomUpEncoder, TopDownTransform   EncoderSampler     WithPredictor
    miwae   MIWAEConfig            BottomUpEncoder, TopDownTransform   ImportanceSampler  WithPredictor, ImportanceSampled
    hhvae   HHVAEConfig            BottomUpEncoder, TopDownTransform   TunedHMCSampler    WithPredictor, TunedHMCSampled
    hmcvae  HMCVAEConfig           BottomUpEncoder, TopDownTransform   TunedHMCSampler    WithPredictor, TunedHMCSampled

All share the one ``Decoder``, the standard-normal prior and the one ELBO; ``native_sampler`` is the
sampler part's name, and a β-VAE is a ``vae`` whose config's ``beta`` (``kl_weight()``) exceeds 1.
Capabilities: ``vae`` is a ``LatentModel``; the add-on ``WithPredictor`` makes a ``PredictorModel``
and ``TunedHMCSampled`` a ``TunedHMCModel``. The mixed-type families:

    key       class            dependency   capabilities
    vaem      VAEM             pvae         LatentModel, PredictorModel, TableModel
    miwaem    MIWAEM           miwae        ... TableModel
    hvaem     HVAEM            hvae         ... TableModel
    hmcvaem   HMCVAEM          hmcvae       ... TableModel, TunedHMCModel
    hhvaem    HHVAEM           hhvae        ... TableModel, TunedHMCModel

``check_capabilities`` holds each declaration to its implementation, and ``native_sampler`` to
``TunedHMCModel``.
"""

from __future__ import annotations

from vizvae.models.base import register_model
from vizvae.models.composed import ComposedVAE, ImportanceSampled, TunedHMCSampled, WithPredictor
from vizvae.models.hierarchical import (
    BottomUpEncoder, HHVAEConfig, HierarchicalVAEConfig, HMCVAEConfig, MIWAEConfig, PartialVAEConfig, TopDownTransform,
)
from vizvae.models.mixed import MixedTunedHMC, MixedTypeModel
from vizvae.models.samplers import EncoderSampler, ImportanceSampler, TunedHMCSampler
from vizvae.models.vae import GaussianEncoder, IdentityTransform, VAEConfig

# -- the per-row families -------------------------------------------------------------------------------------


@register_model
class VAE(ComposedVAE):
    """VAE and β-VAE (Kingma & Welling 2014; Higgins et al. 2017): a Gaussian encoder (MLP or CNN) of
    x_O and its mask, the decoder fed z itself, no predictor; the KL weighted by the config's β."""

    model_key = "vae"
    config_class = VAEConfig
    encoder_part = GaussianEncoder
    transform_part = IdentityTransform
    sampler_part = EncoderSampler


@register_model
class HierarchicalVAE(ComposedVAE, WithPredictor):
    """H-VAE in ε-space with a predictor (thesis §5.2.4)."""

    model_key = "hvae"
    config_class = HierarchicalVAEConfig
    encoder_part = BottomUpEncoder
    transform_part = TopDownTransform
    sampler_part = EncoderSampler


@register_model
class PartialVAE(ComposedVAE, WithPredictor):
    """One-layer VAE with a predictor and masks for x and y (L = 1: the transform is the identity),
    the Gaussian counterpart of HMC-VAE in Tables 5.3–5.5."""

    model_key = "pvae"
    config_class = PartialVAEConfig
    encoder_part = BottomUpEncoder
    transform_part = TopDownTransform
    sampler_part = EncoderSampler


@register_model
class MIWAE(ComposedVAE, WithPredictor, ImportanceSampled):
    """The one-layer parts, trained on the importance-weighted bound L_K and sampled by SNIS."""

    model_key = "miwae"
    config_class = MIWAEConfig
    encoder_part = BottomUpEncoder
    transform_part = TopDownTransform
    sampler_part = ImportanceSampler


@register_model
class HHVAE(ComposedVAE, WithPredictor, TunedHMCSampled):
    """H-VAE + tuned HMC over ε (thesis §5.2.6)."""

    model_key = "hhvae"
    config_class = HHVAEConfig
    encoder_part = BottomUpEncoder
    transform_part = TopDownTransform
    sampler_part = TunedHMCSampler


@register_model
class HMCVAE(ComposedVAE, WithPredictor, TunedHMCSampled):
    """One-layer VAE + tuned HMC (thesis §5.2.5)."""

    model_key = "hmcvae"
    config_class = HMCVAEConfig
    encoder_part = BottomUpEncoder
    transform_part = TopDownTransform
    sampler_part = TunedHMCSampler


# -- the mixed-type families: marginal VAEs + one of the above as the dependency model ---------------------------


@register_model
class VAEM(MixedTypeModel):
    """VAEM (Ma et al. 2020): one-layer Gaussian dependency VAE."""

    model_key = "vaem"
    dependency_key = "pvae"
    native_sampler = "encoder"


@register_model
class MIWAEM(MixedTypeModel):
    """VAEM with the MIWAE bound and SNIS sampler."""

    model_key = "miwaem"
    dependency_key = "miwae"
    native_sampler = "importance"


@register_model
class HVAEM(MixedTypeModel):
    """VAEM with the two-layer ε-space hierarchy."""

    model_key = "hvaem"
    dependency_key = "hvae"
    native_sampler = "encoder"


@register_model
class HMCVAEM(MixedTypeModel, MixedTunedHMC):
    """One-layer dependency VAE sampled by tuned HMC."""

    model_key = "hmcvaem"
    dependency_key = "hmcvae"
    native_sampler = "hmc"


@register_model
class HHVAEM(MixedTypeModel, MixedTunedHMC):
    """The thesis' model: hierarchical dependency VAE sampled by tuned HMC."""

    model_key = "hhvaem"
    dependency_key = "hhvae"
    native_sampler = "hmc"
