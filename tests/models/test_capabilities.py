"""Declared capabilities (vizvae/models/capabilities.py): every registered model class declares
what it implements, and routing by declaration agrees with each model's own sampler."""

from __future__ import annotations

import pytest
import torch

from vizvae.errors import CheckpointError
from vizvae.inference.imputers import METHODS, native_method, supported_methods
from vizvae.models import (
    MIXED_MODELS, MODEL_REGISTRY, GroupModel, LatentModel, LatentVariableModel, PredictorModel, TableModel, TunedHMCModel,
    check_capabilities,
)
from vizvae.models.capabilities import SAMPLERS, declared_capabilities

MIXED_DEPENDENCY = {"column_names": ("a", "b", "c"), "column_kinds": ("gaussian", "bernoulli", "categorical"),
                    "n_categories": (0, 2, 3), "marginal_hidden": 4}
SMALL = {
    "vae": {"input_shape": (6,), "latent_dim": 2, "hidden_dims": (4,)},
    "ugvae": {"input_shape": (6,), "latent_dim": 2, "global_dim": 2, "clusters": 3, "hidden_dim": 4},
    "mlvae": {"input_shape": (6,), "latent_dim": 2, "global_dim": 2, "clusters": 1, "hidden_dim": 4},
    "gmvae": {"input_shape": (6,), "latent_dim": 2, "global_dim": 0, "clusters": 3, "hidden_dim": 4},
}
HIERARCHICAL = {"input_shape": (6,), "hidden_dims": (4,), "transform_hidden": 4, "predictor_hidden_dims": (4,),
                "n_classes": 3}
HMC = {"n_transitions": 2, "n_leapfrog": 2}
# the sampler each family is known to use (thesis Tables 5.3-5.5): one answer per registered key
EXPECTED_SAMPLER = {"vae": "encoder", "ugvae": "encoder", "mlvae": "encoder", "gmvae": "encoder", "pvae": "encoder",
                    "hvae": "encoder", "miwae": "importance", "hmcvae": "hmc", "hhvae": "hmc", "vaem": "encoder",
                    "hvaem": "encoder", "miwaem": "importance", "hmcvaem": "hmc", "hhvaem": "hmc"}


def small_model(key: str):
    cls = MODEL_REGISTRY[key]
    if key in SMALL:
        return cls(cls.config_class(**SMALL[key]))
    if key in ("pvae", "hvae", "miwae", "hmcvae", "hhvae"):
        return cls(cls.config_class(**HIERARCHICAL, **(HMC if "hmc" in key or "hh" in key else {})))
    dependency_class = MODEL_REGISTRY[cls.dependency_key]
    dependency = {**HIERARCHICAL, "input_shape": (3,), "target": "gaussian",
                  **(HMC if dependency_class.native_sampler == "hmc" else {})}
    return cls(cls.config_class(**MIXED_DEPENDENCY, dependency=dependency))


def test_every_registered_key_has_a_known_sampler():
    assert set(MODEL_REGISTRY) == set(EXPECTED_SAMPLER)


@pytest.mark.parametrize("key", sorted(EXPECTED_SAMPLER))
def test_each_model_declares_what_it_implements(key):
    model = small_model(key)
    check_capabilities(model)
    declared = declared_capabilities(type(model))
    for capability in (LatentModel, GroupModel, PredictorModel, TunedHMCModel, TableModel):
        assert isinstance(model, capability) == (capability in declared), capability.__name__
    assert (LatentModel in declared) != (GroupModel in declared)  # per row or per group, never both
    assert type(model).native_sampler == EXPECTED_SAMPLER[key] in SAMPLERS
    assert (TunedHMCModel in declared) == (EXPECTED_SAMPLER[key] == "hmc")
    assert (TableModel in declared) == (key in MIXED_MODELS)


@pytest.mark.parametrize("key", sorted(EXPECTED_SAMPLER))
def test_imputation_routing_agrees_with_the_declared_sampler(key):
    model = small_model(key)
    expected = {"encoder": "encoder", "importance": "sir", "hmc": "hmc"}[EXPECTED_SAMPLER[key]]
    assert native_method(model) == expected
    supported = supported_methods(model)
    if isinstance(model, GroupModel):
        assert supported == ("zero", "mean")  # a group's joint: no per-row posterior to sample
    else:
        assert supported == tuple(METHODS) and native_method(model) in supported


@pytest.mark.parametrize("key", ["miwae", "miwaem", "hhvae", "hhvaem"])
def test_own_draws_come_from_the_declared_sampler(key):
    """Importance samplers weigh their draws; the others return equal weights."""
    model = small_model(key).eval()
    if key in MIXED_MODELS:  # a real, a binary and a three-way categorical column
        x = torch.tensor([[0.3, 1.0, 2.0], [-1.2, 0.0, 0.0], [0.5, 1.0, 1.0]])
    else:
        x = torch.rand(3, 6)
    mask = torch.ones_like(x, dtype=torch.bool)
    draws = model.posterior_draws(x, mask, 4, torch.Generator().manual_seed(0))
    assert draws.samples.shape == (3, 4, model.latent_dim)
    if type(model).native_sampler == "importance":
        assert torch.allclose(draws.log_weights.exp().sum(-1), torch.ones(3))
    else:
        assert draws.log_weights is None


def test_a_declared_capability_without_its_members_is_refused():
    class Incomplete(LatentVariableModel, TunedHMCModel):
        native_sampler = "hmc"

        @property
        def latent_dims(self):
            return [1]

    with pytest.raises(CheckpointError, match="declares TunedHMCModel but does not implement"):
        check_capabilities(Incomplete(None))


def test_an_undeclared_capability_and_a_wrong_sampler_are_refused():
    class Undeclared(LatentVariableModel):
        hmc = None

        def initial_step_sizes(self): ...

        def posterior_logdensity(self, *args, **kwargs): ...

        def posterior_samples(self, *args, **kwargs): ...

        def hmc_losses(self, *args, **kwargs): ...

    with pytest.raises(CheckpointError, match="does not declare it"):
        check_capabilities(Undeclared(None))

    class WrongSampler(LatentVariableModel):
        native_sampler = "hmc"

    with pytest.raises(CheckpointError, match="disagrees"):
        check_capabilities(WrongSampler(None))
    WrongSampler.native_sampler = "gibbs"
    with pytest.raises(CheckpointError, match="must be one of"):
        check_capabilities(WrongSampler(None))
