"""Each registered per-row family (but the UG-VAE's) is a combination of parts: one composed class, a
config class, an encoder, a latent transform and a posterior sampler part, with the add-ons of the
parts it has, and no logic of its own."""

from __future__ import annotations

import pytest
import torch

from vizvae.models import (
    MODEL_REGISTRY, VAE, ComposedVAE, HHVAEConfig, PartialVAE, PartialVAEConfig, PredictorModel, TunedHMCModel,
    VAEConfig, check_capabilities,
)
from vizvae.models.capabilities import declared_capabilities
from vizvae.models.composed import WithPredictor, posterior_sampler
from vizvae.models.hierarchical import BottomUpEncoder, TopDownTransform
from vizvae.models.predictor import Predictor
from vizvae.models.samplers import EncoderSampler, ImportanceSampler, TunedHMCSampler
from vizvae.models.vae import Decoder, GaussianEncoder, IdentityTransform

FAMILIES = {key: cls for key, cls in MODEL_REGISTRY.items() if issubclass(cls, ComposedVAE)}
PREDICTOR_FAMILIES = {"pvae", "hvae", "miwae", "hmcvae", "hhvae"}
# what a family class may say: which combination it is, and nothing else (``native_sampler`` is set
# from ``sampler_part``)
DECLARATIONS = {"model_key", "config_class", "encoder_part", "transform_part", "sampler_part", "native_sampler"}
HIERARCHIES = {"hvae", "hhvae"}


def build(cls, **overrides):
    if cls.config_class is VAEConfig:
        return cls(VAEConfig(input_shape=(6,), latent_dim=2, hidden_dims=(8,), **overrides))
    return cls(cls.config_class(input_shape=(6,), latent_dims=(2, 1) if cls.model_key in HIERARCHIES else (2,),
                                hidden_dims=(8,), transform_hidden=4, predictor_hidden_dims=(4,), n_classes=3,
                                **overrides))


def test_the_composed_families_are_the_six_known_keys():
    assert set(FAMILIES) == {"vae"} | PREDICTOR_FAMILIES


@pytest.mark.parametrize("key", sorted(FAMILIES))
def test_a_family_is_one_level_below_the_composed_class_and_holds_no_logic(key):
    cls = FAMILIES[key]
    assert cls.__bases__[0] is ComposedVAE
    # beyond the declarations, only what Python and typing.Protocol put on every class (dunders, _abc_impl,
    # _is_protocol): no method, property or other attribute of its own
    own = {name for name in vars(cls) if name not in DECLARATIONS and not name.startswith("_")}
    assert own == set(), f"{cls.__name__} defines {sorted(own)}"
    methods = [name for name, value in vars(cls).items()
               if callable(value) and not isinstance(value, type) and name != "__subclasshook__"]
    assert methods == [], f"{cls.__name__} defines {methods}"
    assert cls.native_sampler == cls.sampler_part.name  # one answer to "which sampler is its own"


@pytest.mark.parametrize("key", sorted(FAMILIES))
def test_the_sampler_part_is_the_declared_one_and_only_hmc_adds_state(key):
    torch.manual_seed(0)
    model = build(FAMILIES[key])
    check_capabilities(model)
    assert type(model.sampler) is type(model).sampler_part
    assert type(model.encoder) is type(model).encoder_part and type(model.transform) is type(model).transform_part
    assert type(model.decoder) is Decoder  # the one decoder
    hmc_keys = sorted(k for k in model.state_dict() if k.startswith("hmc."))
    if isinstance(model, TunedHMCModel):
        assert model.hmc is model.sampler.hmc  # the part's hyper-parameters, saved under ``hmc``
        assert hmc_keys == ["hmc.log_inflation", "hmc.log_step_sizes"]
        assert model.hmc.step_sizes.shape == (model.config.n_transitions, model.latent_dim)
        assert len(model.hmc.inflation) == len(model.latent_dims)
    else:
        assert hmc_keys == []
    top_level = {k.split(".")[0] for k in model.state_dict()}
    assert top_level <= {"encoder", "transform", "decoder", "predictor", "hmc"}


def test_the_vae_is_the_per_row_encoder_the_identity_the_decoder_and_encoder_draws_without_a_predictor():
    for architecture, input_shape in (("mlp", (6,)), ("cnn", (1, 8, 8))):
        torch.manual_seed(0)
        model = VAE(VAEConfig(input_shape=input_shape, latent_dim=2, hidden_dims=(8,), architecture=architecture))
        assert (type(model.encoder), type(model.transform), type(model.sampler)) == (
            GaussianEncoder, IdentityTransform, EncoderSampler)
        assert model.predictor is None and type(model).native_sampler == "encoder"
        # the saved names of a VAE's weights: encoder.body.*, encoder.head.*, decoder.* and nothing else
        assert {k.split(".")[0] + "." + k.split(".")[1] for k in model.state_dict()} == {
            "encoder.body", "encoder.head", "decoder.body", "decoder.head"}
    # a VAE claims no predictor: it is a LatentModel only
    assert not isinstance(model, PredictorModel)
    assert [c.__name__ for c in declared_capabilities(VAE)] == ["LatentModel"]


@pytest.mark.parametrize("key", sorted(PREDICTOR_FAMILIES))
@pytest.mark.parametrize("target", ["categorical", "gaussian", None])
def test_only_the_predictor_add_on_makes_a_predictor_model_and_its_answers_follow_the_config(key, target):
    cls = FAMILIES[key]
    assert WithPredictor in cls.__bases__ and PredictorModel in declared_capabilities(cls)
    torch.manual_seed(0)
    model = build(cls, target=target)
    assert isinstance(model, PredictorModel)
    assert model.target_kind == target
    assert model.has_predictor == (target is not None)
    assert (model.predictor is not None) == (target is not None)
    if target is not None:
        assert type(model.predictor) is Predictor and model.predictor.kind == target


def test_a_partial_vae_without_a_target_is_the_vae_with_the_same_weights():
    """The two one-layer Gaussian VAEs are one combination: with the weights copied across, a pvae
    with target=None and an MLP vae of the same sizes give the same posterior, log joint and ELBO."""
    torch.manual_seed(0)
    vae = VAE(VAEConfig(input_shape=(6,), latent_dim=2, hidden_dims=(8,), likelihood="gaussian"))
    pvae = PartialVAE(PartialVAEConfig(input_shape=(6,), latent_dims=(2,), hidden_dims=(8,), likelihood="gaussian",
                                       target=None))
    renamed = {"encoder.first.0.weight": "encoder.body.0.weight", "encoder.first.0.bias": "encoder.body.0.bias",
               "encoder.heads.0.weight": "encoder.head.weight", "encoder.heads.0.bias": "encoder.head.bias"}
    weights = vae.state_dict()
    pvae.load_state_dict({name: weights[renamed.get(name, name)] for name in pvae.state_dict()})
    x = torch.randn(5, 6, generator=torch.Generator().manual_seed(1))
    mask = torch.rand(5, 6, generator=torch.Generator().manual_seed(2)) > 0.4
    q_vae, q_pvae = vae.encode(x, mask), pvae.encode(x, mask)
    torch.testing.assert_close(q_vae.mean, q_pvae.mean, rtol=0, atol=0)
    torch.testing.assert_close(q_vae.std, q_pvae.std, rtol=0, atol=0)
    z = torch.randn(3, 5, 2, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(vae.log_joint(x, mask, z), pvae.log_joint(x, mask, z), rtol=0, atol=0)
    a = vae.elbo(x, mask, generator=torch.Generator().manual_seed(4))
    b = pvae.elbo(x, mask, generator=torch.Generator().manual_seed(4))
    torch.testing.assert_close(a.elbo, b.elbo, rtol=0, atol=0)


def test_beta_weights_the_kl_in_the_loss_and_not_the_elbo():
    """β-VAE: loss = −mean(E_q log p(x|z) − β KL); the reported ELBO is the β = 1 one. With the same draw
    the losses at β = 4 and β = 1 differ by exactly 3 · mean KL, and the training objective is that loss."""
    torch.manual_seed(0)
    beta_vae = VAE(VAEConfig(input_shape=(6,), latent_dim=2, hidden_dims=(8,), likelihood="gaussian", beta=4.0))
    assert beta_vae.kl_weight() == 4.0
    x = torch.randn(7, 6, generator=torch.Generator().manual_seed(1))
    weighted = beta_vae.elbo(x, generator=torch.Generator().manual_seed(2))
    plain = beta_vae.elbo(x, beta=1.0, generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(weighted.elbo, plain.elbo, rtol=0, atol=0)
    torch.testing.assert_close(weighted.loss - plain.loss, 3.0 * plain.kl.mean())
    torch.testing.assert_close(weighted.loss, -(weighted.log_likelihood - 4.0 * weighted.kl).mean())
    objective = beta_vae.objective(x, None, generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(objective.loss, weighted.loss, rtol=0, atol=0)


def test_the_parts_are_initialised_alike_whatever_the_sampler():
    """The HMC part draws its step sizes from a private generator: with the same seed the networks of
    an HMC family and of its Gaussian counterpart start identical."""
    gaussian, tuned = MODEL_REGISTRY["pvae"], MODEL_REGISTRY["hmcvae"]
    torch.manual_seed(3)
    a = build(gaussian).state_dict()
    torch.manual_seed(3)
    b = build(tuned).state_dict()
    assert set(b) - set(a) == {"hmc.log_inflation", "hmc.log_step_sizes"}
    for name, value in a.items():
        assert torch.equal(value, b[name]), name


def test_a_sampler_part_that_the_config_cannot_set_up_is_refused():
    with pytest.raises(TypeError, match="'hmc' sampler"):
        posterior_sampler(TunedHMCSampler, PartialVAEConfig())
    with pytest.raises(TypeError, match="'hmc' sampler"):
        posterior_sampler(TunedHMCSampler, VAEConfig())
    with pytest.raises(TypeError, match="'importance' sampler"):
        posterior_sampler(ImportanceSampler, HHVAEConfig())


def test_the_epsilon_parts_refuse_what_they_cannot_build():
    with pytest.raises(ValueError, match="at least one layer"):
        BottomUpEncoder.from_config(PartialVAEConfig(latent_dims=()))
    with pytest.raises(ValueError, match="MLP only"):
        BottomUpEncoder.from_config(PartialVAEConfig(architecture="cnn"))
    with pytest.raises(ValueError, match="target must be one of"):
        BottomUpEncoder.from_config(PartialVAEConfig(target="poisson"))
    with pytest.raises(ValueError, match="a CNN needs an image"):
        GaussianEncoder.from_config(VAEConfig(input_shape=(6,), architecture="cnn"))
    assert len(TopDownTransform.from_config(PartialVAEConfig()).nets) == 0  # the identity at L = 1
