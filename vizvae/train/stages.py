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
from typing import Any, Callable, Iterator

import torch

from vizvae.data import Dataset, protocol_masks
from vizvae.kernels.hmc import scrub_non_finite_grads
from vizvae.kernels.stein import steer_to_acceptance
from vizvae.models.base import LatentVariableModel
from vizvae.models.capabilities import TableModel, TunedHMCModel
from vizvae.progress import Progress
from vizvae.train.loop import every_nth, held_out_elbo, run_steps, seeded_generator


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


class ProtocolBatches:
    """Endless shuffled mini-batches (x, mask, y, y_mask) of the train split with fresh §5.4 masks."""

    def __init__(self, dataset: Dataset, batch_size: int, generator: torch.Generator, device: torch.device):
        self.x = torch.as_tensor(dataset.x_train, device=device)
        self.y = None if dataset.y_train is None else torch.as_tensor(dataset.y_train, device=device)
        self.batch_size = batch_size
        self.generator = generator
        self.device = device
        self.order = torch.randperm(len(self.x), generator=generator, device=device)
        self.cursor = 0

    def __iter__(self) -> Iterator[tuple[torch.Tensor, ...]]:
        return self

    def __next__(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        if self.cursor + self.batch_size > len(self.x):
            self.order = torch.randperm(len(self.x), generator=self.generator, device=self.device)
            self.cursor = 0
        rows = self.order[self.cursor: self.cursor + self.batch_size]
        self.cursor += self.batch_size
        x = self.x[rows]
        mask, y_mask = protocol_masks(len(x), x.shape[1], "train", self.generator, self.device)
        y = None if self.y is None else self.y[rows]
        return x, mask, y, (None if y is None else y_mask)


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
StageFn = Callable[[LatentVariableModel, Dataset, StageSettings, Progress], dict[str, list]]


def train_vi_stage(model: LatentVariableModel, dataset: Dataset, settings: StageSettings,
                   progress: Progress = QUIET) -> dict[str, list[float]]:
    """Stage 2: Adam on ``model.objective`` over every parameter but the HMC hyper-parameters."""
    device = model.device
    generator = seeded_generator(settings.seed, device)
    batches = ProtocolBatches(dataset, settings.batch_size, generator, device)
    x_eval = torch.as_tensor(dataset.x_test[: settings.eval_rows], device=device)
    excluded = {id(p) for p in model.hmc.parameters()} if isinstance(model, TunedHMCModel) else set()
    trained = [p for p in model.parameters() if id(p) not in excluded and p.requires_grad]  # not frozen marginals
    optimizer = torch.optim.Adam(trained, lr=settings.lr)
    warmup_steps = int(settings.kl_balance_fraction * settings.steps)
    anneal_steps = int(settings.kl_anneal_fraction * settings.steps)
    eval_every = every_nth(settings.steps, 10)
    log = progress.log(settings.steps, every=every_nth(settings.steps, 200), stage=STAGE_2,
                       history_keys=("step", "loss", "train_elbo", "log_target", "eval_step", "test_elbo"))

    def train_step(step: int) -> dict[str, float | None]:
        x, mask, y, y_mask = next(batches)
        out = model.objective(x, mask, y, y_mask, generator=generator, warmup=step <= warmup_steps,
                              kl_scale=min(1.0, step / anneal_steps) if anneal_steps else 1.0)
        optimizer.zero_grad(set_to_none=True)
        out.loss.backward()
        optimizer.step()
        log_target = out.extras.get("log_target")
        return {"loss": float(out.loss.detach()), "elbo": float(out.elbo.mean()),
                "log_target": None if log_target is None else float(log_target.mean())}

    def record(smoothed: dict[str, float]) -> dict[str, float]:
        return {"loss": round(smoothed["loss"], 4), "train_elbo": round(smoothed["elbo"], 4),
                "log_target": round(smoothed.get("log_target") or 0.0, 4)}

    def evaluate(step: int, smoothed: dict[str, float]) -> None:
        if step % eval_every == 0 or step == settings.steps:
            log.record(eval_step=step, test_elbo=round(held_out_elbo(model, x_eval), 4))

    return run_steps(model, log, train_step, record, shown={"loss": "loss", "ELBO": "elbo"}, after_step=evaluate)


def train_marginal_stage(model: TableModel, dataset: Dataset, settings: StageSettings,
                         progress: Progress = QUIET) -> dict[str, list[float]]:
    """Stage 1: Adam on the marginal VAEs alone (eq. 5.3) under the training masks, then freeze them."""
    device = model.device
    generator = seeded_generator(settings.seed + 2, device)
    batches = ProtocolBatches(dataset, settings.batch_size, generator, device)
    optimizer = torch.optim.Adam(model.marginals.parameters(), lr=settings.lr)
    log = progress.log(settings.marginal_steps, every=every_nth(settings.marginal_steps, 100), stage=STAGE_1,
                       history_keys=("step", "loss", "train_elbo"))

    def train_step(step: int) -> dict[str, float]:
        x, mask, _, _ = next(batches)
        loss = model.marginal_objective(x, mask, generator)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return {"loss": float(loss.detach())}

    history = run_steps(model, log, train_step,
                        lambda smoothed: {"loss": round(smoothed["loss"], 4), "train_elbo": round(-smoothed["loss"], 4)},
                        shown={"loss": "loss"})
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
                    progress: Progress = QUIET) -> dict[str, list]:
    """Stage 3 of Algorithm 1 (see the module docstring); returns its history."""
    generator = seeded_generator(settings.seed + 1, model.device)
    batches = ProtocolBatches(dataset, settings.batch_size, generator, model.device)
    optimizers, encoder_params, hmc_params, inflation_params = _stage3_optimizers(model, settings)
    log = progress.log(settings.hmc_steps, every=every_nth(settings.hmc_steps, 100), stage=STAGE_3,
                       history_keys=("step", "train_elbo", "hmc_objective", "sksd", "mean_acceptance",
                                     "divergences", "inflation", "mean_step_size"))
    divergences = 0  # running count over the stage
    initial_mean_step = float(model.hmc.step_sizes.detach().mean())
    plateau = PlateauStop(plateau_window(settings), settings.target_acceptance)
    raw: dict[str, float] = {}

    def train_step(step: int) -> dict[str, float]:
        nonlocal divergences
        x, mask, y, y_mask = next(batches)
        for optimizer in optimizers:
            optimizer.zero_grad(set_to_none=True)
        out = model.elbo(x, mask, generator=generator, y=y, y_mask=y_mask)
        out.loss.backward(inputs=encoder_params)  # ψ ← ELBO (5.6)
        rows = slice(0, settings.hmc_batch_size)
        losses = model.hmc_losses(x[rows], mask[rows], None if y is None else y[rows],
                                  None if y_mask is None else y_mask[rows], generator=generator)
        losses.hmc_objective.neg().backward(inputs=hmc_params, retain_graph=True)  # θ, φ ← HMC objective (5.9)
        losses.sksd.backward(inputs=inflation_params)  # s ← SKSD (5.10)
        scrub_non_finite_grads(encoder_params + hmc_params + inflation_params)
        for optimizer in optimizers:
            optimizer.step()
        acceptance = losses.result.acceptance_rate()
        steer_to_acceptance(model.hmc, acceptance, settings.target_acceptance, settings.acceptance_gain)
        divergences += losses.result.n_divergences()
        raw.update(hmc=float(losses.hmc_objective.detach()), acceptance=acceptance)
        return {"elbo": float(out.elbo.mean()), "hmc": raw["hmc"], "sksd": float(losses.sksd.detach()),
                "acceptance": acceptance,
                "growth": float(model.hmc.step_sizes.detach().mean()) / initial_mean_step}

    def record(smoothed: dict[str, float]) -> dict[str, Any]:
        return {"train_elbo": round(smoothed["elbo"], 4), "hmc_objective": round(smoothed["hmc"], 4),
                "sksd": round(smoothed["sksd"], 4), "mean_acceptance": round(smoothed["acceptance"], 4),
                "divergences": divergences,
                "inflation": [round(v, 4) for v in model.hmc.inflation.detach().tolist()],
                "mean_step_size": round(float(model.hmc.step_sizes.detach().mean()), 5)}

    return run_steps(model, log, train_step, record,
                     shown={"ELBO": "elbo", "HMC": "hmc", "SKSD": "sksd", "acc": "acceptance", "φ×": "growth"},
                     after_step=lambda step, smoothed: plateau(step, raw["hmc"], raw["acceptance"]))


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
                 progress: Progress = QUIET) -> list[dict[str, Any]]:
    """Run Stage 1 (mixed-type models), Stage 2 and, for HMC models with ``hmc_steps > 0``, Stage 3.
    One record per stage: name, steps, seconds and history (saved in config.json under
    ``training.stages``)."""
    torch.manual_seed(settings.seed)
    records = []
    for name, steps, run in planned_stages(model, settings):
        started = time.perf_counter()
        history = run(model, dataset, settings, progress)
        ran = history["step"][-1] if history.get("step") else steps  # Stage 3 may stop on a plateau
        record = {"name": name, "steps": ran, "seconds": round(time.perf_counter() - started, 1), "history": history}
        if ran < steps:
            record["max_steps"] = steps
        records.append(record)
    return records
