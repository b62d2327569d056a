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
from vizvae.device import to_device
from vizvae.progress import Progress, TrainingLog
from vizvae.train.parallel import GradientSync, Streams
from vizvae.train.resume import ALONE, LoopState, RunContext

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
              shown: Mapping[str, str], after_step: AfterStepFn | None = None,
              context: RunContext = ALONE, loop: LoopState | None = None) -> dict[str, list]:
    """Run up to ``log.total`` steps of ``train_step`` with the model in training mode, and return the history.

    After each step its scalars are smoothed; on every ``log.every``-th step (and the last) the
    step number and ``record(smoothed)`` join the history; then ``after_step`` runs, and the bar
    shows the smoothed scalars named in ``shown`` (bar label -> scalar name). When ``after_step``
    returns True the run ends there (a plateau), and that step joins the history too.
    With a saver in ``context`` and the loop's ``loop`` state, the run starts where a saved state
    of this stage left off, and writes its state when due (``resume.Saver``)."""
    model.train()
    saver = context.saver if loop is not None else None
    start = saver.resume_loop(model, log, loop) if saver is not None and loop is not None else 1
    for step in range(start, log.total + 1):
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
        if saver is not None and loop is not None:
            saver.after_step(step, model, log, loop)
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
        callback: Callable[[int, dict[str, float]], None] | None = None,
        context: RunContext = ALONE) -> dict[str, list[float]]:
    """Adam on mini-batches of the train split; returns the history saved in the checkpoint.

    Under ``context``'s shard plan (``parallel``) a step's batch is cut into shards — for a group
    model, a step takes one group per shard — and the ranks average their gradients."""
    torch.manual_seed(settings.seed)
    device = model.device
    plan = context.plan
    streams = Streams(settings.seed, plan, device)
    x_train = to_device(dataset.x_train, device)
    x_eval = to_device(dataset.x_test[: settings.eval_rows], device)
    optimizer = torch.optim.Adam(model.parameters(), lr=settings.lr)
    eval_every = settings.eval_every or every_nth(settings.steps, 10)
    log = (progress or Progress(enabled=False)).log(
        settings.steps, every=every_nth(settings.steps, 200),
        history_keys=("step", "loss", "train_elbo", "eval_step", "test_elbo"))
    # one batch is one group (UG-VAE); a mixed-domain data set gets an equal share from each domain
    groups = random_groups(len(x_train), settings.batch_size, streams.order, device, domain_sizes(dataset, "train"))
    one_group_per_shard = isinstance(model, GroupModel)
    sync = GradientSync(model, plan.ranks, context.mixed_precision)

    def shard_rows() -> list[tuple[int, torch.Tensor]]:
        if one_group_per_shard:
            drawn = [next(groups) for _ in range(plan.shards)]  # every rank draws every group, keeps its own
            return [(s, drawn[s]) for s in plan.local]
        return list(zip(plan.local, plan.split(next(groups))))

    def loss_of(item: tuple[int, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        shard, rows = item
        generator = streams.shard[shard]
        batch = x_train[rows]
        mask = None
        if settings.missing == "protocol":
            mask, _ = protocol_masks(len(batch), batch.shape[1], "train", generator, device)
        out = model.elbo(batch, mask, generator=generator)
        return out.loss, {"loss": float(out.loss.detach()), "elbo": float(out.elbo.mean())}

    def train_step(step: int) -> dict[str, float | None]:
        items = shard_rows()
        optimizer.zero_grad(set_to_none=True)
        scalars = sync.backward(items, loss_of)
        optimizer.step()
        return scalars

    def evaluate(step: int, smoothed: dict[str, float]) -> None:
        if (step % eval_every == 0 or step == settings.steps) and plan.ranks.is_main:
            value = held_out_elbo(model, x_eval)
            log.record(eval_step=step, test_elbo=round(value, 4))
            if callback:
                callback(step, {"loss": smoothed["loss"], "test_elbo": value})

    with sync:
        return run_steps(model, log, train_step,
                         lambda smoothed: {"loss": round(smoothed["loss"], 4), "train_elbo": round(smoothed["elbo"], 4)},
                         shown={"loss": "loss", "ELBO": "elbo"}, after_step=evaluate,
                         context=context, loop=LoopState([optimizer], streams, groups))


def evaluate_model(model: LatentVariableModel, dataset: Dataset, seed: int = 0) -> dict[str, float]:
    """Test-set ELBO and IWAE bounds (nats per data point) for the model card."""
    x_test = torch.as_tensor(dataset.x_test, device=model.device)
    if isinstance(model, GroupModel):  # UG-VAE bounds log p(X) group by group
        return model.evaluate_group_bounds(x_test, ks=(5, 50), seed=seed)
    bounds = evaluate_bounds(model, x_test, None, ks=(5, 50), seed=seed)
    return {"test_elbo": round(bounds["elbo"], 3), "test_iwae_5": round(bounds["iwae_5"], 3),
            "test_iwae_50": round(bounds["iwae_50"], 3), "n_test": int(len(x_test))}
