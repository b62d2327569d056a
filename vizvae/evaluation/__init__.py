"""Evaluation tasks behind ``python -m vizvae evaluate MODEL --task T --json``.

Each task is a function ``(checkpoint, options) -> dict`` (JSON-able) living in its own module;
``TASKS`` names them lazily so the CLI imports only the task it runs. A task given ``-o save=1``
may merge its results into the checkpoint's config.json (``saves_results``).
"""

from __future__ import annotations

import importlib
from typing import Any, Callable

# task name -> "module:function"
TASKS: dict[str, str] = {
    "bounds": "vizvae.evaluation.bounds:evaluate_bounds_task",
    "batches": "vizvae.evaluation.batches:evaluate_batches_task",  # Table 4.2: SVMs on UG-VAE's β
    "fd": "vizvae.evaluation.fd:evaluate_fd_task",  # Table 4.1: Fréchet distance on classifier features
    "disentanglement": "vizvae.evaluation.disentanglement:evaluate_disentanglement_task",
    "imputation": "vizvae.evaluation.imputation:imputation_task",
    "saia": "vizvae.evaluation.saia:saia_task",  # Fig. 5.5: sequential feature acquisition, mixed-type tables
    "inpainting": "vizvae.evaluation.inpainting:inpainting_task",  # Fig. 5.6: square holes, every method
    "hmc": "vizvae.evaluation.hmc:hmc_task",  # how well the trained HMC is tuned: acceptance, growth, ESS
    "exactness": "vizvae.evaluation.exactness:exactness_task",  # 2-D latents: HMC draws against quadrature
}


def saves_results(options: dict[str, Any]) -> bool:
    """Whether a task was asked (``-o save=1``) to store its results in the checkpoint's config.json;
    the CLI then rewrites the model card."""
    return str(options.get("save", "0")).lower() in ("1", "true", "yes")


def get_task(name: str) -> Callable[..., dict[str, Any]]:
    from vizvae.errors import VizvaeError

    if name not in TASKS:
        raise VizvaeError(f"unknown evaluation task {name!r}; expected one of {', '.join(sorted(TASKS))}")
    module, function = TASKS[name].split(":")
    return getattr(importlib.import_module(module), function)
