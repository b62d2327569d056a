import pytest
import torch

from vizvae.data import box_mask, half_mask, mcar_mask, protocol_masks, square_hole_mask, training_mask


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def test_mcar_rate():
    mask = mcar_mask((200, 500), 0.3, gen())
    assert mask.dtype == torch.bool
    assert abs((~mask).float().mean().item() - 0.3) < 0.01


def test_training_mask_has_one_rate_per_row():
    mask = training_mask(4000, 400, gen())
    rates = (~mask).float().mean(1)
    # per-row rates spread over U(0.01, 0.99): mean ½, variance ≈ 0.98²/12 (+ binomial noise)
    assert abs(rates.mean().item() - 0.5) < 0.02
    assert abs(rates.var().item() - 0.98 ** 2 / 12) < 0.01
    assert rates.min() < 0.05 and rates.max() > 0.95


def test_protocol_test_masks_hide_half_and_the_target():
    features, target = protocol_masks(1000, 50, "test", gen())
    assert abs((~features).float().mean().item() - 0.5) < 0.02
    assert not target.any()
    features, target = protocol_masks(1000, 50, "train", gen())
    assert 0.3 < target.float().mean().item() < 0.7


def test_square_hole_hides_exactly_the_square():
    masks = square_hole_mask(50, (28, 28), 14, gen())
    assert masks.shape == (50, 784)
    for mask in masks:
        hidden = (~mask).reshape(28, 28).nonzero()
        assert len(hidden) == 14 * 14
        rows, cols = hidden[:, 0], hidden[:, 1]
        assert rows.max() - rows.min() == 13 and cols.max() - cols.min() == 13


def test_box_mask_position():
    mask = box_mask((6, 6), 1, 2, 2, 3)[0].reshape(6, 6)
    expected = torch.ones(6, 6, dtype=torch.bool)
    expected[1:3, 2:5] = False
    assert torch.equal(mask, expected)


def test_halves():
    top = half_mask((28, 28), "top").reshape(28, 28)
    assert not top[:14].any() and top[14:].all()
    right = half_mask((28, 28), "right").reshape(28, 28)
    assert right[:, :14].all() and not right[:, 14:].any()


def test_masks_hide_entries_from_the_likelihood():
    from vizvae.models import BernoulliLikelihood, masked_sum

    logits = torch.randn(3, 10, generator=gen())
    x = (torch.rand(3, 10, generator=gen(1)) > 0.5).float()
    mask = mcar_mask((3, 10), 0.5, gen(2))
    values = BernoulliLikelihood(logits).log_prob(x)
    expected = torch.stack([values[i][mask[i]].sum() for i in range(3)])
    torch.testing.assert_close(masked_sum(values, mask), expected)


def test_image_mask_by_name_is_seeded_and_hides_what_it_says():
    from vizvae.data.masks import IMAGE_MASK_KINDS, image_mask

    assert IMAGE_MASK_KINDS == ("none", "square", "half", "mcar")
    assert image_mask("none", (28, 28)) is None
    square = image_mask("square", (28, 28), seed=3)
    assert square.shape == (784,) and int((~square).sum()) == 14 * 14
    assert torch.equal(square, image_mask("square", (28, 28), seed=3))
    assert not torch.equal(square, image_mask("square", (28, 28), seed=4))
    top = image_mask("half", (28, 28), hidden_half="top").reshape(28, 28)
    assert not top[:14].any() and top[14:].all()
    mcar = image_mask("mcar", (28, 28), seed=0, missing_rate=0.3)
    assert abs(float((~mcar).float().mean()) - 0.3) < 0.05
    with pytest.raises(ValueError):
        image_mask("circle", (28, 28))
