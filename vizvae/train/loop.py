"""Training loops. One loop for every model that returns a ``ModelOutput`` from ``elbo``."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Callable

import torch

from vizvae.data import Dataset, protocol_masks
from vizvae.data.batches import domain_sizes, random_groups
from vizvae.inference.importance import evaluate_bounds
from vizvae.models.base import LatentVariableModel
from vizvae.train.progress import ProgressBar


@dataclass
class TrainSettings:
    steps: int = 2000
    batch_size: int = 128
    lr: float = 1e-3
    seed: int = 0
    missing: str = "none"  # "none" | "protocol" (thesis §5.4 per-row MCAR rates, redrawn each batch)
    eval_every: int = 0  # 0: about 10 evaluations over the run
    eval_rows: int = 500  # test rows used for the running test ELBO

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def seeded_generator(seed: int, device: torch.device | str = "cpu") -> torch.Generator:
    return torch.Generator(device=device).manual_seed(seed)


def fit(model: LatentVariableModel, dataset: Dataset, settings: TrainSettings,
        progress: ProgressBar | None = None,
        callback: Callable[[int, dict[str, float]], None] | None = None) -> dict[str, list[float]]:
    """Adam on mini-batches of the train split; returns the history saved in the checkpoint."""
    torch.manual_seed(settings.seed)
    device = model.device
    generator = seeded_generator(settings.seed, device)
    x_train = torch.as_tensor(dataset.x_train, device=device)
    x_eval = torch.as_tensor(dataset.x_test[: settings.eval_rows], device=device)
    optimizer = torch.optim.Adam(model.parameters(), lr=settings.lr)
    n = len(x_train)
    eval_every = settings.eval_every or max(1, settings.steps // 10)
    log_every = max(1, settings.steps // 200)
    history: dict[str, list[float]] = {"step": [], "loss": [], "train_elbo": [], "eval_step": [], "test_elbo": []}
    # one batch is one group (UG-VAE); a mixed-domain data set gets an equal share from each domain
    groups = random_groups(n, settings.batch_size, generator, device, domain_sizes(dataset, "train"))
    running_loss = running_elbo = None
    model.train()
    for step in range(1, settings.steps + 1):
        batch = x_train[next(groups)]
        mask = None
        if settings.missing == "protocol":
            mask, _ = protocol_masks(len(batch), batch.shape[1], "train", generator, device)
        out = model.elbo(batch, mask, generator=generator)
        optimizer.zero_grad(set_to_none=True)
        out.loss.backward()
        optimizer.step()
        loss, elbo = float(out.loss.detach()), float(out.elbo.mean())
        running_loss = loss if running_loss is None else 0.95 * running_loss + 0.05 * loss
        running_elbo = elbo if running_elbo is None else 0.95 * running_elbo + 0.05 * elbo
        if step % log_every == 0 or step == settings.steps:
            history["step"].append(step)
            history["loss"].append(round(running_loss, 4))
            history["train_elbo"].append(round(running_elbo, 4))
        if step % eval_every == 0 or step == settings.steps:
            model.eval()
            with torch.no_grad():
                test_elbo = float(model.elbo(x_eval, generator=seeded_generator(0, device)).elbo.mean())
            model.train()
            history["eval_step"].append(step)
            history["test_elbo"].append(round(test_elbo, 4))
            if callback:
                callback(step, {"loss": running_loss, "test_elbo": test_elbo})
        if progress:
            progress.update(step, loss=running_loss, ELBO=running_elbo)
    model.eval()
    return history


def evaluate_model(model: LatentVariableModel, dataset: Dataset, seed: int = 0) -> dict[str, float]:
    """Test-set ELBO and IWAE bounds (nats per data point) for the model card."""
    x_test = torch.as_tensor(dataset.x_test, device=model.device)
    if hasattr(model, "evaluate_group_bounds"):  # UG-VAE bounds log p(X) group by group
        return model.evaluate_group_bounds(x_test, ks=(5, 50), seed=seed)
    bounds = evaluate_bounds(model, x_test, None, ks=(5, 50), seed=seed)
    return {"test_elbo": round(bounds["elbo"], 3), "test_iwae_5": round(bounds["iwae_5"], 3),
            "test_iwae_50": round(bounds["iwae_50"], 3), "n_test": int(len(x_test))}
