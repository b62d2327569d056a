"""The training loop. ``run_steps`` is the one loop every trainer in vizvae runs (``fit`` here, the
stages of Algorithm 1 in ``stages.py``); ``fit`` trains any model that returns a ``ModelOutput``
from ``elbo``."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Callable, Mapping

import torch

from vizvae.data import Dataset, protocol_masks
from vizvae.data.batches import domain_sizes, random_groups
from vizvae.inference.importance import evaluate_bounds
from vizvae.models.base import LatentVariableModel
from vizvae.models.capabilities import GroupModel
from vizvae.progress import Progress, TrainingLog

# one optimiser step -> its raw scalars (smoothed by the log)
StepFn = Callable[[int], Mapping[str, float | None]]
# the smoothed scalars -> the history entries of a logged step
RecordFn = Callable[[dict[str, float]], dict[str, Any]]
# after every step (e.g. a test evaluation): (step, smoothed scalars) -> True to stop the run there
AfterStepFn = Callable[[int, dict[str, float]], bool | None]


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


def run_steps(model: torch.nn.Module, log: TrainingLog, train_step: StepFn, record: RecordFn,
              shown: Mapping[str, str], after_step: AfterStepFn | None = None) -> dict[str, list]:
    """Run up to ``log.total`` steps of ``train_step`` with the model in training mode, and return the history.

    After each step its scalars are smoothed; on every ``log.every``-th step (and the last) the
    step number and ``record(smoothed)`` join the history; then ``after_step`` runs, and the bar
    shows the smoothed scalars named in ``shown`` (bar label -> scalar name). When ``after_step``
    returns True the run ends there (a plateau), and that step joins the history too."""
    model.train()
    for step in range(1, log.total + 1):
        smoothed = log.smooth(**train_step(step))
        recorded = log.due(step)
        if recorded:
            log.record(step=step, **record(smoothed))
        stop = bool(after_step(step, smoothed)) if after_step is not None else False
        log.advance(**{label: smoothed.get(name) for label, name in shown.items()})
        if stop:
            if not recorded:
                log.record(step=step, **record(smoothed))
            break
    log.close()
    model.eval()
    return log.history


def held_out_elbo(model: LatentVariableModel, x_eval: torch.Tensor) -> float:
    """Mean ELBO of fully observed test rows at a fixed seed (the running test curve)."""
    model.eval()
    with torch.no_grad():
        value = float(model.elbo(x_eval, generator=seeded_generator(0, x_eval.device)).elbo.mean())
    model.train()
    return value


def every_nth(total: int, times: int) -> int:
    """The interval that gives about ``times`` entries over ``total`` steps."""
    return max(1, total // times)


def fit(model: LatentVariableModel, dataset: Dataset, settings: TrainSettings, progress: Progress | None = None,
        callback: Callable[[int, dict[str, float]], None] | None = None) -> dict[str, list[float]]:
    """Adam on mini-batches of the train split; returns the history saved in the checkpoint."""
    torch.manual_seed(settings.seed)
    device = model.device
    generator = seeded_generator(settings.seed, device)
    x_train = torch.as_tensor(dataset.x_train, device=device)
    x_eval = torch.as_tensor(dataset.x_test[: settings.eval_rows], device=device)
    optimizer = torch.optim.Adam(model.parameters(), lr=settings.lr)
    eval_every = settings.eval_every or every_nth(settings.steps, 10)
    log = (progress or Progress(enabled=False)).log(
        settings.steps, every=every_nth(settings.steps, 200),
        history_keys=("step", "loss", "train_elbo", "eval_step", "test_elbo"))
    # one batch is one group (UG-VAE); a mixed-domain data set gets an equal share from each domain
    groups = random_groups(len(x_train), settings.batch_size, generator, device, domain_sizes(dataset, "train"))

    def train_step(step: int) -> dict[str, float]:
        batch = x_train[next(groups)]
        mask = None
        if settings.missing == "protocol":
            mask, _ = protocol_masks(len(batch), batch.shape[1], "train", generator, device)
        out = model.elbo(batch, mask, generator=generator)
        optimizer.zero_grad(set_to_none=True)
        out.loss.backward()
        optimizer.step()
        return {"loss": float(out.loss.detach()), "elbo": float(out.elbo.mean())}

    def evaluate(step: int, smoothed: dict[str, float]) -> None:
        if step % eval_every == 0 or step == settings.steps:
            value = held_out_elbo(model, x_eval)
            log.record(eval_step=step, test_elbo=round(value, 4))
            if callback:
                callback(step, {"loss": smoothed["loss"], "test_elbo": value})

    return run_steps(model, log, train_step,
                     lambda smoothed: {"loss": round(smoothed["loss"], 4), "train_elbo": round(smoothed["elbo"], 4)},
                     shown={"loss": "loss", "ELBO": "elbo"}, after_step=evaluate)


def evaluate_model(model: LatentVariableModel, dataset: Dataset, seed: int = 0) -> dict[str, float]:
    """Test-set ELBO and IWAE bounds (nats per data point) for the model card."""
    x_test = torch.as_tensor(dataset.x_test, device=model.device)
    if isinstance(model, GroupModel):  # UG-VAE bounds log p(X) group by group
        return model.evaluate_group_bounds(x_test, ks=(5, 50), seed=seed)
    bounds = evaluate_bounds(model, x_test, None, ks=(5, 50), seed=seed)
    return {"test_elbo": round(bounds["elbo"], 3), "test_iwae_5": round(bounds["iwae_5"], 3),
            "test_iwae_50": round(bounds["iwae_50"], 3), "n_test": int(len(x_test))}
