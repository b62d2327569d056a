"""H-VAE in ε-space (eqs 5.5–5.7) and the predictor p(y | x̂, h_1) (§5.2.3): known answers."""

import math

import pytest
import torch
import torch.nn.functional as F

from vizvae.models import HHVAE, HHVAEConfig, HierarchicalVAE, HierarchicalVAEConfig, PartialVAE, PartialVAEConfig
from vizvae.models.base import kl_balance_weights, layer_kls


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def tiny_hvae(latent_dims=(3, 2), n_features=12, target="categorical", seed=0):
    torch.manual_seed(seed)
    return HierarchicalVAE(HierarchicalVAEConfig(input_shape=(n_features,), latent_dims=latent_dims, hidden_dims=(16,),
                                                 transform_hidden=8, predictor_hidden_dims=(8,), target=target,
                                                 n_classes=4))


def binary_data(n=5, d=12, seed=0):
    g = gen(seed)
    x = (torch.rand(n, d, generator=g) > 0.5).float()
    mask = torch.rand(n, d, generator=g) > 0.4
    y = torch.randint(0, 4, (n,), generator=g).float()
    return x, mask, y


def test_eps_transform_matches_eq_5_5_by_hand():
    model = tiny_hvae(latent_dims=(2, 1))
    first, _, second = model.transform.nets[0]  # h_2 (1) -> hidden (8) -> [μ (2), σ pre-activation (2)]
    with torch.no_grad():
        first.weight.zero_(); first.bias.zero_(); second.weight.zero_(); second.bias.zero_()
        first.weight[0, 0], first.weight[1, 0] = 1.0, -1.0  # a = (relu(h_2), relu(−h_2))
        second.weight[0, 0], second.bias[0] = 2.0, 0.5  # μ_a = 2 relu(h_2) + 0.5
        second.weight[1, 1], second.bias[1] = -1.0, 0.0  # μ_b = −relu(−h_2)
        second.weight[2, 0], second.bias[2] = 1.0, 0.0  # σ_a = softplus(relu(h_2)) + floor
        second.bias[3] = -1.0  # σ_b = softplus(−1) + floor
    floor = 1e-3
    for e1a, e1b, e2 in [(0.3, -1.2, 0.7), (-0.4, 2.0, -1.5)]:
        eps = torch.tensor([[e1a, e1b, e2]])
        h2 = e2
        mu = (2 * max(h2, 0) + 0.5, -max(-h2, 0))
        sigma = (math.log1p(math.exp(max(h2, 0))) + floor, math.log1p(math.exp(-1.0)) + floor)
        expected = torch.tensor([[mu[0] + sigma[0] * e1a, mu[1] + sigma[1] * e1b]])
        torch.testing.assert_close(model.hidden(eps), expected)
        layers = model.transform.hidden_layers(eps)
        torch.testing.assert_close(layers[1], torch.tensor([[e2]]))  # h_L = ε_L
        torch.testing.assert_close(model.decode(eps).mean, model.decoder(expected).mean)


def test_one_layer_transform_is_the_identity():
    torch.manual_seed(0)
    model = PartialVAE(PartialVAEConfig(input_shape=(6,), latent_dims=(3,), hidden_dims=(8,), predictor_hidden_dims=(4,)))
    eps = torch.randn(4, 3)
    torch.testing.assert_close(model.hidden(eps), eps)


def test_hierarchical_kl_is_sum_of_layer_kls_and_matches_monte_carlo():
    model = tiny_hvae()
    x, mask, y = binary_data(n=2)
    with torch.no_grad():
        q = model.encode(x, mask, y, mask[:, 0])
        # make the posterior clearly non-standard so the check is not trivial
        q = type(q)(q.mean * 3 + 0.5, q.std * 0.4)
        eps = q.rsample(200_000, gen(1))
        monte_carlo = (q.log_prob(eps) - model.log_prior(eps)).mean(0)
    analytic = model.kl(q, eps)
    torch.testing.assert_close(layer_kls(q, model.latent_dims).sum(-1), analytic)
    assert torch.allclose(monte_carlo, analytic, rtol=0.02, atol=0.02)


def test_kl_balance_weights_follow_eq_5_7():
    layer_kl = torch.tensor([[2.0, 1.0], [2.0, 1.0]])  # E_B[KL] = (2, 1), dims (20, 10)
    # γ ∝ d_l E[KL_l] = (40, 10), normalised to sum 1
    torch.testing.assert_close(kl_balance_weights(layer_kl, [20, 10]), torch.tensor([0.8, 0.2]))


def test_kl_balance_changes_the_loss_but_not_the_reported_elbo():
    model = tiny_hvae()
    x, mask, y = binary_data()
    plain = model.elbo(x, mask, generator=gen(3), y=y, y_mask=mask[:, 0])
    balanced = model.elbo(x, mask, generator=gen(3), y=y, y_mask=mask[:, 0], kl_balance=True)
    torch.testing.assert_close(plain.elbo, balanced.elbo)
    assert not torch.isclose(plain.loss, balanced.loss)
    assert balanced.extras["layer_kl"].shape == (5, 2)


def test_predictor_term_is_included_only_where_y_is_observed():
    model = tiny_hvae()
    x, mask, y = binary_data()
    z = torch.randn(3, 5, 5, generator=gen(2))  # (samples, batch, latent)
    none_observed = torch.zeros(5, dtype=torch.bool)
    some_observed = torch.tensor([True, False, True, True, False])
    without = model.log_joint(x, mask, z)
    torch.testing.assert_close(model.log_joint(x, mask, z, y, none_observed), without)
    with_y = model.log_joint(x, mask, z, y, some_observed)
    # log p(y | x̂, h_1) by hand: x̂ = observed pixels, decoder means elsewhere
    h1 = model.hidden(z)
    x_hat = torch.where(mask, x, torch.sigmoid(model.decoder.body(h1)))
    logits = model.predictor.body(torch.cat([x_hat, h1], dim=-1))
    log_p_y = F.log_softmax(logits, -1).gather(-1, y.long().expand(3, 5).unsqueeze(-1)).squeeze(-1)
    torch.testing.assert_close(with_y - without, torch.where(some_observed, log_p_y, torch.zeros(())))
    # and the ELBO: a fully hidden target is the same as no target
    a = model.elbo(x, mask, generator=gen(4))
    b = model.elbo(x, mask, generator=gen(4), y=y, y_mask=none_observed)
    torch.testing.assert_close(a.elbo, b.elbo)
    c = model.elbo(x, mask, generator=gen(4), y=y, y_mask=some_observed)
    assert (c.extras["log_target"][~some_observed] == 0).all() and (c.extras["log_target"][some_observed] < 0).all()


def test_predict_y_gives_probabilities():
    model = tiny_hvae()
    x, mask, _ = binary_data()
    probs = model.predict_y(x, mask, torch.randn(7, 5, 5))
    assert probs.shape == (7, 5, 4)
    torch.testing.assert_close(probs.sum(-1), torch.ones(7, 5))


def test_missing_entries_do_not_affect_log_joint_or_encoder():
    model = tiny_hvae()
    x, mask, y = binary_data()
    y_mask = torch.tensor([True, False, True, False, True])
    garbage_x = torch.where(mask, x, 1.0 - x)  # flip every hidden pixel
    garbage_y = torch.where(y_mask, y, (y + 1) % 4)  # change every hidden label
    z = torch.randn(4, 5, 5, generator=gen(5))
    torch.testing.assert_close(model.log_joint(x, mask, z, y, y_mask), model.log_joint(garbage_x, mask, z, garbage_y, y_mask))
    q1, q2 = model.encode(x, mask, y, y_mask), model.encode(garbage_x, mask, garbage_y, y_mask)
    torch.testing.assert_close(q1.mean, q2.mean)
    torch.testing.assert_close(q1.std, q2.std)


def test_observed_columns_log_density_equals_the_full_log_joint():
    torch.manual_seed(0)
    model = HHVAE(HHVAEConfig(input_shape=(30,), latent_dims=(3, 2), hidden_dims=(16,), transform_hidden=8,
                              predictor_hidden_dims=(8,), n_classes=4))
    x = (torch.rand(2, 30, generator=gen(1)) > 0.5).float()
    mask = torch.zeros(2, 30, dtype=torch.bool)
    mask[0, :9], mask[1, 5:12] = True, True  # only 12 columns seen by any row: the sliced path
    eps = torch.randn(2, 7, 5, generator=gen(2))
    full = model.log_joint(x.unsqueeze(1), mask.unsqueeze(1), eps)
    torch.testing.assert_close(model.posterior_logdensity(x, mask)(eps), full)


@pytest.mark.parametrize("target", [None, "gaussian"])
def test_models_without_or_with_a_real_target(target):
    model = tiny_hvae(target=target)
    x, mask, _ = binary_data()
    y = torch.randn(5)
    out = model.elbo(x, mask, generator=gen(), y=y, y_mask=mask[:, 0])
    assert torch.isfinite(out.loss)
    if target is None:
        assert "log_target" not in out.extras
    else:
        # Gaussian target with σ² = 0.1 (§5.4.1): log N(y; mean, 0.1) where observed
        z = torch.randn(5, 5, generator=gen(6))
        h1 = model.hidden(z)
        x_hat = torch.where(mask, x, torch.sigmoid(model.decoder.body(h1)))
        mean = model.predictor.body(torch.cat([x_hat, h1], -1))[:, 0]
        expected = -0.5 * ((y - mean) ** 2 / 0.1 + math.log(2 * math.pi * 0.1))
        difference = model.log_joint(x, mask, z, y, mask[:, 0]) - model.log_joint(x, mask, z)
        torch.testing.assert_close(difference, torch.where(mask[:, 0], expected, torch.zeros(())))


def test_a_new_hierarchy_starts_as_the_identity_scale_exactly():
    """At initialisation f_σ = softplus(b) + floor is exactly 1 (it was 1.000632 with b = log(e − 1 − floor)),
    so h_1 starts as μ(h_2) + ε_1 with no inflation of the lower layer."""
    import torch.nn.functional as F

    from vizvae.models.hierarchical import SIGMA_FLOOR, SOFTPLUS_INVERSE_OF_ONE

    value = F.softplus(torch.tensor(SOFTPLUS_INVERSE_OF_ONE, dtype=torch.float64)) + SIGMA_FLOOR
    assert abs(float(value) - 1.0) < 1e-12
