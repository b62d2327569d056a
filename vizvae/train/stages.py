"""Staged training of the models with a predictor (thesis Algorithm 1, §5.2.6), under the §5.4
missingness protocol: every batch draws a per-row rate r ~ U(0.01, 0.99) and hides each pixel and
the label independently with probability r.

* Stage 1 — marginal VAEs (mixed-type models only): each column's VAE by its ELBO on the entries
  the batch observes (eq. 5.3), then frozen.
* Stage 2 — VI: encoder, transform, decoder and predictor by the model's ``objective`` (the ELBO
  5.6, KL-balanced by 5.7 for the first ``kl_balance_fraction`` of the steps; the MIWAE bound for
  MIWAE).
* Stage 3 — HMC (models with trained HMC hyper-parameters, ``TunedHMCModel``): per step, the encoder by the ELBO; the generative
  parameters (transform, decoder, predictor) and the step sizes by the HMC objective (5.9); the
  inflation by SKSD (5.10) — each loss reaching only its own parameters via ``backward(inputs=)``;
  then the step sizes' overall scale one Robbins–Monro step towards ``target_acceptance``
  (``stein.steer_to_acceptance``: the objective alone leaves tuned samplers at acceptance ≈ 0.99).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any, Callable, Iterator, NamedTuple

import torch

from vizvae.data import Dataset, protocol_masks
from vizvae.device import to_device
from vizvae.errors import VizvaeError
from vizvae.kernels.hmc import scrub_non_finite_grads
from vizvae.kernels.stein import steer_to_acceptance
from vizvae.models.base import LatentVariableModel
from vizvae.models.capabilities import TableModel, TunedHMCModel
from vizvae.progress import Progress
from vizvae.train.loop import every_nth, held_out_elbo, run_steps
from vizvae.train.parallel import GradientSync, Streams, average_gradients, mean_over_ranks
from vizvae.train.resume import ALONE, LoopState, RunContext


@dataclass
class StageSettings:
    steps: int = 6000  # Stage 2 (VI)
    marginal_steps: int = 0  # Stage 1 (mixed-type models only)
    hmc_steps: int = 0  # Stage 3 (HMC models only)
    batch_size: int = 128
    hmc_batch_size: int = 8  # rows per Stage-3 HMC run, each with ``sksd_chains`` chains
    lr: float = 1e-3  # encoder, decoder, predictor, step sizes (§5.4.1, MLP)
    lr_inflation: float = 1e-2
    lr_stage3: float | None = None  # encoder and generative parameters in Stage 3 (None: lr)
    lr_step_sizes: float | None = None  # log φ in Stage 3 (None: lr)
    kl_balance_fraction: float = 0.1  # eq. (5.7) warm-up
    kl_anneal_fraction: float = 0.0  # KL annealing: the KL's weight rises linearly 0 -> 1 over this share of Stage 2
    target_acceptance: float | None = 0.65  # Stage 3 steers the step sizes' scale here (None: eq. 5.9 alone)
    acceptance_gain: float = 0.05
    plateau_window: int | None = None  # Stage 3 stops on a plateau judged over windows of this many steps
    #                                    (None: max(25, hmc_steps // 8); 0: run all hmc_steps)
    seed: int = 0
    eval_rows: int = 500

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class ShardBatch(NamedTuple):
    """One shard of a step's batch: its rows with fresh §5.4 masks, and the shard's random stream."""

    shard: int
    x: torch.Tensor
    mask: torch.Tensor
    y: torch.Tensor | None
    y_mask: torch.Tensor | None
    generator: torch.Generator


class ProtocolBatches:
    """Endless shuffled mini-batches of the train split, each cut into this rank's shards
    (``ShardBatch``) with fresh §5.4 masks drawn from each shard's stream. The rows come from the
    order stream, shared by every rank."""

    def __init__(self, dataset: Dataset, batch_size: int, streams: Streams, device: torch.device):
        self.x = to_device(dataset.x_train, device)
        self.y = None if dataset.y_train is None else to_device(dataset.y_train, device)
        self.batch_size = batch_size
        self.streams = streams
        self.device = device
        self.order = torch.randperm(len(self.x), generator=streams.order, device=device)
        self.cursor = 0

    def __iter__(self) -> Iterator[list[ShardBatch]]:
        return self

    def __next__(self) -> list[ShardBatch]:
        if self.cursor + self.batch_size > len(self.x):
            self.order = torch.randperm(len(self.x), generator=self.streams.order, device=self.device)
            self.cursor = 0
        rows = self.order[self.cursor: self.cursor + self.batch_size]
        self.cursor += self.batch_size
        plan = self.streams.plan
        batches = []
        for shard, part in zip(plan.local, plan.split(rows)):
            generator = self.streams.shard[shard]
            x = self.x[part]
            mask, y_mask = protocol_masks(len(x), x.shape[1], "train", generator, self.device)
            y = None if self.y is None else self.y[part]
            batches.append(ShardBatch(shard, x, mask, y, None if y is None else y_mask, generator))
        return batches

    def state(self) -> tuple[dict[str, torch.Tensor], dict[str, int]]:
        return {"order": self.order.cpu()}, {"cursor": self.cursor}

    def restore(self, tensors: dict[str, torch.Tensor], info: dict[str, int]) -> None:
        if len(tensors["order"]) != len(self.x):
            raise VizvaeError("the saved data order does not fit this data set")
        self.order, self.cursor = tensors["order"].to(self.device), int(info["cursor"])


class PlateauStop:
    """Stage 3's stopping rule: ``hmc_steps`` is a ceiling, and the stage ends at the first window
    boundary where (a) the mean HMC objective of the last ``window`` steps is not significantly
    above the window before it (gain < 2 standard errors of the difference of the two means, the
    steps' values treated as independent), and (b) the window's mean acceptance is within
    ``tolerance`` of the target (when one is set) — a plateau of the objective with the step sizes
    settled, not a fixed step count."""

    def __init__(self, window: int, target: float | None, tolerance: float = 0.05):
        self.window, self.target, self.tolerance = window, target, tolerance
        self.objective: list[float] = []
        self.acceptance: list[float] = []

    def __call__(self, step: int, objective: float, acceptance: float) -> bool:
        self.objective.append(objective)
        self.acceptance.append(acceptance)
        w = self.window
        if w <= 1 or step % w or len(self.objective) < 2 * w:
            return False
        last, before = torch.tensor(self.objective[-w:]), torch.tensor(self.objective[-2 * w: -w])
        gain = float(last.mean() - before.mean())
        standard_error = float(((last.var() + before.var()) / w).sqrt())
        settled = self.target is None or abs(sum(self.acceptance[-w:]) / w - self.target) <= self.tolerance
        return settled and gain < 2.0 * standard_error


def plateau_window(settings: StageSettings) -> int:
    if settings.plateau_window is not None:
        return settings.plateau_window
    return max(25, settings.hmc_steps // 8)


STAGE_1, STAGE_2, STAGE_3 = "stage 1: marginal VAEs", "stage 2: VI", "stage 3: HMC"
QUIET = Progress(enabled=False)
StageFn = Callable[[LatentVariableModel, Dataset, StageSettings, Progress, RunContext], dict[str, list]]


def train_vi_stage(model: LatentVariableModel, dataset: Dataset, settings: StageSettings,
                   progress: Progress = QUIET, context: RunContext = ALONE) -> dict[str, list[float]]:
    """Stage 2: Adam on ``model.objective`` over every parameter but the HMC hyper-parameters."""
    device = model.device
    streams = Streams(settings.seed, context.plan, device)
    batches = ProtocolBatches(dataset, settings.batch_size, streams, device)
    x_eval = torch.as_tensor(dataset.x_test[: settings.eval_rows], device=device)
    excluded = {id(p) for p in model.hmc.parameters()} if isinstance(model, TunedHMCModel) else set()
    trained = [p for p in model.parameters() if id(p) not in excluded and p.requires_grad]  # not frozen marginals
    optimizer = torch.optim.Adam(trained, lr=settings.lr)
    warmup_steps = int(settings.kl_balance_fraction * settings.steps)
    anneal_steps = int(settings.kl_anneal_fraction * settings.steps)
    eval_every = every_nth(settings.steps, 10)
    log = progress.log(settings.steps, every=every_nth(settings.steps, 200), stage=STAGE_2,
                       history_keys=("step", "loss", "train_elbo", "log_target", "eval_step", "test_elbo"))
    sync = GradientSync(model, context.ranks, context.mixed_precision, trained)

    def train_step(step: int) -> dict[str, float | None]:
        def loss_of(batch: ShardBatch) -> tuple[torch.Tensor, dict[str, float | None]]:
            out = model.objective(batch.x, batch.mask, batch.y, batch.y_mask, generator=batch.generator,
                                  warmup=step <= warmup_steps,
                                  kl_scale=min(1.0, step / anneal_steps) if anneal_steps else 1.0)
            log_target = out.extras.get("log_target")
            return out.loss, {"loss": float(out.loss.detach()), "elbo": float(out.elbo.mean()),
                              "log_target": None if log_target is None else float(log_target.mean())}

        shards = next(batches)
        optimizer.zero_grad(set_to_none=True)
        scalars = sync.backward(shards, loss_of)
        optimizer.step()
        return scalars

    def record(smoothed: dict[str, float]) -> dict[str, float]:
        return {"loss": round(smoothed["loss"], 4), "train_elbo": round(smoothed["elbo"], 4),
                "log_target": round(smoothed.get("log_target") or 0.0, 4)}

    def evaluate(step: int, smoothed: dict[str, float]) -> None:
        if (step % eval_every == 0 or step == settings.steps) and context.ranks.is_main:
            log.record(eval_step=step, test_elbo=round(held_out_elbo(model, x_eval), 4))

    with sync:
        return run_steps(model, log, train_step, record, shown={"loss": "loss", "ELBO": "elbo"}, after_step=evaluate,
                         context=context, loop=LoopState([optimizer], streams, batches))


def train_marginal_stage(model: TableModel, dataset: Dataset, settings: StageSettings,
                         progress: Progress = QUIET, context: RunContext = ALONE) -> dict[str, list[float]]:
    """Stage 1: Adam on the marginal VAEs alone (eq. 5.3) under the training masks, then freeze them."""
    device = model.device
    streams = Streams(settings.seed + 2, context.plan, device)
    batches = ProtocolBatches(dataset, settings.batch_size, streams, device)
    optimizer = torch.optim.Adam(model.marginals.parameters(), lr=settings.lr)
    log = progress.log(settings.marginal_steps, every=every_nth(settings.marginal_steps, 100), stage=STAGE_1,
                       history_keys=("step", "loss", "train_elbo"))
    sync = GradientSync(model, context.ranks, context.mixed_precision, list(model.marginals.parameters()))

    def loss_of(batch: ShardBatch) -> tuple[torch.Tensor, dict[str, float]]:
        loss = model.marginal_objective(batch.x, batch.mask, batch.generator)
        return loss, {"loss": float(loss.detach())}

    def train_step(step: int) -> dict[str, float | None]:
        shards = next(batches)
        optimizer.zero_grad(set_to_none=True)
        scalars = sync.backward(shards, loss_of)
        optimizer.step()
        return scalars

    with sync:
        history = run_steps(model, log, train_step,
                            lambda smoothed: {"loss": round(smoothed["loss"], 4), "train_elbo": round(-smoothed["loss"], 4)},
                            shown={"loss": "loss"}, context=context, loop=LoopState([optimizer], streams, batches))
    model.freeze_marginals()
    return history


def _stage3_optimizers(model: TunedHMCModel, settings: StageSettings) -> tuple[list[torch.optim.Optimizer], list, list, list]:
    """Adam for the encoder (ψ), the generative parameters with the step sizes (θ, φ) and the
    inflation (s); and those three parameter lists."""
    encoder_params = model.encoder_parameters()
    hmc_params = model.generative_parameters() + [model.hmc.log_step_sizes]
    inflation_params = [model.hmc.log_inflation]
    lr_networks = settings.lr if settings.lr_stage3 is None else settings.lr_stage3
    lr_step_sizes = settings.lr if settings.lr_step_sizes is None else settings.lr_step_sizes
    optimizers = [torch.optim.Adam(encoder_params, lr=lr_networks),
                  torch.optim.Adam([{"params": hmc_params[:-1]},
                                    {"params": hmc_params[-1:], "lr": lr_step_sizes}], lr=lr_networks),
                  torch.optim.Adam(inflation_params, lr=settings.lr_inflation)]
    return optimizers, encoder_params, hmc_params, inflation_params


def train_hmc_stage(model: TunedHMCModel, dataset: Dataset, settings: StageSettings,
                    progress: Progress = QUIET, context: RunContext = ALONE) -> dict[str, list]:
    """Stage 3 of Algorithm 1 (see the module docstring); returns its history. Each shard runs
    HMC on the first ``hmc_batch_size / shards`` of its rows; the gradients of all three losses
    are averaged over the ranks before the optimisers step, and the acceptance that steers the
    step sizes is the mean over every shard, so the step sizes and inflation stay the same on all."""
    plan = context.plan
    streams = Streams(settings.seed + 1, plan, model.device)
    batches = ProtocolBatches(dataset, settings.batch_size, streams, model.device)
    optimizers, encoder_params, hmc_params, inflation_params = _stage3_optimizers(model, settings)
    log = progress.log(settings.hmc_steps, every=every_nth(settings.hmc_steps, 100), stage=STAGE_3,
                       history_keys=("step", "train_elbo", "hmc_objective", "sksd", "mean_acceptance",
                                     "divergences", "inflation", "mean_step_size"))
    counters = {"divergences": 0, "initial_mean_step": float(model.hmc.step_sizes.detach().mean())}
    plateau = PlateauStop(plateau_window(settings), settings.target_acceptance)
    raw: dict[str, float] = {}
    hmc_rows = slice(0, settings.hmc_batch_size // plan.shards)

    def shard_losses(batch: ShardBatch, share: float) -> dict[str, float]:
        out = model.elbo(batch.x, batch.mask, generator=batch.generator, y=batch.y, y_mask=batch.y_mask)
        (out.loss * share).backward(inputs=encoder_params)  # ψ ← ELBO (5.6)
        y = None if batch.y is None else batch.y[hmc_rows]
        losses = model.hmc_losses(batch.x[hmc_rows], batch.mask[hmc_rows], y,
                                  None if batch.y_mask is None else batch.y_mask[hmc_rows], generator=batch.generator)
        (losses.hmc_objective.neg() * share).backward(inputs=hmc_params, retain_graph=True)  # θ, φ ← HMC objective (5.9)
        (losses.sksd * share).backward(inputs=inflation_params)  # s ← SKSD (5.10)
        return {"elbo": float(out.elbo.mean()), "hmc": float(losses.hmc_objective.detach()),
                "sksd": float(losses.sksd.detach()), "acceptance": losses.result.acceptance_rate(),
                "divergences": float(losses.result.n_divergences())}

    def train_step(step: int) -> dict[str, float]:
        shards = next(batches)
        for optimizer in optimizers:
            optimizer.zero_grad(set_to_none=True)
        local = [shard_losses(batch, 1.0 if len(shards) == 1 else 1.0 / len(shards)) for batch in shards]
        scalars = mean_over_ranks({k: sum(v[k] for v in local) / len(local) for k in local[0]}, plan.ranks)
        average_gradients(encoder_params + hmc_params + inflation_params, plan.ranks)
        scrub_non_finite_grads(encoder_params + hmc_params + inflation_params)
        for optimizer in optimizers:
            optimizer.step()
        steer_to_acceptance(model.hmc, scalars["acceptance"], settings.target_acceptance, settings.acceptance_gain)
        counters["divergences"] += round(scalars.pop("divergences") * plan.shards)
        raw.update(hmc=scalars["hmc"], acceptance=scalars["acceptance"])
        return {**scalars, "growth": float(model.hmc.step_sizes.detach().mean()) / counters["initial_mean_step"]}

    def record(smoothed: dict[str, float]) -> dict[str, Any]:
        return {"train_elbo": round(smoothed["elbo"], 4), "hmc_objective": round(smoothed["hmc"], 4),
                "sksd": round(smoothed["sksd"], 4), "mean_acceptance": round(smoothed["acceptance"], 4),
                "divergences": counters["divergences"],
                "inflation": [round(v, 4) for v in model.hmc.inflation.detach().tolist()],
                "mean_step_size": round(float(model.hmc.step_sizes.detach().mean()), 5)}

    def restore_counters(saved: dict[str, Any]) -> None:
        counters.update(divergences=int(saved["divergences"]), initial_mean_step=float(saved["initial_mean_step"]))
        plateau.objective, plateau.acceptance = list(saved["plateau_objective"]), list(saved["plateau_acceptance"])

    loop = LoopState(optimizers, streams, batches, restore_counters=restore_counters,
                     counters=lambda: {**counters, "plateau_objective": plateau.objective,
                                       "plateau_acceptance": plateau.acceptance})
    return run_steps(model, log, train_step, record,
                     shown={"ELBO": "elbo", "HMC": "hmc", "SKSD": "sksd", "acc": "acceptance", "φ×": "growth"},
                     after_step=lambda step, smoothed: plateau(step, raw["hmc"], raw["acceptance"]),
                     context=context, loop=loop)


def planned_stages(model: LatentVariableModel, settings: StageSettings) -> list[tuple[str, int, StageFn]]:
    """The stages this model runs under these settings: (name, steps, trainer)."""
    stages: list[tuple[str, int, StageFn]] = []
    if isinstance(model, TableModel):
        if settings.marginal_steps > 0:
            stages.append((STAGE_1, settings.marginal_steps, train_marginal_stage))
        else:
            model.freeze_marginals()  # continuing from trained marginals
    if settings.steps > 0:
        stages.append((STAGE_2, settings.steps, train_vi_stage))
    if isinstance(model, TunedHMCModel) and settings.hmc_steps > 0:
        stages.append((STAGE_3, settings.hmc_steps, train_hmc_stage))
    return stages


def train_stages(model: LatentVariableModel, dataset: Dataset, settings: StageSettings,
                 progress: Progress = QUIET, context: RunContext = ALONE) -> list[dict[str, Any]]:
    """Run Stage 1 (mixed-type models), Stage 2 and, for HMC models with ``hmc_steps > 0``, Stage 3.
    One record per stage: name, steps, seconds and history (saved in config.json under
    ``training.stages``). A run resumed from a saved state (``context.saver.pending``) skips the
    stages that state had finished, keeping their records."""
    torch.manual_seed(settings.seed)
    saver = context.saver
    resumed_stage = int(saver.pending.info["stage"]) if saver is not None and saver.pending is not None else 0
    records: list[dict[str, Any]] = []
    if resumed_stage:
        assert saver is not None and saver.pending is not None
        records = list(saver.pending.info["stages_done"])
    for index, (name, steps, run) in enumerate(planned_stages(model, settings)):
        if index < resumed_stage:
            if run is train_marginal_stage:
                model.freeze_marginals()  # as the finished Stage 1 left them
            continue
        if saver is not None:
            saver.stage, saver.stages_done = index, records
        started = time.perf_counter()
        history = run(model, dataset, settings, progress, context)
        ran = history["step"][-1] if history.get("step") else steps  # Stage 3 may stop on a plateau
        record = {"name": name, "steps": ran, "seconds": round(time.perf_counter() - started, 1), "history": history}
        if ran < steps:
            record["max_steps"] = steps
        records.append(record)
    return records
