import math

import pytest
import torch
from scipy import stats

from vizvae.inference.importance import evaluate_bounds, iwae_bound
from vizvae.models import VAE, DiagonalGaussian, GaussianLikelihood, VAEConfig
from vizvae.models.distributions import BernoulliLikelihood


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def test_analytic_kl_matches_monte_carlo():
    mean = torch.tensor([[0.5, -1.0, 2.0]])
    std = torch.tensor([[0.3, 1.5, 0.8]])
    q = DiagonalGaussian(mean, std)
    z = q.rsample(200_000, gen())
    monte_carlo = (q.log_prob(z) - (-0.5 * (z ** 2 + math.log(2 * math.pi)).sum(-1))).mean()
    assert abs(monte_carlo.item() - q.kl_standard_normal().item()) < 0.02
    # and the closed form itself: Σ ½(μ² + σ² − 1 − log σ²)
    expected = sum(0.5 * (m ** 2 + s ** 2 - 1 - math.log(s ** 2)) for m, s in zip(mean[0].tolist(), std[0].tolist()))
    assert q.kl_standard_normal().item() == pytest.approx(expected, rel=1e-6)


def test_likelihoods_match_scipy():
    x = torch.tensor([0.3, -1.2, 2.0])
    mean, log_std = torch.tensor([0.0, -1.0, 1.0]), torch.tensor([0.0, -0.5, 0.7])
    ours = GaussianLikelihood(mean, log_std).log_prob(x)
    theirs = stats.norm(mean.numpy(), log_std.exp().numpy()).logpdf(x.numpy())
    torch.testing.assert_close(ours, torch.tensor(theirs, dtype=torch.float32))
    logits = torch.tensor([0.2, -3.0, 4.0])
    bits = torch.tensor([1.0, 0.0, 0.0])
    theirs = stats.bernoulli(torch.sigmoid(logits).numpy()).logpmf(bits.numpy())
    torch.testing.assert_close(BernoulliLikelihood(logits).log_prob(bits), torch.tensor(theirs, dtype=torch.float32))


@pytest.mark.parametrize("architecture", ["mlp", "cnn"])
@pytest.mark.parametrize("likelihood,sigma_mode", [("bernoulli", "fixed"), ("gaussian", "fixed"),
                                                   ("gaussian", "global"), ("gaussian", "learned")])
def test_shapes_for_every_variant(architecture, likelihood, sigma_mode):
    torch.manual_seed(0)
    model = VAE(VAEConfig(input_shape=(1, 12, 10), latent_dim=3, hidden_dims=(32,), architecture=architecture,
                          likelihood=likelihood, sigma_mode=sigma_mode))
    x = torch.rand(5, 120)
    out = model.elbo(x, generator=gen())
    assert out.elbo.shape == (5,) and torch.isfinite(out.loss)
    out.loss.backward()
    z = torch.randn(7, 4, 5, 3)  # arbitrary leading dims decode in one batch
    assert model.decode(z).mean.shape == (7, 4, 5, 120)
    assert model.log_joint(x, None, z).shape == (7, 4, 5)
    assert model.generate(6).shape == (6, 120)
    if sigma_mode == "global":
        assert model.decoder.head.log_sigma.grad is not None


def test_missing_entries_do_not_reach_the_likelihood_or_encoder():
    torch.manual_seed(0)
    model = VAE(VAEConfig(input_shape=(20,), latent_dim=2, hidden_dims=(16,), likelihood="gaussian"))
    x = torch.randn(4, 20)
    mask = torch.rand(4, 20, generator=gen()) > 0.5
    changed = torch.where(mask, x, x + 100.0)  # garbage in the hidden entries only
    z = torch.randn(4, 2)
    torch.testing.assert_close(model.log_likelihood(x, mask, z), model.log_likelihood(changed, mask, z))
    q1, q2 = model.encode(x, mask), model.encode(changed, mask)
    torch.testing.assert_close(q1.mean, q2.mean)


def test_iwae_grows_with_k_and_equals_elbo_at_one():
    torch.manual_seed(0)
    model = VAE(VAEConfig(input_shape=(10,), latent_dim=2, hidden_dims=(16,), likelihood="gaussian"))
    x = torch.randn(64, 10)
    b1 = iwae_bound(model, x, n_importance=1, generator=gen(1)).mean()
    b10 = iwae_bound(model, x, n_importance=10, generator=gen(2)).mean()
    b1000 = iwae_bound(model, x, n_importance=1000, generator=gen(3), chunk_size=300).mean()
    assert b1 < b10 < b1000
    # IWAE_1 is a single-sample ELBO: its average matches the analytic-KL ELBO within 4 standard
    # errors of the paired difference of the two Monte Carlo estimates
    elbo = torch.stack([model.elbo(x, generator=gen(s)).elbo.mean() for s in range(50)])
    b1 = torch.stack([iwae_bound(model, x, n_importance=1, generator=gen(1000 + s)).mean() for s in range(50)])
    difference = elbo - b1  # (50,)
    standard_error = difference.std() / math.sqrt(len(difference))
    assert abs(difference.mean()) < 4 * standard_error
    assert standard_error < 0.01 * abs(elbo.mean())  # the check is sharper than the old 5 % of |ELBO|


def test_trained_model_bounds_are_ordered(shipped_vae_2d, mnist):
    x = torch.as_tensor(mnist.x_test[:300])
    bounds = evaluate_bounds(shipped_vae_2d.model, x, ks=(5, 50), seed=0)
    assert bounds["elbo"] <= bounds["iwae_5"] <= bounds["iwae_50"]


def test_shipped_vae_beats_an_untrained_one(shipped_vae_2d, mnist):
    x = torch.as_tensor(mnist.x_test)
    trained = evaluate_bounds(shipped_vae_2d.model, x, ks=(), seed=0)["elbo"]
    torch.manual_seed(0)
    untrained = VAE(VAEConfig(**{**shipped_vae_2d.model.config.to_json()}))
    untrained_elbo = evaluate_bounds(untrained.eval(), x, ks=(), seed=0)["elbo"]
    assert trained > untrained_elbo + 200  # untrained ≈ −543 nats (784 log 2), trained ≈ −150
