"""UG-VAE (thesis Ch. 4) against answers known in closed form."""

import math

import numpy as np
import pytest
import torch

from vizvae.checkpoint import load_checkpoint, save_checkpoint
from vizvae.models import GMVAE, MLVAE, UGVAE, UGVAEConfig
from vizvae.models.capabilities import GroupModel, LatentModel, check_capabilities
from vizvae.models.distributions import DiagonalGaussian
from vizvae.models.ugvae import product_of_gaussians


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def small(cls=UGVAE, **overrides):
    torch.manual_seed(0)
    config = dict(input_shape=(1, 6, 5), latent_dim=3, global_dim=2, clusters=4, hidden_dim=16, group_size=8)
    config.update(overrides)
    return cls(UGVAEConfig(**config))


def test_product_of_gaussians_matches_the_hand_computed_example():
    # two 1-D factors: N(1, 1) and N(3, 1/3) -> precisions 1 and 3, Λ = 4, μ = (1·1 + 3·3)/4 = 2.5
    # second dimension: N(0, 4), N(2, 4), N(-2, 1) -> Λ = ¼ + ¼ + 1 = 1.5, μ = (0 + ½ − 2)/1.5 = −1
    mean = torch.tensor([[1.0, 0.0], [3.0, 2.0], [0.0, -2.0]])
    var = torch.tensor([[1.0, 4.0], [1 / 3, 4.0], [1e12, 1.0]])  # a huge variance: a factor with no say
    product = product_of_gaussians(mean, var.log(), dim=-2)
    torch.testing.assert_close(product.mean, torch.tensor([2.5, -1.0]))
    torch.testing.assert_close(product.std ** 2, torch.tensor([0.25, 1 / 1.5]))


def test_product_of_gaussians_is_the_normalised_product():
    # log Π_i N(β; μ_i, σ_i²) − log N(β; μ, σ²) must not depend on β
    torch.manual_seed(1)
    mean, logvar = torch.randn(5, 3), torch.randn(5, 3)
    product = product_of_gaussians(mean, logvar, dim=-2)
    beta = torch.randn(7, 3)
    factors = DiagonalGaussian(mean, (0.5 * logvar).exp())
    log_factors = factors.log_prob(beta[:, None, :]).sum(-1)  # (7,)
    difference = log_factors - product.log_prob(beta)
    assert difference.std() < 1e-4


def test_the_global_posterior_is_eq_4_9_of_the_per_sample_factors():
    model = small()
    x = torch.rand(8, 30)
    posterior = model.global_posterior(x)
    # by hand: per-sample factors from φ_β([h(x_i), π(z_i)]) at the encoder means, then eq. (4.9)
    h = model.pre_encoder(x)
    z = model.encode(x).mean
    out = model.global_head(torch.cat([h, model.cluster_probs(z)], -1)).detach().numpy()
    mu_i, precision_i = out[:, :2], np.exp(-out[:, 2:])
    precision = precision_i.sum(0)
    expected_mean = (precision_i * mu_i).sum(0) / precision
    np.testing.assert_allclose(posterior.mean.detach().numpy(), expected_mean, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(posterior.std.detach().numpy(), precision ** -0.5, rtol=1e-5)
    # groups stack: (G, B, features) -> (G, g), each group on its own
    stacked = model.global_posterior(torch.stack([x, x.flip(0), x[:4].repeat(2, 1)]))
    assert stacked.mean.shape == (3, 2)
    torch.testing.assert_close(stacked.mean[0], posterior.mean)
    torch.testing.assert_close(stacked.mean[1], posterior.mean)  # a group is a set: order does not matter


@pytest.mark.parametrize("cls,overrides", [(UGVAE, {}), (MLVAE, {"clusters": 1}), (GMVAE, {"global_dim": 0})])
def test_analytic_sum_over_clusters_equals_monte_carlo_over_sampled_clusters(cls, overrides):
    model = small(cls, **overrides)
    x = (torch.rand(8, 30) > 0.5).float()
    with torch.no_grad():
        analytic = model.elbo(x, generator=gen(3))
        sampled = model.elbo(x, generator=gen(3), cluster_samples=40_000)  # same z and β, then d ~ q(d | z)
    torch.testing.assert_close(sampled.log_likelihood, analytic.log_likelihood)  # the same draws of z and β
    torch.testing.assert_close(sampled.extras["kl_beta"], analytic.extras["kl_beta"])
    torch.testing.assert_close(sampled.elbo, analytic.elbo, atol=0.05, rtol=0)
    assert analytic.extras["kl_d"].min() >= -1e-6  # a KL to the uniform Cat(1/K)
    if model.clusters == 1:
        assert torch.all(analytic.extras["kl_d"].abs() < 1e-6)


def test_elbo_is_a_monte_carlo_average_of_the_joint_minus_q():
    """ELBO = E_q(Z,d,β)[log p(X,Z,d,β) − log q(Z,d,β|X)], estimated here term by term with
    sampled d and log q(z|x) at the sample (the model uses the analytic sum over d and the
    analytic entropy of q(z|x)); the two agree in expectation over many draws."""
    model = small()
    x = (torch.rand(8, 30) > 0.5).float()
    draws = 2000
    with torch.no_grad():
        analytic = torch.stack([model.elbo(x, generator=gen(s)).elbo.sum() for s in range(100)]).mean()
        inferred = model.infer(x, n_samples=draws, generator=gen(10_000))
        z = inferred.z  # (S, B, dz)
        beta = inferred.global_posterior.rsample(None, gen(10_001))  # (S, g)
        d = torch.distributions.Categorical(logits=inferred.cluster_logits).sample()  # (S, B)
        log_q_d = inferred.cluster_logits.log_softmax(-1).gather(-1, d[..., None])[..., 0]
        log_p_z = model.cluster_log_prob(z, beta).gather(-1, d[..., None])[..., 0]
        log_p_x = model.decode_group(z, beta[:, None, :]).log_prob(x).sum(-1)
        joint = (log_p_x + log_p_z - math.log(model.clusters)).sum(-1) - 0.5 * (beta ** 2).sum(-1) \
            - 0.5 * beta.shape[-1] * math.log(2 * math.pi)
        q = (inferred.local.log_prob(z) + log_q_d).sum(-1) + inferred.global_posterior.log_prob(beta)
        monte_carlo = (joint - q).mean()
    assert abs(float(monte_carlo - analytic)) < 1.0  # group ELBO of ≈ −170 nats


@pytest.mark.parametrize("clusters", [1, 2, 4, 8])
def test_more_clusters_never_hurt_the_iwae_bound_direction(clusters):
    """For every number of clusters (the sum over d is analytic in both bounds) IWAE_200 lies above
    the ELBO, by more than 4 standard errors of their difference over 10 seeds."""
    model = small(clusters=clusters)
    assert model.clusters == clusters
    x = (torch.rand(64, 30, generator=gen(1)) > 0.5).float()  # 8 groups of 8
    lead = torch.tensor([bounds["test_iwae_200"] - bounds["test_elbo"]
                         for bounds in (model.evaluate_group_bounds(x, ks=(200,), seed=s) for s in range(10))])
    standard_error = lead.std() / math.sqrt(len(lead))
    assert lead.mean() > 4 * standard_error


def test_training_reduces_the_loss_and_gradients_reach_every_part():
    model = small()
    x = (torch.rand(8, 30) > 0.5).float()
    out = model.elbo(x, generator=gen())
    out.loss.backward()
    for name in ("pre_encoder.0.weight", "local_head.weight", "cluster_head.0.weight", "global_head.weight",
                 "cluster_priors.w1", "cluster_priors.w2", "decoder.0.weight"):
        assert model.get_parameter(name).grad.abs().sum() > 0, name
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    first = None
    for step in range(30):
        loss = model.elbo(x, generator=gen(step)).loss
        first = float(loss.detach()) if first is None else first
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert float(loss.detach()) < first - 1.0


def test_prior_samples_share_beta_within_a_group():
    model = small()
    z, beta, d = model.sample_latents(20, gen(), group_size=8)
    assert z.shape == (20, 3) and beta.shape == (20, 2) and d.shape == (20,)
    assert torch.equal(beta[:8], beta[:1].expand(8, 2)) and not torch.equal(beta[0], beta[8])
    assert torch.equal(beta[16:], beta[16:17].expand(4, 2))
    assert model.generate(20, gen()).shape == (20, 30)
    # a fixed cluster and β: every z is drawn from that one component
    z, beta, d = model.sample_latents(500, gen(), beta=torch.zeros(2), cluster=2)
    prior = model.cluster_prior(torch.zeros(2))
    torch.testing.assert_close(z.mean(0), prior.mean[2].detach(), atol=0.25, rtol=0)
    assert torch.all(d == 2)


def test_decode_group_is_the_per_row_decode_of_z_beside_the_shared_beta():
    model = small()
    z, beta = torch.randn(4, 3), torch.randn(2)
    torch.testing.assert_close(model.decode_group(z, beta).mean, model.decode(torch.cat([z, beta.expand(4, 2)], -1)).mean)
    with pytest.raises(ValueError):
        model.decode(z)  # a row's latent is [z, β]
    assert model.cluster_prior(torch.randn(7, 2)).mean.shape == (7, 4, 3)
    assert model.cluster_probs(z).sum(-1).detach().numpy() == pytest.approx(np.ones(4))


@pytest.mark.parametrize("cls", [UGVAE, MLVAE, GMVAE])
def test_the_family_is_a_group_model_and_not_a_per_row_one(cls):
    config = {"clusters": 1} if cls is MLVAE else ({"global_dim": 0} if cls is GMVAE else {})
    model = small(cls, **config)
    check_capabilities(model)
    assert isinstance(model, GroupModel) and not isinstance(model, LatentModel)
    assert type(model).native_sampler == "encoder"


def test_baselines_are_ugvae_with_one_cluster_or_no_global_variable():
    with pytest.raises(ValueError):
        small(MLVAE, clusters=3)
    with pytest.raises(ValueError):
        small(GMVAE, global_dim=2)
    gmvae = small(GMVAE, global_dim=0)
    assert gmvae.latent_dims == [3]
    assert gmvae.global_posterior(torch.rand(8, 30)).mean.shape == (0,)
    assert small(MLVAE, clusters=1).latent_dims == [3, 2]


@pytest.mark.parametrize("cls,overrides", [(UGVAE, {}), (MLVAE, {"clusters": 1}), (GMVAE, {"global_dim": 0})])
def test_checkpoint_round_trip(tmp_path, cls, overrides):
    model = small(cls, **overrides).eval()
    save_checkpoint(model, tmp_path / "m", name="m", dataset={"name": "toy", "kind": "image", "image_shape": [1, 6, 5]})
    loaded = load_checkpoint(tmp_path / "m", device="cpu")
    assert type(loaded.model) is cls and loaded.config["model"] == cls.model_key
    assert loaded.model.config == model.config
    x = torch.rand(8, 30)
    with torch.no_grad():
        torch.testing.assert_close(loaded.model.global_posterior(x).mean, model.global_posterior(x).mean)
        torch.testing.assert_close(loaded.model.reconstruct(x), model.reconstruct(x))
        torch.testing.assert_close(loaded.model.elbo(x, generator=gen()).elbo, model.elbo(x, generator=gen()).elbo)
