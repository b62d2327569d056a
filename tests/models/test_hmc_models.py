"""HMC-VAE / HH-VAE, MIWAE and the predictive models' checkpoints: known answers."""

import math

import numpy as np
import pytest
import torch

from vizvae.checkpoint import load_checkpoint, save_checkpoint
from vizvae.data import Dataset
from vizvae.kernels.hmc import LogDensityCounter
from vizvae.models import (
    HHVAE, HMCVAE, MIWAE, HHVAEConfig, HierarchicalVAE, HierarchicalVAEConfig, HMCVAEConfig, MIWAEConfig, PartialVAE,
    PartialVAEConfig,
)
from vizvae.train.stages import StageSettings, train_stages


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


SMALL = dict(input_shape=(12,), hidden_dims=(16,), transform_hidden=8, predictor_hidden_dims=(8,), n_classes=3)


def build(cls, config_cls, **overrides):
    torch.manual_seed(0)
    return cls(config_cls(**{**SMALL, **overrides}))


def binary_data(n=6, d=12, seed=0):
    g = gen(seed)
    x = (torch.rand(n, d, generator=g) > 0.5).float()
    mask = torch.rand(n, d, generator=g) > 0.4
    y = torch.randint(0, 3, (n,), generator=g).float()
    return x, mask, y


@pytest.mark.parametrize("cls,config_cls,overrides", [
    (PartialVAE, PartialVAEConfig, {"latent_dims": (3,)}),
    (HierarchicalVAE, HierarchicalVAEConfig, {"latent_dims": (3, 2)}),
    (MIWAE, MIWAEConfig, {"latent_dims": (3,), "n_importance": 4}),
    (HMCVAE, HMCVAEConfig, {"latent_dims": (3,), "n_transitions": 4, "n_leapfrog": 3}),
    (HHVAE, HHVAEConfig, {"latent_dims": (3, 2), "n_transitions": 4, "n_leapfrog": 3}),
])
def test_checkpoint_round_trip_including_hmc_hyperparameters(tmp_path, cls, config_cls, overrides):
    model = build(cls, config_cls, **overrides)
    if hasattr(model, "hmc"):
        with torch.no_grad():  # trained-looking values, not the initial ones
            model.hmc.log_step_sizes.copy_(torch.linspace(-3, -1, model.hmc.log_step_sizes.numel()).reshape(4, -1))
            model.hmc.log_inflation.copy_(torch.linspace(0.1, 0.5, len(model.hmc.log_inflation)))
    save_checkpoint(model, tmp_path / "ckpt", name="tiny", dataset={"name": "toy"})
    loaded = load_checkpoint(tmp_path / "ckpt").model
    assert type(loaded) is cls and loaded.latent_dims == list(overrides["latent_dims"])
    x, mask, y = binary_data()
    z = torch.randn(2, 6, model.latent_dim, generator=gen(1))
    torch.testing.assert_close(loaded.log_joint(x, mask, z, y, mask[:, 0]), model.log_joint(x, mask, z, y, mask[:, 0]))
    if hasattr(model, "hmc"):
        torch.testing.assert_close(loaded.hmc.step_sizes, model.hmc.step_sizes)
        torch.testing.assert_close(loaded.hmc.inflation, model.hmc.inflation)
        assert loaded.hmc.n_leapfrog == 3 and loaded.hmc.n_transitions == 4


def test_hmc_model_initialises_networks_like_its_gaussian_counterpart():
    # φ is drawn from a private generator, so the same seed gives the same encoder/decoder/predictor
    gaussian = build(PartialVAE, PartialVAEConfig, latent_dims=(3,))
    hmc = build(HMCVAE, HMCVAEConfig, latent_dims=(3,))
    for name, tensor in gaussian.state_dict().items():
        torch.testing.assert_close(hmc.state_dict()[name], tensor)
    assert ((hmc.hmc.step_sizes >= 0.02) & (hmc.hmc.step_sizes <= 0.05)).all()


def test_miwae_bound_increases_with_k_and_is_the_elbo_at_one():
    model = build(MIWAE, MIWAEConfig, latent_dims=(3,))
    x, mask, y = binary_data(n=64, seed=1)
    y_mask = mask[:, 0]
    with torch.no_grad():
        replicates = {k: torch.stack([model.iwae(x, mask, k, gen(s), y, y_mask).mean() for s in range(10)])
                      for k in (1, 5, 50)}
        elbo = torch.stack([model.elbo(x, mask, generator=gen(100 + s), y=y, y_mask=y_mask).elbo.mean()
                            for s in range(10)])
    bounds = {k: values.mean() for k, values in replicates.items()}
    assert bounds[1] < bounds[5] < bounds[50]
    # IWAE_1 and the ELBO estimate the same number: within 4 standard errors of their difference
    difference = replicates[1] - elbo  # (10,), independent seeds
    standard_error = difference.std() / math.sqrt(len(difference))
    assert abs(float(difference.mean())) < 4 * float(standard_error)
    assert standard_error < 0.01 * abs(elbo.mean())
    # the training objective is L_K with K = n_importance
    out = model.objective(x, mask, y, y_mask, generator=gen(7))
    assert torch.isfinite(out.loss) and out.elbo.shape == (64,)


def test_miwae_draws_carry_normalised_importance_weights():
    model = build(MIWAE, MIWAEConfig, latent_dims=(3,))
    x, mask, _ = binary_data()
    draws = model.posterior_draws(x, mask, 10, gen())
    assert draws.samples.shape == (6, 10, 3)
    torch.testing.assert_close(draws.log_weights.exp().sum(-1), torch.ones(6))


def test_hmc_vae_posterior_samples_match_the_exact_linear_gaussian_posterior():
    # Linear decoder x = W z + b + N(0, σ²): p(z | x_O) is Gaussian with precision I + W_Oᵀ W_O / σ²
    sigma = 0.5
    model = build(HMCVAE, HMCVAEConfig, input_shape=(5,), latent_dims=(2,), decoder_hidden_dims=(), likelihood="gaussian",
                  sigma=sigma, target=None, n_transitions=30, n_leapfrog=5)
    W = torch.tensor([[1.0, 0.5], [-0.3, 0.8], [0.7, -1.2], [0.2, 0.4], [-1.0, 0.1]])
    b = torch.tensor([0.1, -0.2, 0.0, 0.3, 0.5])
    with torch.no_grad():
        model.decoder.body[0].weight.copy_(W)
        model.decoder.body[0].bias.copy_(b)
        # step sizes that differ between transitions avoid the near-periodic trajectories a fixed
        # step would give on a Gaussian, so 30 transitions forget the (untrained) encoder's start
        steps = torch.linspace(0.12, 0.45, 30)[torch.randperm(30, generator=gen(0))]
        model.hmc.log_step_sizes.copy_(steps.log().unsqueeze(-1).expand(30, 2))
    x = torch.tensor([[1.0, 0.5, -1.5, 0.8, -0.2]])
    mask = torch.tensor([[True, True, False, True, True]])  # the third entry is missing
    W_o, r_o = W[mask[0]], (x - b)[0][mask[0]]
    precision = torch.eye(2) + W_o.T @ W_o / sigma ** 2
    covariance = torch.linalg.inv(precision)
    mean = covariance @ W_o.T @ r_o / sigma ** 2
    result = model.posterior_samples(x, mask, n_chains=4000, generator=gen(3))
    samples = result.samples[0]  # (chains, 2)
    assert result.samples.shape == (1, 4000, 2) and result.n_transitions == 30
    torch.testing.assert_close(samples.mean(0), mean, atol=0.03, rtol=0)
    torch.testing.assert_close(torch.cov(samples.T), covariance, atol=0.02, rtol=0.1)
    assert result.acceptance_rate() > 0.5


def test_posterior_samples_cost_exactly_lf_gradients_per_transition():
    model = build(HHVAE, HHVAEConfig, latent_dims=(3, 2), n_transitions=4, n_leapfrog=3)
    x, mask, _ = binary_data(n=2)
    counter = LogDensityCounter(model.posterior_logdensity(x, mask))
    proposal = model.encode(x, mask)
    result = model.hmc.sample(counter, proposal.mean.detach(), proposal.std.detach(), 7, generator=gen())
    assert counter.n_calls == 4 * 3 + 1 and result.samples.shape == (2, 7, 5)
    recorded = model.posterior_samples(x, mask, n_chains=7, generator=gen(), record_chain=True)
    assert recorded.chain.shape == (5, 2, 7, 5)


def toy_dataset(n=48, d=12, classes=3):
    rng = np.random.default_rng(0)
    x = (rng.random((n, d)) > 0.5).astype(np.float32)
    y = rng.integers(0, classes, n).astype(np.float32)
    return Dataset(name="toy", kind="table", x_train=x, y_train=y, x_test=x[:8], y_test=y[:8],
                   feature_names=[f"f{i}" for i in range(d)])


def test_stage_three_trains_each_part_on_its_own_loss():
    model = build(HHVAE, HHVAEConfig, latent_dims=(3, 2), n_transitions=3, n_leapfrog=2, sksd_chains=6)
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    records = train_stages(model, toy_dataset(), StageSettings(steps=4, hmc_steps=3, batch_size=16, hmc_batch_size=4,
                                                               eval_rows=8))
    assert [r["name"] for r in records] == ["stage 2: VI", "stage 3: HMC"]
    history = records[1]["history"]
    assert history["step"] == [1, 2, 3] and len(history["inflation"][0]) == 2
    assert all(0.0 <= a <= 1.0 for a in history["mean_acceptance"])
    changed = {name for name, p in model.named_parameters() if not torch.equal(p, before[name])}
    assert {"hmc.log_step_sizes", "hmc.log_inflation"} <= changed  # Stage 2 leaves them alone
    assert any(n.startswith("encoder.") for n in changed) and any(n.startswith("decoder.") for n in changed)
    assert any(n.startswith("predictor.") for n in changed) and any(n.startswith("transform.") for n in changed)
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_stage_two_does_not_touch_the_hmc_hyperparameters():
    model = build(HMCVAE, HMCVAEConfig, latent_dims=(3,))
    step_sizes = model.hmc.step_sizes.detach().clone()
    train_stages(model, toy_dataset(), StageSettings(steps=3, hmc_steps=0, batch_size=16, eval_rows=8))
    torch.testing.assert_close(model.hmc.step_sizes, step_sizes)
