"""Where tensors live: CUDA when there is one, else the CPU."""

from __future__ import annotations

import torch


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``None`` or ``"auto"`` picks CUDA when available; anything else is taken as given."""
    if device is None or device == "auto":
        return default_device()
    return torch.device(device)


def to_device(array, device: str | torch.device) -> torch.Tensor:
    """``array`` as a tensor on ``device``; to a GPU through pinned memory with a non-blocking copy
    (the training sets go over once, before the first step)."""
    device = torch.device(device)
    tensor = torch.as_tensor(array)
    if device.type == "cuda":
        return tensor.pin_memory().to(device, non_blocking=True)
    return tensor.to(device)
