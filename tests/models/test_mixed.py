"""Mixed-type models (VAEM family): each column's likelihood against scipy, valid imputations of discrete
columns, Stage 1 and the assembled model's interface, checkpoints."""

from __future__ import annotations

import math
from argparse import Namespace

import numpy as np
import pytest
import torch
from scipy import stats

from vizvae.checkpoint import load_checkpoint, save_checkpoint
from vizvae.data import load_dataset
from vizvae.inference.acquisition import joint_draws
from vizvae.models.mixed import GAUSSIAN_VARIANCE, ColumnTypes, MixedLikelihood
from vizvae.train.staged_commands import build_mixed_model
from vizvae.train.stages import StageSettings, train_stages

SIGMA = math.sqrt(GAUSSIAN_VARIANCE)
KINDS = ("gaussian", "loggaussian", "bernoulli", "categorical")


def tiny_args(model: str, dims: str = "4,2") -> Namespace:
    return Namespace(model=model, latent_dims=dims, hidden="32", likelihood=None, sigma_mode="fixed", sigma=SIGMA,
                     beta=1.0, n_transitions=3, n_leapfrog=3, sksd_chains=4, seed=0, importance=5, marginal_hidden=16)


@pytest.fixture(scope="module")
def boston():
    return load_dataset("boston")


@pytest.fixture(scope="module")
def trained_hhvaem(boston):
    torch.manual_seed(0)
    model = build_mixed_model(tiny_args("hhvaem"), boston)
    train_stages(model, boston, StageSettings(marginal_steps=150, steps=150, hmc_steps=2, batch_size=64,
                                              hmc_batch_size=4, eval_rows=20))
    return model


def test_each_column_type_matches_scipy():
    types = ColumnTypes(KINDS, (0, 0, 2, 4))
    generator = torch.Generator().manual_seed(0)
    outputs = torch.randn(5, 4, types.width, generator=generator, dtype=torch.float64)
    likelihood = MixedLikelihood(outputs, types)
    x = torch.tensor([[0.3, -1.2, 1.0, 2.0], [1.5, 0.4, 0.0, 0.0], [-0.7, 2.2, 1.0, 3.0], [0.0, 0.0, 0.0, 1.0],
                      [2.0, -0.5, 1.0, 2.0]], dtype=torch.float64)
    log_p = likelihood.log_prob(x).numpy()
    out = outputs.numpy()
    for row in range(5):
        for column in (0, 1):  # Gaussian in model space, variance 0.1 (§5.4.1)
            assert log_p[row, column] == pytest.approx(stats.norm(out[row, column, 0], SIGMA).logpdf(x[row, column]))
        p_one = 1 / (1 + np.exp(-out[row, 2, 0]))
        assert log_p[row, 2] == pytest.approx(stats.bernoulli(p_one).logpmf(int(x[row, 2])))
        logits = out[row, 3, :4]
        probs = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
        one_hot = np.eye(4)[int(x[row, 3])]
        assert log_p[row, 3] == pytest.approx(stats.multinomial(1, probs).logpmf(one_hot))


def test_loggaussian_column_is_a_lognormal_on_one_plus_x(boston):
    """A loggaussian column is Gaussian on standardised log(1 + x): in raw units, with the change of
    variables du/dx = 1 / (s (1 + x)), its density is scipy's lognormal of 1 + x."""
    column = next(c for c in boston.schema if c.kind == "loggaussian")
    types = ColumnTypes(("loggaussian",), (0,))
    mean_model = 0.4
    likelihood = MixedLikelihood(torch.full((1, 1, 1), mean_model, dtype=torch.float64), types)
    raw = np.array([0.05, 1.0, 7.5, 30.0])
    model_values = torch.as_tensor(column.to_model(raw), dtype=torch.float64).view(-1, 1)
    log_model = likelihood.log_prob(model_values).squeeze(-1).numpy()
    log_raw = log_model - math.log(column.std) - np.log1p(raw)
    lognormal = stats.lognorm(s=SIGMA * column.std, loc=-1.0, scale=math.exp(column.mean + column.std * mean_model))
    np.testing.assert_allclose(log_raw, lognormal.logpdf(raw), rtol=1e-4)


def test_samples_and_point_imputations_of_discrete_columns_are_valid_values():
    types = ColumnTypes(KINDS, (0, 0, 2, 5))
    outputs = torch.randn(200, 4, types.width, generator=torch.Generator().manual_seed(1))
    likelihood = MixedLikelihood(outputs, types)
    draws = likelihood.sample(torch.Generator().manual_seed(2))
    for values in (draws, likelihood.mean):
        assert set(values[:, 2].unique().tolist()) <= {0.0, 1.0}
        assert set(values[:, 3].unique().tolist()) <= {0.0, 1.0, 2.0, 3.0, 4.0}
    # draws follow the categorical probabilities (Gumbel-max is exact): frequencies of one row's column
    logits = torch.tensor([[[0.0, 1.0, -1.0, 2.0, 0.5]]])
    many = MixedLikelihood(logits.expand(20000, 1, 5), ColumnTypes(("categorical",), (5,)))
    counts = torch.bincount(many.sample(torch.Generator().manual_seed(3))[:, 0].long(), minlength=5) / 20000
    torch.testing.assert_close(counts, torch.softmax(logits[0, 0], -1), atol=0.015, rtol=0)


def test_model_imputations_keep_observed_values_and_give_valid_categories(trained_hhvaem, boston):
    x = torch.as_tensor(boston.x_test[:10])
    mask = torch.rand(x.shape, generator=torch.Generator().manual_seed(0)) < 0.5
    draws = joint_draws(trained_hhvaem, x, mask, 7, torch.Generator().manual_seed(0)).x  # HMC, then decode
    assert draws.shape == (10, 7, x.shape[1])
    torch.testing.assert_close(draws[mask.unsqueeze(1).expand_as(draws)], x.unsqueeze(1).expand_as(draws)[
        mask.unsqueeze(1).expand_as(draws)])
    kinds = [c.kind for c in boston.schema]
    chas, rad = kinds.index("bernoulli"), kinds.index("categorical")
    assert set(draws[..., chas].unique().tolist()) <= {0.0, 1.0}
    n_rad = boston.schema[rad].n_categories
    values = draws[..., rad]
    assert torch.equal(values, values.round()) and values.min() >= 0 and values.max() <= n_rad - 1


def test_stage_one_raises_the_marginal_elbo_and_freezes_the_marginal_vaes(boston):
    torch.manual_seed(0)
    model = build_mixed_model(tiny_args("vaem", "4"), boston)
    x = torch.as_tensor(boston.x_test)
    with torch.no_grad():
        before = float(model.marginals.elbo(x, None, torch.Generator().manual_seed(0)).mean())
    records = train_stages(model, boston, StageSettings(marginal_steps=200, steps=5, batch_size=64, eval_rows=20))
    with torch.no_grad():
        after = float(model.marginals.elbo(x, None, torch.Generator().manual_seed(0)).mean())
    assert [r["name"] for r in records] == ["stage 1: marginal VAEs", "stage 2: VI"]
    assert after > before + 5.0  # 13 columns, from a random start
    assert not any(p.requires_grad for p in model.marginals.parameters())


def test_log_joint_is_the_dependency_models_on_the_marginal_codes(trained_hhvaem, boston):
    model = trained_hhvaem
    x = torch.as_tensor(boston.x_test[:4])
    mask = torch.ones_like(x, dtype=torch.bool)
    mask[:, 3] = False
    eps = torch.randn(4, model.latent_dim, generator=torch.Generator().manual_seed(0))
    codes = model.marginals.codes(x, mask)
    assert torch.all(codes[:, 3] == 0)  # zero-filled where missing
    torch.testing.assert_close(model.log_joint(x, mask, eps), model.dependency.log_joint(codes, mask, eps))


def test_mixed_checkpoint_round_trip(trained_hhvaem, boston, tmp_path):
    save_checkpoint(trained_hhvaem, tmp_path / "m", name="m", dataset=boston.describe(), training={}, evaluation={})
    loaded = load_checkpoint(tmp_path / "m").model
    x = torch.as_tensor(boston.x_test[:3])
    mask = torch.ones_like(x, dtype=torch.bool)
    eps = torch.randn(3, trained_hhvaem.latent_dim, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(loaded.log_joint(x, mask, eps), trained_hhvaem.log_joint(x, mask, eps))
    torch.testing.assert_close(loaded.decode(eps).outputs, trained_hhvaem.decode(eps).outputs)
    torch.testing.assert_close(loaded.hmc.step_sizes, trained_hhvaem.hmc.step_sizes)
    assert loaded.types.kinds == tuple(c.kind for c in boston.schema)


def test_mixed_models_refuse_image_data():
    from vizvae.errors import VizvaeError

    with pytest.raises(VizvaeError, match="mixed-type tables"):
        build_mixed_model(tiny_args("vaem"), load_dataset("digits"))


def test_the_dependency_models_members_are_written_out_and_draw_the_codes_with_the_calls_generator(boston):
    """Each member the mixed model takes from its dependency model has an explicit signature (no *args or
    **kwargs), and the training objectives draw fresh marginal codes with the generator they are given
    (eq. 5.4): the same answer as drawing the codes and then calling the dependency model with that generator."""
    import inspect

    from vizvae.models.mixed import MixedTunedHMC, MixedTypeModel

    for owner in (MixedTypeModel, MixedTunedHMC):
        for name, member in vars(owner).items():
            if inspect.isfunction(member):
                kinds = {p.kind for p in inspect.signature(member).parameters.values()}
                assert not kinds & {inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD}, name
    torch.manual_seed(0)
    model = build_mixed_model(tiny_args("hhvaem"), boston).train()
    x = torch.as_tensor(boston.x_test[:6])
    mask = torch.rand(x.shape, generator=torch.Generator().manual_seed(0)) < 0.7
    y = torch.as_tensor(boston.y_test[:6])
    out = model.objective(x, mask, y, generator=torch.Generator().manual_seed(5))
    generator = torch.Generator().manual_seed(5)
    codes = model.marginals.codes(x, mask, generator, sample=True)
    expected = model.dependency.objective(codes, mask, y, generator=generator)
    torch.testing.assert_close(out.loss, expected.loss, rtol=0, atol=0)
    elbo = model.elbo(x, mask, generator=torch.Generator().manual_seed(6), y=y).elbo
    generator = torch.Generator().manual_seed(6)
    codes = model.marginals.codes(x, mask, generator, sample=True)
    torch.testing.assert_close(elbo, model.dependency.elbo(codes, mask, generator=generator, y=y).elbo, rtol=0, atol=0)
    model.eval()  # outside training the codes are the posterior means
    torch.testing.assert_close(model.encode(x, mask, y).mean,
                               model.dependency.encode(model.marginals.codes(x, mask), mask, y).mean, rtol=0, atol=0)
