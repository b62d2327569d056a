"""Latent-space quantities: encoded data, KL per dimension, traversals, interpolations, the decoded
manifold, prior samples and reconstructions, and the latent-space page's labels and base point."""

import math

import numpy as np
import torch
from scipy import stats

from vizvae.models import VAE, VAEConfig
from vizvae.inference.latent import (
    class_labels, decode_mean, dimensions_by_kl, encode_dataset, examples_per_class, lerp,
    manifold_grid, moved, normal_quantiles, prior_samples, reconstruct, slerp, traversal_base, traversal_latents,
    traversal_values,
)


def tiny(latent=3, seed=0):
    torch.manual_seed(seed)
    return VAE(VAEConfig(input_shape=(1, 6, 6), latent_dim=latent, hidden_dims=(8,))).eval()


def test_slerp_hits_endpoints_and_keeps_unit_norm():
    g = torch.Generator().manual_seed(0)
    z0, z1 = torch.randn(16, generator=g), torch.randn(16, generator=g)
    z0, z1 = z0 / z0.norm(), z1 / z1.norm()
    path = slerp(z0, z1, 9)
    assert path.shape == (9, 16)
    torch.testing.assert_close(path[0], z0)
    torch.testing.assert_close(path[-1], z1)
    torch.testing.assert_close(path.norm(dim=1), torch.ones(9))
    # equal angular steps: the angle between neighbours is Ω / 8
    omega = torch.arccos(torch.dot(z0, z1))
    steps = torch.arccos(torch.clamp((path[1:] * path[:-1]).sum(1), -1, 1))
    torch.testing.assert_close(steps, torch.full((8,), (omega / 8).item()), atol=1e-5, rtol=0)


def test_slerp_quarter_circle_midpoint():
    e1, e2 = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0])
    torch.testing.assert_close(slerp(e1, e2, 3)[1], torch.tensor([1.0, 1.0]) / math.sqrt(2))


def test_slerp_of_parallel_points_falls_back_to_lerp():
    z0 = torch.tensor([1.0, 2.0])
    torch.testing.assert_close(slerp(z0, 3 * z0, 5), lerp(z0, 3 * z0, 5))


def test_lerp_is_the_straight_line():
    z0, z1 = torch.tensor([0.0, -2.0]), torch.tensor([4.0, 2.0])
    path = lerp(z0, z1, 5)
    torch.testing.assert_close(path, torch.tensor([[0.0, -2.0], [1.0, -1.0], [2.0, 0.0], [3.0, 1.0], [4.0, 2.0]]))


def test_traversal_rows_change_exactly_one_dimension():
    base = torch.tensor([0.5, -1.0, 2.0, 0.0])
    values = traversal_values(3.0, 7)
    torch.testing.assert_close(values, torch.linspace(-3, 3, 7))
    dims = [2, 0, 3]
    grid = traversal_latents(base, dims, values)
    assert grid.shape == (3, 7, 4)
    for r, dim in enumerate(dims):
        changed = (grid[r] != base).any(0)
        assert changed.nonzero().flatten().tolist() == [dim]
        torch.testing.assert_close(grid[r, :, dim], values)
    # the base itself is untouched
    torch.testing.assert_close(base, torch.tensor([0.5, -1.0, 2.0, 0.0]))


def test_manifold_grid_uses_normal_quantiles_and_is_oriented_like_the_plot():
    q = normal_quantiles(5, tail=0.05)
    np.testing.assert_allclose(q.numpy(), stats.norm.ppf(np.linspace(0.05, 0.95, 5)), rtol=1e-5, atol=1e-6)
    grid = manifold_grid(5)
    assert grid.shape == (5, 5, 2)
    torch.testing.assert_close(grid[0, :, 0], q)  # columns: z1 increasing left to right
    torch.testing.assert_close(grid[:, 0, 1], q.flip(0))  # rows: z2 decreasing top to bottom
    uniform = manifold_grid(3, span=2.0)
    torch.testing.assert_close(uniform[1, 1], torch.zeros(2))
    torch.testing.assert_close(uniform[0, 0], torch.tensor([-2.0, 2.0]))


def test_kl_per_dimension_matches_the_closed_form():
    model = tiny()
    x = torch.rand(50, 36, generator=torch.Generator().manual_seed(1))
    posterior = model.encode(x)
    mean, var = posterior.mean.detach(), posterior.std.detach() ** 2
    expected = (0.5 * (mean ** 2 + var - 1 - var.log())).mean(0)
    encoded = encode_dataset(model, x.numpy(), batch_size=7)
    np.testing.assert_allclose(encoded.average_kl, expected.numpy(), rtol=1e-5)
    np.testing.assert_allclose(encoded.std, var.sqrt().numpy(), rtol=1e-5)
    np.testing.assert_allclose(encoded.mean, mean.numpy(), rtol=1e-5)
    # the per-dimension KLs add up to the model's total KL
    np.testing.assert_allclose(encoded.kl_per_dimension.sum(1), posterior.kl_standard_normal().detach().numpy(),
                               rtol=1e-5)


def test_dimensions_by_kl_sorts_descending_and_stably():
    assert dimensions_by_kl(np.array([0.1, 2.0, 0.1, 5.0])) == [3, 1, 0, 2]


def test_decode_is_batched_over_a_grid():
    model = tiny(latent=2)
    grid = manifold_grid(4)
    images = decode_mean(model, grid)
    assert images.shape == (4, 4, 36)
    np.testing.assert_allclose(images[2, 3], model.decode(grid[2, 3]).mean.detach().numpy(), rtol=1e-5)
    assert prior_samples(model, 5, seed=3).shape == (5, 36)
    np.testing.assert_array_equal(prior_samples(model, 5, seed=3), prior_samples(model, 5, seed=3))
    # a prior sample is the decoder mean at z ~ N(0, I) drawn from the seeded generator
    z = torch.randn(5, 2, generator=torch.Generator().manual_seed(3))
    np.testing.assert_allclose(prior_samples(model, 5, seed=3), model.decode(z).mean.detach().numpy(), rtol=1e-5, atol=1e-6)


def test_a_reconstruction_is_the_decoder_mean_at_the_encoder_mean():
    model = tiny()
    x = torch.rand(4, 36, generator=torch.Generator().manual_seed(2))
    expected = model.decode(model.encode(x).mean).mean.detach().numpy()
    np.testing.assert_allclose(reconstruct(model, x.numpy()), expected, rtol=1e-5, atol=1e-6)


def test_a_16d_traversal_grid_decodes_in_one_batched_forward_pass():
    """Speed is measured by `python -m vizvae bench` (traversal_grid_ms); here: one decoder call
    for all 100 latents, and the same images as decoding them one by one."""
    model = VAE(VAEConfig(input_shape=(1, 28, 28), latent_dim=16, hidden_dims=(256, 256))).eval()
    grid = traversal_latents(torch.zeros(16), list(range(10)), traversal_values(3.0, 10))
    calls = []
    handle = model.decoder.register_forward_hook(lambda module, args, out: calls.append(args[0].shape))
    images = decode_mean(model, grid)
    handle.remove()
    assert images.shape == (10, 10, 784) and len(calls) == 1
    np.testing.assert_allclose(images[4, 7], model.decode(grid[4, 7]).mean.detach().numpy(), rtol=1e-5, atol=1e-6)


def test_examples_per_class_takes_each_class_in_turn():
    labels = np.repeat(np.arange(3), 5)
    rows = examples_per_class(labels, 2, seed=0)
    assert labels[rows].tolist() == [0, 1, 2, 0, 1, 2]
    assert len(set(rows.tolist())) == 6
    np.testing.assert_array_equal(rows, examples_per_class(labels, 2, seed=0))
    assert sorted(examples_per_class(None, 2, seed=0, n_rows=5).tolist()) == [0, 1, 2, 3, 4]


def test_traversal_around_the_base_point():
    base = torch.tensor([1.0, -2.0, 0.5])
    dims = [1, 2]
    offsets = torch.tensor([-1.0, 0.0, 1.0])
    grid = traversal_latents(base, dims, base[dims][:, None] + offsets)
    torch.testing.assert_close(grid[0, :, 1], torch.tensor([-3.0, -2.0, -1.0]))
    torch.testing.assert_close(grid[1, :, 2], torch.tensor([-0.5, 0.5, 1.5]))
    torch.testing.assert_close(grid[:, 1], base.expand(2, 3))  # the middle column is the base
    # offsets from the base's own coordinates give the same grid
    torch.testing.assert_close(traversal_latents(base, dims, offsets, around_base=True), grid, rtol=0, atol=0)


def test_labels_are_codes_into_printable_names():
    labels = class_labels(np.array([2.0, 0.0, 1.0]), [0.0, 1.0, 7.0])
    assert labels.codes.tolist() == [2, 0, 1] and labels.codes.dtype.kind == "i"
    assert labels.names == ["0", "1", "7"]
    assert labels.per_point == ["7", "0", "1"]
    assert class_labels(None, [0.0]) is None and class_labels(np.zeros(3), None) is None


def test_the_base_is_the_first_selected_mean_or_the_origin():
    means = np.arange(12, dtype=np.float64).reshape(4, 3)
    z, row = traversal_base(means, [2, 0], around_selected=True)
    assert row == 2 and z.tolist() == [6.0, 7.0, 8.0] and z.dtype == np.float32
    for selection, around in (([], True), ([1], False)):
        z, row = traversal_base(means, selection, around_selected=around)
        assert row is None and z.tolist() == [0.0, 0.0, 0.0]


def test_each_row_moves_one_dimension_evenly_around_the_base():
    base = np.array([0.5, -1.0, 2.0], dtype=np.float32)
    grid = traversal_latents(base, [2, 0], traversal_values(1.0, 5), around_base=True)  # (rows, steps, latent)
    assert grid.shape == (2, 5, 3) and grid.dtype == torch.float32
    offsets = torch.tensor([-1.0, -0.5, 0.0, 0.5, 1.0])
    torch.testing.assert_close(grid[0, :, 2], 2.0 + offsets)
    torch.testing.assert_close(grid[1, :, 0], 0.5 + offsets)
    torch.testing.assert_close(grid[0, :, :2], torch.tensor([0.5, -1.0]).expand(5, 2))
    torch.testing.assert_close(grid[1, :, 1:], torch.tensor([-1.0, 2.0]).expand(5, 2))
    torch.testing.assert_close(grid[:, 2], torch.as_tensor(base).expand(2, 3))  # the middle column is the base


def test_moving_one_dimension_leaves_the_base_alone():
    base = np.array([1.0, 2.0], dtype=np.float32)
    z = moved(base, 1, -0.25)
    assert z.tolist() == [1.0, 1.75] and base.tolist() == [1.0, 2.0]
