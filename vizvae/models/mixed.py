"""Mixed-type tables: VAEM, MIWAEM, H-VAEM, HMC-VAEM and HH-VAEM (thesis §5.2.2, Algorithm 1).

Two parts, trained in order (SPEC §3):

* **Marginal VAEs** — one per column d, with a 1-D latent z_d, q(z_d | x_d) and p(x_d | z_d) in
  that column's likelihood (``gaussian``/``loggaussian`` with variance 0.1 in model space,
  ``bernoulli``, ``categorical``). Stage 1 maximises Σ_d 1(x_d observed) ELBO_d (eq. 5.3); then
  they are frozen.
* **Dependency model** — any of the image family's models (pvae, miwae, hvae, hmcvae, hhvae) on
  the vector of marginal codes z = (z_1, ..., z_D), zero-filled where x_d is missing and with the
  same mask, a Gaussian decoder p(z | h_1) and the predictor p(y | ẑ, h_1) (eq. 5.4). Stages 2 and 3
  are the image models' own.

The assembled model keeps the shared interface: ``encode(x, mask)`` is q(ε | z_O, y_O) with z the
marginal codes of x (posterior means; fresh draws of q(z_d | x_d) while training, as in eq. 5.4),
``log_joint`` is the dependency model's log p(z_O, y_O, ε) — the HMC target — and
``decode(ε)`` is p(x | ε) in data space: h_1 → the decoder mean of z → each column's marginal
decoder. Imputing x_j (``vizvae.inference.acquisition.joint_draws``) and the NLL of unobserved
features (5.14) go through ``decode``.

The predictor sees the completed codes ẑ rather than x̂: each marginal decoder maps z_j to x_j one
to one in the mean, so the two carry the same information.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, ClassVar, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from vizvae.kernels.hmc import HMCHyperparameters, HMCResult
from vizvae.kernels.stein import HMCTrainingLosses
from vizvae.models.base import MODEL_REGISTRY, LatentVariableModel, ModelConfig, ModelOutput, PosteriorDraws
from vizvae.models.capabilities import PredictorModel, TableModel, TunedHMCModel
from vizvae.models.distributions import (
    DiagonalGaussian, Likelihood, gaussian_from_logvar, gaussian_log_prob, masked_sum, randn_like,
)

REAL_KINDS = ("gaussian", "loggaussian")
COLUMN_KINDS = ("gaussian", "loggaussian", "bernoulli", "categorical")
GAUSSIAN_VARIANCE = 0.1  # §5.4.1: the noise variance of every Gaussian likelihood
Tensor = torch.Tensor


class ColumnwiseLinear(nn.Module):
    """D independent linear maps applied at once: (..., D, in) -> (..., D, out)."""

    def __init__(self, n_columns: int, in_features: int, out_features: int):
        super().__init__()
        bound = 1.0 / math.sqrt(in_features)  # nn.Linear's default initialisation, per column
        self.weight = nn.Parameter(torch.empty(n_columns, in_features, out_features).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(n_columns, out_features).uniform_(-bound, bound))

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return torch.einsum("...ci,cio->...co", inputs, self.weight) + self.bias


class ColumnTypes:
    """Which columns are real, binary or categorical, as boolean tensors over the D columns."""

    def __init__(self, kinds: Sequence[str], n_categories: Sequence[int]):
        unknown = [k for k in kinds if k not in COLUMN_KINDS]
        if unknown:
            raise ValueError(f"column kinds must be among {COLUMN_KINDS}, got {unknown}")
        if len(n_categories) != len(kinds):
            raise ValueError("one category count per column is needed (0 for real columns)")
        self.kinds = tuple(kinds)
        self.n_categories = tuple(int(c) if k == "categorical" else (2 if k == "bernoulli" else 0)
                                  for k, c in zip(kinds, n_categories))
        # constants on the CPU, whatever the default device (a meta build for shapes included: math on
        # meta tensors loads torch's compiler stack); their users move them to their data's device
        cpu = torch.device("cpu")
        self.real = torch.tensor([k in REAL_KINDS for k in kinds], device=cpu)
        self.binary = torch.tensor([k == "bernoulli" for k in kinds], device=cpu)
        self.categorical = torch.tensor([k == "categorical" for k in kinds], device=cpu)
        self.width = max([1, *[c for k, c in zip(kinds, self.n_categories) if k == "categorical"]])
        # (D, width): which output slots are categories of each categorical column
        slots = torch.arange(self.width, device=cpu)
        counts = torch.tensor([c if k == "categorical" else 0 for k, c in zip(kinds, self.n_categories)], device=cpu)
        self.category_slots = slots < counts.unsqueeze(-1)
        # (D,) values of each discrete column, 0 for real ones (histogram bins of SAIA's MI reward)
        self.levels = torch.tensor([c if k in ("bernoulli", "categorical") else 0
                                    for k, c in zip(kinds, self.n_categories)], device=cpu)

    def __len__(self) -> int:
        return len(self.kinds)


class MixedLikelihood(Likelihood):
    """p(x | z) with one factor per column, each of its own type; ``outputs`` (..., D, width) are
    the marginal decoders' outputs: a Gaussian mean or a Bernoulli logit in slot 0, or the logits of
    a categorical column's categories. Values in model space (``vizvae.data.schema``).

    ``mean`` is the point imputation: the mean of a real column, the most probable value of a
    binary or categorical one (so it is always a valid value); ``sample`` draws valid values too."""

    def __init__(self, outputs: torch.Tensor, types: ColumnTypes, log_std: float = 0.5 * math.log(GAUSSIAN_VARIANCE)):
        self.outputs = outputs
        self.types = types
        self.log_std = log_std
        device = outputs.device
        self.real = types.real.to(device)
        self.binary = types.binary.to(device)
        self.categorical = types.categorical.to(device)
        self.category_slots = types.category_slots.to(device)

    @property
    def first(self) -> torch.Tensor:
        return self.outputs[..., 0]

    def category_logits(self) -> torch.Tensor:
        """(..., D, width) log-probabilities of the categories (−inf outside each column's range)."""
        logits = self.outputs.masked_fill(~self.category_slots, float("-inf"))
        logits = torch.where(self.categorical.unsqueeze(-1), logits, torch.zeros_like(logits))
        return F.log_softmax(logits, dim=-1)

    @property
    def mean(self) -> torch.Tensor:  # type: ignore[override]
        mode = self.category_logits().argmax(-1).to(self.outputs.dtype)
        binary = (self.first > 0).to(self.outputs.dtype)
        return torch.where(self.real, self.first, torch.where(self.binary, binary, mode))

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        shape = torch.broadcast_shapes(x.shape, self.first.shape)
        x = torch.nan_to_num(x.to(self.outputs.dtype)).expand(shape)
        first = self.first.expand(shape)
        real = gaussian_log_prob(x, first, torch.full_like(first, self.log_std))
        binary = -F.binary_cross_entropy_with_logits(first, x.clamp(0, 1), reduction="none")
        index = x.round().long().clamp(0, self.types.width - 1).unsqueeze(-1)
        categorical = self.category_logits().expand(*shape, -1).gather(-1, index).squeeze(-1)
        return torch.where(self.real, real, torch.where(self.binary, binary, categorical))

    def sample(self, generator: torch.Generator | None = None) -> torch.Tensor:
        real = self.first + math.exp(self.log_std) * randn_like(self.first, generator=generator)
        u = torch.rand(self.first.shape, generator=generator, device=self.first.device, dtype=self.first.dtype)
        binary = (u < torch.sigmoid(self.first)).to(self.first.dtype)
        # Gumbel-max: an exact draw from each categorical column's softmax
        gumbel = -torch.log(-torch.log(torch.rand(self.outputs.shape, generator=generator, device=self.outputs.device,
                                                   dtype=self.outputs.dtype).clamp_min(1e-12)))
        categorical = (self.category_logits() + gumbel).argmax(-1).to(self.first.dtype)
        return torch.where(self.real, real, torch.where(self.binary, binary, categorical))


class MarginalVAEs(nn.Module):
    """The D marginal VAEs of Stage 1, evaluated together: each column has its own one-hidden-layer
    encoder x_d -> (μ_d, σ_d) and decoder z_d -> its likelihood's parameters (no weights shared)."""

    def __init__(self, types: ColumnTypes, hidden: int = 64):
        super().__init__()
        self.types = types
        d, width = len(types), types.width
        self.encoder = nn.Sequential(ColumnwiseLinear(d, width, hidden), nn.ReLU(), ColumnwiseLinear(d, hidden, 2))
        self.decoder = nn.Sequential(ColumnwiseLinear(d, 1, hidden), nn.ReLU(), ColumnwiseLinear(d, hidden, width))

    def encoder_inputs(self, x: torch.Tensor) -> torch.Tensor:
        """(..., D) -> (..., D, width): a real or binary value in slot 0, a category one-hot."""
        x = torch.nan_to_num(x)
        one_hot = F.one_hot(x.round().long().clamp(0, self.types.width - 1), self.types.width).to(x.dtype)
        value = F.pad(x.unsqueeze(-1), (0, self.types.width - 1))
        return torch.where(self.types.categorical.to(x.device).unsqueeze(-1), one_hot, value)

    def encode(self, x: torch.Tensor) -> DiagonalGaussian:
        """q(z_d | x_d) for every column: mean and std (..., D)."""
        return gaussian_from_logvar(*self.encoder(self.encoder_inputs(x)).unbind(-1))

    def decode(self, z: torch.Tensor) -> MixedLikelihood:
        """p(x_d | z_d) for every column: z (..., D)."""
        return MixedLikelihood(self.decoder(z.unsqueeze(-1)), self.types)

    def elbo(self, x: torch.Tensor, mask: torch.Tensor | None, generator: torch.Generator | None = None) -> torch.Tensor:
        """Σ_d 1(x_d observed) ELBO_d (eq. 5.3), one sample of each z_d: (batch,)."""
        posterior = self.encode(x)
        z = posterior.rsample(None, generator)
        per_column = self.decode(z).log_prob(x) - posterior.kl_per_dimension()
        return masked_sum(per_column, mask)

    def codes(self, x: torch.Tensor, mask: torch.Tensor | None, generator: torch.Generator | None = None,
              sample: bool = False) -> torch.Tensor:
        """z for the dependency model: (..., D), zero-filled where x is missing; posterior means,
        or draws of q(z_d | x_d) with ``sample``."""
        posterior = self.encode(x)
        z = posterior.rsample(None, generator) if sample else posterior.mean
        if mask is None:
            return z
        return torch.where(mask, z, torch.zeros((), dtype=z.dtype, device=z.device))


@dataclass
class MixedConfig(ModelConfig):
    column_names: tuple[str, ...] = ()
    column_kinds: tuple[str, ...] = ()
    n_categories: tuple[int, ...] = ()  # per column (0 for real columns)
    marginal_hidden: int = 64
    dependency: dict[str, Any] = field(default_factory=dict)  # the dependency model's config (JSON)


class MixedTypeModel(LatentVariableModel, PredictorModel, TableModel):
    """Marginal VAEs + a dependency model (``dependency_key``); see the module docstring.

    Everything but data-space decoding and the marginal stage is the dependency model's, called on
    the codes of x: each such member below is one call of the dependency model's."""

    config_class = MixedConfig
    dependency_key: ClassVar[str] = ""

    def __init__(self, config: MixedConfig):
        super().__init__(config)
        self.types = ColumnTypes(config.column_kinds, config.n_categories)
        self.marginals = MarginalVAEs(self.types, config.marginal_hidden)
        dependency_class = MODEL_REGISTRY[self.dependency_key]
        if dependency_class.native_sampler != self.native_sampler:
            raise TypeError(f"{type(self).__name__} samples by {self.native_sampler!r} but its dependency model "
                            f"{dependency_class.__name__} by {dependency_class.native_sampler!r}")
        dependency_config = dependency_class.config_class.from_json(dict(config.dependency))
        if tuple(dependency_config.input_shape) != (len(self.types),):
            raise ValueError(f"the dependency model must take the {len(self.types)} marginal codes, "
                             f"got input_shape {dependency_config.input_shape}")
        self.dependency = dependency_class(dependency_config)

    # -- the dependency model's own members ------------------------------------------------------
    @property
    def latent_dims(self) -> list[int]:
        return self.dependency.latent_dims

    @property
    def has_predictor(self) -> bool:
        return self.dependency.has_predictor

    @property
    def target_kind(self) -> str | None:
        return self.dependency.target_kind

    def layer_slices(self) -> list[slice]:
        return self.dependency.layer_slices()

    def generative_parameters(self) -> list[nn.Parameter]:
        return self.dependency.generative_parameters()

    def encoder_parameters(self) -> list[nn.Parameter]:
        return self.dependency.encoder_parameters()

    def kl_weight(self) -> float:
        return self.dependency.kl_weight()

    def sample_prior(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        return self.dependency.sample_prior(n, generator)

    # -- the dependency model's members, on the codes of x ---------------------------------------------
    def encode(self, x: Tensor, mask: Tensor | None = None, y: Tensor | None = None,
               y_mask: Tensor | None = None) -> DiagonalGaussian:
        """q(ε | z_O, y_O), z the marginal codes of x."""
        return self.dependency.encode(self.codes(x, mask), mask, y=y, y_mask=y_mask)

    def log_likelihood_terms(self, x: Tensor, mask: Tensor | None, z: Tensor, y: Tensor | None = None,
                             y_mask: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
        """(log p(z_O | h_1), log p(y_O | ẑ, h_1)), z the marginal codes of x."""
        return self.dependency.log_likelihood_terms(self.codes(x, mask), mask, z, y=y, y_mask=y_mask)

    def predict_y(self, x: Tensor, mask: Tensor | None, z: Tensor) -> Tensor:
        return self.dependency.predict_y(self.codes(x, mask), mask, z)

    def posterior_draws(self, x: Tensor, mask: Tensor | None, n_samples: int, generator: torch.Generator | None = None,
                        *, y: Tensor | None = None, y_mask: Tensor | None = None) -> PosteriorDraws:
        """Encoder, SNIS or HMC draws, as the dependency model's."""
        return self.dependency.posterior_draws(self.codes(x, mask), mask, n_samples, generator=generator, y=y,
                                               y_mask=y_mask)

    def elbo(self, x: Tensor, mask: Tensor | None = None, *, n_samples: int = 1, beta: float | None = None,
             generator: torch.Generator | None = None, y: Tensor | None = None, y_mask: Tensor | None = None,
             kl_balance: bool = False) -> ModelOutput:
        """The dependency ELBO (5.4); while training, the codes are drawn with ``generator``."""
        return self.dependency.elbo(self.codes(x, mask, generator), mask, n_samples=n_samples, beta=beta,
                                    generator=generator, y=y, y_mask=y_mask, kl_balance=kl_balance)

    def objective(self, x: Tensor, mask: Tensor | None, y: Tensor | None = None, y_mask: Tensor | None = None, *,
                  generator: torch.Generator | None = None, warmup: bool = False,
                  kl_scale: float = 1.0) -> ModelOutput:
        """The dependency model's Stage-2 objective; while training, the codes are drawn with ``generator``."""
        return self.dependency.objective(self.codes(x, mask, generator), mask, y=y, y_mask=y_mask,
                                         generator=generator, warmup=warmup, kl_scale=kl_scale)

    @property
    def target_sigma(self) -> float:
        return float(self.dependency.config.target_sigma)

    def freeze_marginals(self) -> None:
        """End of Stage 1: the marginal VAEs are fixed from now on (Algorithm 1)."""
        self.marginals.requires_grad_(False)

    def codes(self, x: torch.Tensor, mask: torch.Tensor | None, generator: torch.Generator | None = None) -> torch.Tensor:
        # while training, fresh draws of q(z_d | x_d) (eq. 5.4); otherwise their means
        return self.marginals.codes(x, mask, generator, sample=self.training)

    def decode(self, z: torch.Tensor) -> MixedLikelihood:
        """p(x | ε): the decoder mean of the codes at h_1(ε), through each column's marginal decoder."""
        return self.marginals.decode(self.dependency.decode(z).mean)

    def marginal_objective(self, x: torch.Tensor, mask: torch.Tensor | None,
                           generator: torch.Generator | None = None) -> torch.Tensor:
        """Stage 1's loss: minus the mean over rows of Σ_d 1(x_d observed) ELBO_d (eq. 5.3)."""
        return -self.marginals.elbo(x, mask, generator).mean()


class MixedTunedHMC(TunedHMCModel):
    """The members of ``TunedHMCModel`` for a mixed-type model whose dependency model samples by
    tuned HMC (Stage 3 of Algorithm 1): the dependency model's, on the codes of x."""

    dependency: Any

    @property
    def hmc(self) -> HMCHyperparameters:
        return self.dependency.hmc

    def initial_step_sizes(self) -> Tensor:
        return self.dependency.initial_step_sizes()

    def posterior_logdensity(self, x: Tensor, mask: Tensor | None, y: Tensor | None = None,
                             y_mask: Tensor | None = None):
        """The dependency model's HMC target on the codes of x (their means)."""
        return self.dependency.posterior_logdensity(self.codes(x, mask), mask, y, y_mask)

    def posterior_samples(self, x: Tensor, mask: Tensor | None, y: Tensor | None = None,
                          y_mask: Tensor | None = None, *, n_chains: int = 30, generator: torch.Generator | None = None,
                          record_chain: bool = False) -> HMCResult:
        return self.dependency.posterior_samples(self.codes(x, mask), mask, y=y, y_mask=y_mask, n_chains=n_chains,
                                                 generator=generator, record_chain=record_chain)

    def hmc_losses(self, x: Tensor, mask: Tensor | None, y: Tensor | None = None, y_mask: Tensor | None = None, *,
                   n_chains: int | None = None, generator: torch.Generator | None = None) -> HMCTrainingLosses:
        """Stage 3's losses; while training, the codes are drawn with ``generator``."""
        return self.dependency.hmc_losses(self.codes(x, mask, generator), mask, y=y, y_mask=y_mask, n_chains=n_chains,
                                          generator=generator)


MIXED_MODELS = ("vaem", "miwaem", "hvaem", "hmcvaem", "hhvaem")
