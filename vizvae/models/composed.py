"""One per-row latent model composed of parts, of which every per-row family but the UG-VAE's is a
combination (``vizvae.models.families``).

The parts, each under its attribute name (which is also its prefix in the saved weights):

* ``encoder`` — q(z | x_O) (and y_O where the model has a target): the per-row ``GaussianEncoder``
  (MLP or CNN; the VAE) or the ε-space ``BottomUpEncoder``; a family names it as ``encoder_part``;
* ``transform`` — what the decoder sees of z: ``IdentityTransform`` or the ε-space hierarchy
  ``TopDownTransform`` (h_1(ε), eq. 5.5); a family names it as ``transform_part``;
* ``decoder`` — the one ``Decoder`` with its likelihood, fed the transform's output;
* prior — N(0, I) over z (``LatentVariableModel.log_prior``);
* ``predictor`` — p(y | x̂, h_1) (thesis §5.2.3), in a family that declares ``WithPredictor`` and
  whose config names a target; None otherwise;
* ``sampler`` — the posterior sampler (``vizvae.models.samplers``): encoder draws, importance
  weights (MIWAE) or tuned HMC, named by the family as ``sampler_part``. The model's
  ``native_sampler`` is that part's name; the HMC part's trained hyper-parameters are registered as
  ``hmc``.

The add-ons below hold the members a family gets with a part, declared only by the families that
have it: ``WithPredictor`` (``PredictorModel``), ``ImportanceSampled`` and ``TunedHMCSampled``
(``TunedHMCModel``).
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from vizvae.kernels.hmc import HMCResult, LogDensityFn, layer_slices_from_sizes
from vizvae.kernels.stein import HMCTrainingLosses
from vizvae.models.base import DataConfig, LatentVariableModel, ModelOutput, PosteriorDraws
from vizvae.models.capabilities import PredictorModel, TunedHMCModel
from vizvae.models.distributions import DiagonalGaussian, Likelihood, masked_sum
from vizvae.models.hierarchical import HHVAEConfig, MIWAEConfig, predictor_part
from vizvae.models.samplers import EncoderSampler, ImportanceSampler, PosteriorSampler, TunedHMCSampler
from vizvae.models.vae import Decoder


def posterior_sampler(part: type[PosteriorSampler], config: DataConfig) -> PosteriorSampler:
    """The sampler part ``part``, with its settings from ``config``."""
    if part is EncoderSampler:
        return EncoderSampler()
    if part is ImportanceSampler and isinstance(config, MIWAEConfig):
        return ImportanceSampler(config.n_importance)
    if part is TunedHMCSampler and isinstance(config, HHVAEConfig):
        return TunedHMCSampler(config.latent_dims, config.n_transitions, config.n_leapfrog, config.step_size_low,
                               config.step_size_high, config.initial_inflation, config.sksd_chains, config.hmc_seed)
    raise TypeError(f"no {part.name!r} sampler can be built from a {type(config).__name__}")


class ComposedVAE(LatentVariableModel):
    """A per-row latent model composed of its parts (see the module docstring). A registered family
    names its config class and its encoder, transform and sampler parts, and declares the add-ons
    of the parts it has; it holds no logic of its own."""

    encoder_part: ClassVar[Any]  # a part class with ``from_config(config)``
    transform_part: ClassVar[Any]
    sampler_part: ClassVar[type[PosteriorSampler]]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "sampler_part" in vars(cls):  # the family's own sampler is the part it names
            cls.native_sampler = cls.sampler_part.name

    def __init__(self, config: Any):
        super().__init__(config)
        self.encoder = self.encoder_part.from_config(config)
        self.transform = self.transform_part.from_config(config)
        self.decoder = Decoder(config.input_shape, config.latent_dims[0], config.decoder_hidden, config.likelihood,
                               config.sigma_mode, config.sigma, config.architecture)  # fed h_1
        self.predictor = predictor_part(config) if isinstance(self, WithPredictor) else None
        self.sampler = posterior_sampler(self.sampler_part, config)
        for name, module in self.sampler.state().items():  # saved with the weights under their own names
            self.add_module(name, module)

    @property
    def latent_dims(self) -> list[int]:
        return list(self.config.latent_dims)

    def kl_weight(self) -> float:
        """β of the loss: the config's (1 but for a β-VAE)."""
        return self.config.beta

    def layer_slices(self) -> list[slice]:
        """Latent dimensions of each layer (ε_l of an ε-space hierarchy) inside the concatenated z."""
        return layer_slices_from_sizes(self.latent_dims)

    # -- the parts ------------------------------------------------------------------------
    def encode(self, x: torch.Tensor, mask: torch.Tensor | None = None, y: torch.Tensor | None = None,
               y_mask: torch.Tensor | None = None) -> DiagonalGaussian:
        """q(z | x_O, y_O): (batch, latent); y_O reaches only an encoder that takes a target."""
        return self.encoder(x, mask, y, y_mask)

    def hidden(self, z: torch.Tensor) -> torch.Tensor:
        """h_1(z), (..., d_1): what the decoder and the predictor see."""
        return self.transform(z)

    def decode(self, z: torch.Tensor) -> Likelihood:
        return self.decoder(self.transform(z))

    def observed_decoder(self, columns: torch.Tensor):
        """h_1 -> p(x_columns | h_1), computing only those outputs of the decoder's last layer.

        A log-density that only needs x_O (no predictor term) need not decode the missing pixels:
        for one image with half its pixels hidden this halves the dominant matmul of every HMC
        gradient evaluation. None when the decoder is not an MLP with one output per feature."""
        body, head = self.decoder.body, self.decoder.head
        if not (isinstance(body, nn.Sequential) and isinstance(body[-1], nn.Linear)) or head.n_outputs_per_feature != 1:
            return None
        trunk, last = body[:-1], body[-1]
        weight, bias = last.weight[columns], last.bias[columns]  # (|columns|, hidden), (|columns|,)

        def decode(h1: torch.Tensor) -> Likelihood:
            lead = h1.shape[:-1]
            out = F.linear(trunk(h1.reshape(-1, h1.shape[-1])), weight, bias)
            return head(out.reshape(*lead, -1))

        return decode

    @staticmethod
    def imputed(x: torch.Tensor, mask: torch.Tensor | None, likelihood: Likelihood) -> torch.Tensor:
        """x̂: observed entries of x, decoder means in the missing ones (broadcast to the decode's shape)."""
        if mask is None:
            return x.expand_as(likelihood.mean)
        return torch.where(mask, x, likelihood.mean)

    # -- derived quantities ------------------------------------------------------------------
    def log_likelihood_terms(self, x, mask, z, y=None, y_mask=None):
        """log p(x_O | h_1) and log p(y_O | x̂, h_1) (None without a predictor or a ``y``) from one
        pass through transform and decoder.

        ``z`` (..., batch, latent) with ``x`` (batch, features), ``y``/``y_mask`` (batch,); any
        extra leading dims on x/y must broadcast (HMC uses x (batch, 1, D), z (batch, chains, latent))."""
        h1 = self.transform(z)
        likelihood = self.decoder(h1)
        log_x = masked_sum(likelihood.log_prob(x), mask)
        if y is None or self.predictor is None:
            return log_x, None
        outputs = self.predictor(self.imputed(x, mask, likelihood), h1)
        return log_x, self.predictor.log_prob(outputs, y, y_mask)

    # -- training and sampling: the sampler part's -----------------------------------------------
    def objective(self, x: torch.Tensor, mask: torch.Tensor | None, y: torch.Tensor | None = None,
                  y_mask: torch.Tensor | None = None, generator: torch.Generator | None = None,
                  warmup: bool = False, kl_scale: float = 1.0) -> ModelOutput:
        """The Stage-2 training objective of the sampler part: the (β-weighted) ELBO (5.6), KL-balanced
        (5.7) during the warm-up and its KL scaled by ``kl_scale`` (KL annealing), or MIWAE's bound L_K."""
        return self.sampler.objective(self, x, mask, y, y_mask, generator, warmup, kl_scale)

    def posterior_draws(self, x: torch.Tensor, mask: torch.Tensor | None, n_samples: int,
                        generator: torch.Generator | None = None, y: torch.Tensor | None = None,
                        y_mask: torch.Tensor | None = None) -> PosteriorDraws:
        """This model's own posterior sampler's draws, (batch, k, latent), with their weights."""
        return self.sampler.draws(self, x, mask, n_samples, generator, y, y_mask)

    def generative_parameters(self) -> list[nn.Parameter]:
        """θ: transform, decoder and predictor — what the HMC objective trains in Stage 3."""
        modules = [self.transform, self.decoder] + ([self.predictor] if self.predictor is not None else [])
        return [p for m in modules for p in m.parameters()]

    def encoder_parameters(self) -> list[nn.Parameter]:
        """ψ: the encoder, trained by the ELBO in every stage."""
        return list(self.encoder.parameters())


class WithPredictor(PredictorModel):
    """The members of ``PredictorModel`` for a composed model with a ``predictor`` part (None when its
    config has ``target=None``)."""

    config: Any
    predictor: Any

    @property
    def has_predictor(self) -> bool:
        return self.predictor is not None

    @property
    def target_kind(self) -> str | None:
        """"categorical" (a label), "gaussian" (a real target) or None (no predictor)."""
        return self.config.target

    def predict_y(self, x: torch.Tensor, mask: torch.Tensor | None, z: torch.Tensor) -> torch.Tensor:
        """p(y | x̂, h_1): (..., batch, classes) probabilities (or (..., batch, 1) Gaussian means)."""
        if self.predictor is None:
            raise NotImplementedError("this model was built without a predictor (target=None)")
        h1 = self.transform(z)
        likelihood = self.decoder(h1)
        return self.predictor.predictive(self.predictor(self.imputed(x, mask, likelihood), h1))


class ImportanceSampled:
    """The members of a composed model whose sampler part is an ``ImportanceSampler`` (MIWAE)."""

    sampler: ImportanceSampler

    def log_importance_weights(self, x: torch.Tensor, mask: torch.Tensor | None, n_importance: int,
                               generator: torch.Generator | None = None, y: torch.Tensor | None = None,
                               y_mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(ε_k (K, batch, latent), log w_k (K, batch)), reparameterised."""
        return self.sampler.log_importance_weights(self, x, mask, n_importance, generator, y, y_mask)

    def iwae(self, x: torch.Tensor, mask: torch.Tensor | None, n_importance: int | None = None,
             generator: torch.Generator | None = None, y: torch.Tensor | None = None,
             y_mask: torch.Tensor | None = None) -> torch.Tensor:
        """The MIWAE bound L_K per data point: (batch,); K defaults to the training bound's."""
        return self.sampler.bound(self, x, mask, n_importance, generator, y, y_mask)


class TunedHMCSampled(TunedHMCModel):
    """The members of ``TunedHMCModel`` for a composed model whose sampler part is a
    ``TunedHMCSampler``; ``hmc`` is that part's hyper-parameters, registered on the model."""

    sampler: TunedHMCSampler

    def initial_step_sizes(self) -> torch.Tensor:
        """The step sizes φ (T, latent) this model started Stage 3 from, drawn again from its seed."""
        return self.sampler.initial_step_sizes()

    def posterior_logdensity(self, x: torch.Tensor, mask: torch.Tensor | None, y: torch.Tensor | None = None,
                             y_mask: torch.Tensor | None = None) -> LogDensityFn:
        """ε (batch, chains, latent) -> log p*(ε) (batch, chains), the HMC target for the rows of ``x``."""
        return self.sampler.logdensity(self, x, mask, y, y_mask)

    def posterior_samples(self, x: torch.Tensor, mask: torch.Tensor | None, y: torch.Tensor | None = None,
                          y_mask: torch.Tensor | None = None, n_chains: int = 30,
                          generator: torch.Generator | None = None, record_chain: bool = False) -> HMCResult:
        """HMC chains (batch, n_chains, latent) from the inflated encoder Gaussian."""
        return self.sampler.samples(self, x, mask, y, y_mask, n_chains, generator, record_chain)

    def hmc_losses(self, x: torch.Tensor, mask: torch.Tensor | None, y: torch.Tensor | None = None,
                   y_mask: torch.Tensor | None = None, n_chains: int | None = None,
                   generator: torch.Generator | None = None) -> HMCTrainingLosses:
        """The Stage-3 losses of Algorithm 1 (HMC objective 5.9, SKSD 5.10) from one HMC run."""
        return self.sampler.losses(self, x, mask, y, y_mask, n_chains, generator)
