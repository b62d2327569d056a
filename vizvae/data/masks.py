"""Missingness masks. Convention everywhere in vizvae: ``mask`` is a bool tensor that is
True where an entry is OBSERVED and False where it is missing.

The protocol of thesis §5.4 (SPEC §2): during training each row draws its own rate
r ~ U(0.01, 0.99) and hides each feature (and the target) with probability r, redrawn every
epoch; at test time each feature is hidden with probability 0.5 and the target always.
Images use the same per-pixel MCAR masks, plus square holes for inpainting.
"""

from __future__ import annotations

import torch


def mcar_mask(
    shape: tuple[int, ...], missing_rate: float | torch.Tensor, generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Missing completely at random: each entry hidden independently with ``missing_rate``
    (a float, or a tensor broadcastable to ``shape``, e.g. one rate per row)."""
    u = torch.rand(shape, generator=generator, device=device)
    return u >= torch.as_tensor(missing_rate, device=u.device)


def training_mask(
    n: int, d: int, generator: torch.Generator | None = None, low: float = 0.01, high: float = 0.99,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """(n, d) mask with a per-row rate r ~ U(low, high), as in thesis §5.4."""
    rates = low + (high - low) * torch.rand((n, 1), generator=generator, device=device)
    return mcar_mask((n, d), rates, generator, device)


def test_mask(
    n: int, d: int, generator: torch.Generator | None = None, missing_rate: float = 0.5,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """(n, d) test mask: each feature hidden with probability 0.5 (the target is always hidden,
    see ``protocol_masks``)."""
    return mcar_mask((n, d), missing_rate, generator, device)


# pytest would collect a module-level function named test_*; tell it not to.
test_mask.__test__ = False  # type: ignore[attr-defined]


def protocol_masks(
    n: int, d: int, split: str, generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(feature mask (n, d), target mask (n,)) under the §5.4 protocol for ``split``."""
    if split == "train":
        rates = 0.01 + 0.98 * torch.rand((n, 1), generator=generator, device=device)
        both = mcar_mask((n, d + 1), rates, generator, device)
        return both[:, :d], both[:, d]
    if split == "test":
        return test_mask(n, d, generator, device=device), torch.zeros(n, dtype=torch.bool, device=device)
    raise ValueError(f"split must be 'train' or 'test', got {split!r}")


def square_hole_mask(
    n: int, image_hw: tuple[int, int], size: int = 14, generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """(n, H*W) masks, each hiding one ``size`` x ``size`` square at a random position that
    lies wholly inside the image (MNIST protocol: 14 x 14)."""
    h, w = image_hw
    if not (0 < size <= min(h, w)):
        raise ValueError(f"hole size must be between 1 and {min(h, w)}, got {size}")
    top = torch.randint(0, h - size + 1, (n,), generator=generator, device=device)
    left = torch.randint(0, w - size + 1, (n,), generator=generator, device=device)
    return box_mask(image_hw, top, left, size, size)


def box_mask(
    image_hw: tuple[int, int], top: torch.Tensor | int, left: torch.Tensor | int, height: int, width: int,
) -> torch.Tensor:
    """(n, H*W) masks hiding the box [top, top+height) x [left, left+width) of each image."""
    h, w = image_hw
    top = torch.as_tensor(top).reshape(-1, 1, 1)
    left = torch.as_tensor(left).reshape(-1, 1, 1)
    rows = torch.arange(h, device=top.device).reshape(1, h, 1)
    cols = torch.arange(w, device=top.device).reshape(1, 1, w)
    hidden = (rows >= top) & (rows < top + height) & (cols >= left) & (cols < left + width)
    return (~hidden).reshape(-1, h * w)


def half_mask(image_hw: tuple[int, int], hidden_half: str) -> torch.Tensor:
    """(H*W,) mask hiding the ``top``, ``bottom``, ``left`` or ``right`` half."""
    h, w = image_hw
    boxes = {
        "top": (0, 0, h // 2, w),
        "bottom": (h // 2, 0, h - h // 2, w),
        "left": (0, 0, h, w // 2),
        "right": (0, w // 2, h, w - w // 2),
    }
    if hidden_half not in boxes:
        raise ValueError(f"hidden_half must be one of {sorted(boxes)}, got {hidden_half!r}")
    top, left, height, width = boxes[hidden_half]
    return box_mask(image_hw, top, left, height, width)[0]


IMAGE_MASK_KINDS = ("none", "square", "half", "mcar")


def image_mask(
    kind: str, image_hw: tuple[int, int], *, seed: int = 0, hole_size: int = 14, hidden_half: str = "top",
    missing_rate: float = 0.5, device: torch.device | str | None = None,
) -> torch.Tensor | None:
    """One image's mask by name, (H*W,) bool, reproducible from ``seed``: ``none`` → None (all
    observed), ``square`` → a ``hole_size`` square hole at a seeded position, ``half`` → the
    ``hidden_half`` hidden, ``mcar`` → each pixel hidden with ``missing_rate``."""
    generator = torch.Generator(device=device or "cpu").manual_seed(int(seed))
    if kind == "none":
        return None
    if kind == "square":
        return square_hole_mask(1, image_hw, hole_size, generator, device)[0]
    if kind == "half":
        return half_mask(image_hw, hidden_half).to(device)
    if kind == "mcar":
        return mcar_mask((image_hw[0] * image_hw[1],), missing_rate, generator, device)
    raise ValueError(f"mask kind must be one of {IMAGE_MASK_KINDS}, got {kind!r}")
