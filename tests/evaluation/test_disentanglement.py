"""Known answers for MIG, DCI and active units: latents that *are* the factors score 1, latents
of independent noise score about 0."""

import math
from itertools import product

import numpy as np
import pytest
import torch

from vizvae.evaluation.disentanglement import (
    active_units, dci, dci_from_importance, discretize, encode_means, entropy, mig, mutual_information,
)


@pytest.fixture(scope="module")
def grid():
    """A complete grid of 3 independent factors (4·5·6 = 120 combinations), three times over,
    shuffled: (360, 3) codes, split 240 train / 120 test."""
    codes = np.array(list(product(range(4), range(5), range(6))) * 3)
    return codes[np.random.default_rng(0).permutation(len(codes))]


def test_mutual_information_of_known_discrete_pairs():
    a = np.repeat(np.arange(4), 25)
    assert entropy(a) == pytest.approx(math.log(4))
    assert mutual_information(a, a) == pytest.approx(math.log(4))  # I(a; a) = H(a)
    assert mutual_information(a, a // 2) == pytest.approx(math.log(2))  # a function of a keeps 1 bit
    b = np.tile(np.arange(5), 20)  # every (a, b) pair equally often: independent
    assert mutual_information(a, b) == pytest.approx(0.0, abs=1e-12)


def test_discretize_uses_equal_width_bins_per_dimension():
    z = np.array([[0.0, 5.0], [0.5, 5.0], [1.0, 5.0], [0.24, 5.0]])
    codes = discretize(z, bins=4)
    assert codes[:, 0].tolist() == [0, 2, 3, 0] and codes[:, 1].tolist() == [0, 0, 0, 0]  # constant: one bin


def test_mig_is_one_when_the_latents_are_the_factors(grid):
    latents = np.concatenate([grid * 0.3 - 1.0, np.zeros((len(grid), 2))], axis=1)  # affine copies + 2 dead dims
    result = mig(latents[:, [2, 0, 3, 1, 4]], grid)  # in another order
    assert result.score == pytest.approx(1.0)
    assert np.allclose(result.per_factor, 1.0)
    # factor k lives in latent column order.index(k) and nowhere else
    assert result.normalized_mi.argmax(axis=0).tolist() == [1, 3, 0]


def test_mig_is_about_zero_for_noise(grid):
    noise = np.random.default_rng(1).normal(size=(len(grid), 6))
    assert mig(noise, grid).score < 0.05  # only the plug-in estimator's small-sample bias is left


def test_mig_is_zero_when_two_latents_share_a_factor_equally(grid):
    latents = np.stack([grid[:, 0], grid[:, 0], grid[:, 1], grid[:, 2]], axis=1).astype(float)
    result = mig(latents, grid)
    assert result.per_factor.tolist() == pytest.approx([0.0, 1.0, 1.0])  # factor 0 is split: no gap


def test_dci_is_one_when_the_latents_are_the_factors(grid):
    latents = np.concatenate([grid[:, ::-1] * 2.0, np.zeros((len(grid), 1))], axis=1)
    scores = dci(latents[:240], grid[:240], latents[240:], grid[240:], n_estimators=20)
    assert scores.disentanglement == pytest.approx(1.0, abs=1e-3)
    assert scores.completeness == pytest.approx(1.0, abs=1e-3)
    assert scores.informativeness == pytest.approx(1.0)
    assert scores.importance.argmax(axis=0).tolist() == [2, 1, 0]


def test_dci_is_about_zero_for_noise(grid):
    noise = np.random.default_rng(2).normal(size=(len(grid), 5))
    scores = dci(noise[:240], grid[:240], noise[240:], grid[240:], n_estimators=20)
    assert scores.disentanglement < 0.15 and scores.completeness < 0.15
    chance = np.mean([1 / 4, 1 / 5, 1 / 6])
    assert scores.informativeness < chance + 0.1


def test_dci_from_known_importance_matrices():
    assert dci_from_importance(np.eye(3)) == pytest.approx((1.0, 1.0))
    assert dci_from_importance(np.ones((4, 3))) == pytest.approx((0.0, 0.0))
    # one latent carries two factors equally: it is half-disentangled (1 − log 2 / log 3 ...)
    disentanglement, completeness = dci_from_importance(np.array([[1.0, 1.0, 0.0], [0.0, 0.0, 1.0]]))
    assert completeness == pytest.approx(1.0)
    assert disentanglement == pytest.approx(2 / 3 * (1 - math.log(2) / math.log(3)) + 1 / 3)


def test_active_units_threshold():
    assert active_units(np.array([0.0, 0.005, 0.0100, 0.0101, 2.3])) == 2  # strictly above 0.01 nats
    assert active_units(np.array([0.5, 0.5]), threshold=1.0) == 0


class _FixedEncoder(torch.nn.Module):
    """A model whose encoder ignores x: q(z | x) = N(mean, diag(std²)) for every row."""

    def __init__(self, mean, std):
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean))
        self.register_buffer("std", torch.tensor(std))

    @property
    def device(self):
        return self.mean.device

    def encode(self, x):
        from vizvae.models.distributions import DiagonalGaussian

        return DiagonalGaussian(self.mean.expand(len(x), -1), self.std.expand(len(x), -1))


def test_active_units_of_a_known_posterior():
    # KL(N(μ, σ²) ‖ N(0, 1)) per dimension = ½(μ² + σ² − 1 − log σ²): 0 for the prior itself,
    # 0.5 for μ = 1, σ = 1, and ½(0.01 − 1 + log 100) ≈ 1.81 for σ = 0.1
    model = _FixedEncoder([0.0, 1.0, 0.0, 0.1], [1.0, 1.0, 0.1, 1.0])
    means, kl = encode_means(model, np.zeros((7, 3)))
    assert means.shape == (7, 4)
    expected = [0.0, 0.5, 0.5 * (0.01 - 1 + math.log(100)), 0.005]
    assert kl.mean(0) == pytest.approx(expected, abs=1e-6)
    assert active_units(kl.mean(0)) == 2  # the μ = 0.1 dimension carries only 0.005 nats


SHAPES_MODELS = ["shapes-vae-b1", "shapes-betavae-b4", "shapes-betavae-b10"]


def _stored_evaluation(name):
    import json

    from vizvae.checkpoint import SHIPPED_DIR

    folder = SHIPPED_DIR / name
    if not (folder / "model.safetensors").is_file():
        pytest.fail(f"shipped checkpoint {name} is missing; build it with `python -m vizvae rebuild --only {name}`")
    return json.loads((folder / "config.json").read_text())["evaluation"]


@pytest.fixture(scope="module")
def shipped_shapes_latents():
    """Encoder means of every shapes row under each shipped shapes model, and the factor codes."""
    from vizvae.checkpoint import SHIPPED_DIR, checkpoint_dataset, load_checkpoint
    from vizvae.data.shapes import ground_truth_factors

    latents = {}
    for name in SHAPES_MODELS:
        _stored_evaluation(name)  # fails, with the rebuild command, when the checkpoint is missing
        checkpoint = load_checkpoint(SHIPPED_DIR / name, device="cpu")
        dataset = checkpoint_dataset(checkpoint.config)
        latents[name] = np.concatenate([encode_means(checkpoint.model, dataset.x_train)[0],
                                        encode_means(checkpoint.model, dataset.x_test)[0]])
    factors = ground_truth_factors(dataset)
    return latents, np.concatenate([factors.train, factors.test])


def test_shipped_beta_vaes_are_more_disentangled_than_the_vae(shipped_shapes_latents):
    """MIG recomputed from the weights (it matches config.json to its 4 stored decimals); the
    β-VAEs' lead over the VAE exceeds 4 bootstrap standard errors of the difference."""
    latents, factors = shipped_shapes_latents
    recomputed = {name: mig(latents[name], factors).score for name in SHAPES_MODELS}
    for name in SHAPES_MODELS:
        assert recomputed[name] == pytest.approx(_stored_evaluation(name)["mig"], abs=5e-5)

    def lead(rows):
        scores = {name: mig(latents[name][rows], factors[rows]).score for name in SHAPES_MODELS}
        return max(scores["shapes-betavae-b4"], scores["shapes-betavae-b10"]) - scores["shapes-vae-b1"]

    rng = np.random.default_rng(0)
    resampled = [lead(rng.integers(0, len(factors), len(factors))) for _ in range(40)]
    assert lead(np.arange(len(factors))) > 4 * np.std(resampled, ddof=1)


def test_cli_prints_the_metrics_it_stored(capsys):
    import json

    from vizvae.__main__ import main

    name = "shapes-betavae-b10"
    stored = _stored_evaluation(name)
    # few boosting stages keep this quick; MIG and active units do not depend on them
    assert main(["evaluate", name, "--task", "disentanglement", "--json", "--device", "cpu", "-o", "trees=5"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert {"mig", "dci_disentanglement", "dci_completeness", "dci_informativeness", "active_units"} <= set(printed)
    assert printed["mig"] == stored["mig"] and printed["active_units"] == stored["active_units"]
    assert printed["active_units"] == sum(kl > 0.01 for kl in printed["average_kl"])
    for key in ("dci_disentanglement", "dci_completeness", "dci_informativeness"):
        assert 0.0 <= printed[key] <= 1.0
