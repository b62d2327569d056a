"""What a model can do, declared rather than discovered.

Each capability is a ``typing.Protocol``. A model class names the capabilities it has among its
bases, itself or through the add-on of a part (``class HHVAE(ComposedVAE, WithPredictor,
TunedHMCSampled)``: a ``LatentModel``, a ``PredictorModel`` and a ``TunedHMCModel``), and states its
own posterior sampler in the class variable ``native_sampler``. ``check_capabilities`` runs once,
where a model is built or loaded: it refuses a class that declares a capability without
implementing every member of it, or that has every member of a capability without declaring it.
After that check, ``isinstance(model, TunedHMCModel)`` is a statement about the declaration, so
code that needs a capability asks for it by type and never probes with ``hasattr`` or a trial call.

The capabilities:

* ``LatentModel`` — a per-row latent model: q(z | x_O), p(x | z), log p(x_O, z), its ELBO, and
  draws from its own posterior sampler.
* ``GroupModel`` — the UG-VAE family, whose global variable β is shared by a group of rows, so its
  joint is over a group, not a row.
* ``PredictorModel`` — a per-row model that may carry a predictor p(y | x̂, z); ``has_predictor``
  says whether this instance was built with one.
* ``TunedHMCModel`` — a model with trained HMC hyper-parameters (step sizes and inflations).
* ``TableModel`` — a mixed-type model with one marginal VAE per column.
"""

from __future__ import annotations

from typing import Any, ClassVar, Protocol, runtime_checkable

import torch

from vizvae.errors import CheckpointError

SAMPLERS = ("encoder", "importance", "hmc")  # encoder draws | self-normalised importance | tuned HMC


@runtime_checkable
class LatentModel(Protocol):
    """A per-row latent model (SPEC §3). ``native_sampler`` is how its own posterior draws are made."""

    native_sampler: ClassVar[str]

    @property
    def latent_dims(self) -> list[int]: ...

    @property
    def latent_dim(self) -> int: ...

    def encode(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> Any: ...

    def decode(self, z: torch.Tensor) -> Any: ...

    def log_prior(self, z: torch.Tensor) -> torch.Tensor: ...

    def log_joint(self, x: torch.Tensor, mask: torch.Tensor | None, z: torch.Tensor) -> torch.Tensor: ...

    def elbo(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> Any: ...

    def posterior_draws(self, x: torch.Tensor, mask: torch.Tensor | None, n_samples: int,
                        generator: torch.Generator | None = None) -> Any: ...

    def sample_prior(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor: ...

    def generate(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor: ...

    def reconstruct(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor: ...


@runtime_checkable
class GroupModel(Protocol):
    """A model whose global latent β is shared by a group of rows (UG-VAE, ML-VAE, GMVAE)."""

    native_sampler: ClassVar[str]

    @property
    def global_dim(self) -> int: ...

    @property
    def local_dim(self) -> int: ...

    @property
    def clusters(self) -> int: ...

    def global_posterior(self, x: torch.Tensor, mask: torch.Tensor | None = None,
                         z: torch.Tensor | None = None) -> Any: ...

    def decode_group(self, z: torch.Tensor, beta: torch.Tensor) -> Any: ...

    def group_log_weights(self, x: torch.Tensor, n_importance: int,
                          generator: torch.Generator | None = None) -> torch.Tensor: ...

    def evaluate_group_bounds(self, x: torch.Tensor, ks: tuple[int, ...] = (5, 50), seed: int = 0,
                              group_size: int | None = None) -> dict[str, float]: ...


@runtime_checkable
class PredictorModel(Protocol):
    """A per-row model with masks for x and a target y, and (when ``has_predictor``) p(y | x̂, z)."""

    @property
    def has_predictor(self) -> bool: ...

    @property
    def target_kind(self) -> str | None: ...

    def predict_y(self, x: torch.Tensor, mask: torch.Tensor | None, z: torch.Tensor) -> torch.Tensor: ...

    def log_likelihood_terms(self, x: torch.Tensor, mask: torch.Tensor | None, z: torch.Tensor,
                             y: torch.Tensor | None = None, y_mask: torch.Tensor | None = None) -> Any: ...

    def objective(self, x: torch.Tensor, mask: torch.Tensor | None, y: torch.Tensor | None = None,
                  y_mask: torch.Tensor | None = None, generator: torch.Generator | None = None,
                  warmup: bool = False, kl_scale: float = 1.0) -> Any: ...

    def generative_parameters(self) -> list[torch.nn.Parameter]: ...

    def encoder_parameters(self) -> list[torch.nn.Parameter]: ...


@runtime_checkable
class TunedHMCModel(Protocol):
    """A model with trained HMC hyper-parameters ``hmc`` (saved with its weights)."""

    hmc: Any

    def initial_step_sizes(self) -> torch.Tensor: ...

    def posterior_logdensity(self, x: torch.Tensor, mask: torch.Tensor | None, y: torch.Tensor | None = None,
                             y_mask: torch.Tensor | None = None) -> Any: ...

    def posterior_samples(self, x: torch.Tensor, mask: torch.Tensor | None, y: torch.Tensor | None = None,
                          y_mask: torch.Tensor | None = None, n_chains: int = 30,
                          generator: torch.Generator | None = None, record_chain: bool = False) -> Any: ...

    def hmc_losses(self, x: torch.Tensor, mask: torch.Tensor | None, y: torch.Tensor | None = None,
                   y_mask: torch.Tensor | None = None, n_chains: int | None = None,
                   generator: torch.Generator | None = None) -> Any: ...


@runtime_checkable
class TableModel(Protocol):
    """A mixed-type model: ``marginals`` (one VAE per column), ``types`` (each column's kind)."""

    marginals: Any
    types: Any

    def freeze_marginals(self) -> None: ...

    def marginal_objective(self, x: torch.Tensor, mask: torch.Tensor | None,
                           generator: torch.Generator | None = None) -> torch.Tensor: ...


CAPABILITIES: tuple[type, ...] = (LatentModel, GroupModel, PredictorModel, TunedHMCModel, TableModel)


def declared_capabilities(model_class: type) -> list[type]:
    """The capabilities a class names among its bases (not those it merely looks like)."""
    return [capability for capability in CAPABILITIES if capability in model_class.__mro__]


def _members(capability: type) -> list[str]:
    return sorted({name for name in vars(capability) if not name.startswith("_")}
                  | set(getattr(capability, "__annotations__", {})))


def _missing_members(model: Any, capability: type) -> list[str]:
    """Members the model inherits only as a capability's stub, or lacks altogether."""
    missing = []
    for name in _members(capability):
        owner = next((cls for cls in type(model).__mro__ if name in vars(cls)), None)
        stub = owner is not None and owner in CAPABILITIES
        if stub or (owner is None and name not in _instance_members(model)):
            missing.append(name)
    return missing


def _instance_members(model: Any) -> set[str]:
    """Names an instance holds itself: plain attributes and, for an ``nn.Module``, its submodules,
    parameters and buffers."""
    names = set(vars(model))
    for table in ("_modules", "_parameters", "_buffers"):
        names |= set(vars(model).get(table, {}))
    return names


def check_capabilities(model: Any) -> None:
    """Refuse a model whose declared capabilities and implementation disagree (a one-line
    ``CheckpointError``): a declared capability with a missing member, an undeclared capability
    that ``isinstance`` would nevertheless report, or a ``native_sampler`` that is not one of
    ``SAMPLERS`` or does not agree with ``TunedHMCModel``."""
    name = type(model).__name__
    declared = declared_capabilities(type(model))
    if not declared:
        raise CheckpointError(f"{name} declares no capability (LatentModel or GroupModel)")
    for capability in declared:
        missing = _missing_members(model, capability)
        if missing:
            raise CheckpointError(f"{name} declares {capability.__name__} but does not implement {missing}")
    for capability in CAPABILITIES:
        if capability not in declared and not _missing_members(model, capability):
            raise CheckpointError(f"{name} has every member of {capability.__name__} but does not declare it")
    sampler = type(model).native_sampler  # a member of LatentModel and GroupModel, checked above
    if sampler not in SAMPLERS:
        raise CheckpointError(f"{name}.native_sampler must be one of {SAMPLERS}, got {sampler!r}")
    if (sampler == "hmc") != (TunedHMCModel in declared):
        raise CheckpointError(f"{name}.native_sampler is {sampler!r}, which disagrees with its TunedHMCModel declaration")
