"""The predictor p(y | x̂, h_1) of thesis §5.2.3, and how a target enters an encoder.

x̂ is the observed x with its missing entries imputed by the decoder mean at h_1, so the
prediction sees both the data and its completion. ``y`` is a class label (categorical, e.g.
MNIST digits) or a real target column (Gaussian with fixed σ, §5.4.1). A target, like a feature,
has a mask: True = observed.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from vizvae.models.distributions import gaussian_log_prob
from vizvae.models.networks import mlp

TARGET_KINDS = ("categorical", "gaussian")


class Predictor(nn.Module):
    """[x̂, h_1] -> p(y | x̂, h_1): logits over ``n_classes`` or the mean of a Gaussian."""

    def __init__(self, n_features: int, h_dim: int, hidden_dims: Sequence[int], kind: str = "categorical",
                 n_classes: int = 10, sigma: float = 0.1 ** 0.5):
        super().__init__()
        if kind not in TARGET_KINDS:
            raise ValueError(f"target must be one of {TARGET_KINDS}, got {kind!r}")
        self.kind = kind
        self.n_classes = n_classes
        self.log_sigma = math.log(sigma)
        n_out = n_classes if kind == "categorical" else 1
        self.body = mlp([n_features + h_dim, *hidden_dims, n_out])

    def forward(self, x_hat: torch.Tensor, h1: torch.Tensor) -> torch.Tensor:
        """``x_hat`` (..., features), ``h1`` (..., h_dim) -> logits (..., classes) or mean (..., 1)."""
        lead = torch.broadcast_shapes(x_hat.shape[:-1], h1.shape[:-1])
        inputs = torch.cat([x_hat.expand(*lead, -1), h1.expand(*lead, -1)], dim=-1)
        return self.body(inputs.reshape(-1, inputs.shape[-1])).reshape(*lead, -1)

    def log_prob(self, outputs: torch.Tensor, y: torch.Tensor, y_mask: torch.Tensor | None) -> torch.Tensor:
        """log p(y_O | ·): ``outputs`` (..., batch, out), ``y`` and ``y_mask`` (batch,) -> (..., batch);
        0 where the target is missing."""
        y = y.to(outputs.dtype)
        if y_mask is not None:
            y = torch.where(y_mask, y, torch.zeros((), dtype=y.dtype, device=y.device))
        if self.kind == "categorical":
            index = y.long().clamp(0, self.n_classes - 1)
            log_probs = F.log_softmax(outputs, dim=-1)
            values = log_probs.gather(-1, index.unsqueeze(-1).expand(*log_probs.shape[:-1], 1)).squeeze(-1)
        else:
            log_std = torch.full_like(outputs[..., 0], self.log_sigma)
            values = gaussian_log_prob(y, outputs[..., 0], log_std)
        if y_mask is None:
            return values
        return torch.where(y_mask, values, torch.zeros((), dtype=values.dtype, device=values.device))

    def predictive(self, outputs: torch.Tensor) -> torch.Tensor:
        """Class probabilities (..., classes), or the predictive mean (..., 1)."""
        return F.softmax(outputs, dim=-1) if self.kind == "categorical" else outputs


def target_features(y: torch.Tensor | None, y_mask: torch.Tensor | None, batch: int, kind: str,
                    n_classes: int, like: torch.Tensor) -> torch.Tensor:
    """The encoder's view of the target: [y_O zero-filled (one-hot for labels), its mask], (batch, k)."""
    width = n_classes if kind == "categorical" else 1
    zeros = torch.zeros((batch, width + 1), dtype=like.dtype, device=like.device)
    if y is None:
        return zeros
    observed = torch.ones(batch, dtype=torch.bool, device=like.device) if y_mask is None else y_mask
    y = torch.where(observed, y.to(like.dtype), torch.zeros((), dtype=like.dtype, device=like.device))
    if kind == "categorical":
        value = F.one_hot(y.long().clamp(0, n_classes - 1), n_classes).to(like.dtype)
    else:
        value = y.unsqueeze(-1)
    value = value * observed.unsqueeze(-1).to(like.dtype)
    return torch.cat([value, observed.unsqueeze(-1).to(like.dtype)], dim=-1)
