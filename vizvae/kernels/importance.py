"""Importance-weighted estimators from log-weights alone (Burda et al. 2016; Mattei's slides, seed 003).

With draws z_k ~ q and log-weights log w_k = log p(x_O, z_k) − log q(z_k):

* ``log_mean_exp`` gives IWAE_K = log (1/K) Σ_k w_k, the importance-weighted bound on log p(x_O):
  the ELBO in expectation at K = 1, growing with K towards log p(x_O), and equal to it for every K
  when q is the exact posterior (every weight is then p(x_O));
* ``self_normalised`` gives the weights of self-normalised importance sampling of p(z | x_O);
* ``kish_ess`` says how many of the K draws carry the estimate.

Every model, estimator and figure that needs one of these calls the function here.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = ["log_mean_exp", "self_normalised", "kish_ess"]


def log_mean_exp(log_weights: Tensor, dim: int = 0) -> Tensor:
    """log (1/K) Σ_k exp(log w_k) over ``dim`` (size K): the IWAE_K bound from its log-weights."""
    return torch.logsumexp(log_weights, dim=dim) - math.log(log_weights.shape[dim])


def self_normalised(log_weights: Tensor, dim: int = -1) -> Tensor:
    """Normalised log-weights log w_k − log Σ_j w_j over ``dim``.

    An undefined or +inf log-weight (an overflowed density) counts as weight 0, and a set with no
    finite weight at all is weighed equally rather than turned into NaN."""
    log_weights = torch.nan_to_num(log_weights, nan=-torch.inf, posinf=-torch.inf)
    hopeless = ~torch.isfinite(log_weights).any(dim, keepdim=True)
    log_weights = torch.where(hopeless, torch.zeros_like(log_weights), log_weights)
    return log_weights - torch.logsumexp(log_weights, dim=dim, keepdim=True)


def kish_ess(log_weights: Tensor, dim: int = -1) -> Tensor:
    """Kish's effective sample size (Σ w)² / Σ w² over ``dim``, from normalised or unnormalised
    log-weights: K for equal weights, 1 when one draw carries all the weight."""
    return torch.exp(2.0 * torch.logsumexp(log_weights, dim=dim) - torch.logsumexp(2.0 * log_weights, dim=dim))
