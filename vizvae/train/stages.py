"""Staged training of the models with a predictor (thesis Algorithm 1, §5.2.6), under the §5.4
missingness protocol: every batch draws a per-row rate r ~ U(0.01, 0.99) and hides each pixel and
the label independently with probability r.

* Stage 1 — marginal VAEs (mixed-type models only): each column's VAE by its ELBO on the entries
  the batch observes (eq. 5.3), then frozen.
* Stage 2 — VI: encoder, transform, decoder and predictor by the model's ``objective`` (the ELBO
  5.6, KL-balanced by 5.7 for the first ``kl_balance_fraction`` of the steps; the MIWAE bound for
  MIWAE).
* Stage 3 — HMC (models with ``hmc_losses``): per step, the encoder by the ELBO; the generative
  parameters (transform, decoder, predictor) and the step sizes by the HMC objective (5.9); the
  inflation by SKSD (5.10) — each loss reaching only its own parameters via ``backward(inputs=)``.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any, Callable, Iterator

import torch

from vizvae.data import Dataset, protocol_masks
from vizvae.models.base import LatentVariableModel
from vizvae.train.loop import seeded_generator
from vizvae.train.progress import ProgressBar


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
    seed: int = 0
    eval_rows: int = 500

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


ProgressFactory = Callable[[int, str], ProgressBar | None]


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


def _smooth(previous: float | None, value: float) -> float:
    return value if previous is None else 0.95 * previous + 0.05 * value


def _test_elbo(model: LatentVariableModel, x_eval: torch.Tensor) -> float:
    """ELBO of fully observed test rows without labels (the same meaning as the plain VAE's)."""
    model.eval()
    with torch.no_grad():
        value = float(model.elbo(x_eval, generator=seeded_generator(0, x_eval.device)).elbo.mean())
    model.train()
    return value


def train_vi_stage(model: LatentVariableModel, dataset: Dataset, settings: StageSettings,
                   progress: ProgressBar | None = None) -> dict[str, list[float]]:
    """Stage 2: Adam on ``model.objective`` over every parameter but the HMC hyper-parameters."""
    device = model.device
    generator = seeded_generator(settings.seed, device)
    batches = ProtocolBatches(dataset, settings.batch_size, generator, device)
    x_eval = torch.as_tensor(dataset.x_test[: settings.eval_rows], device=device)
    hmc = getattr(model, "hmc", None)
    excluded = set() if hmc is None else {id(p) for p in hmc.parameters()}
    trained = [p for p in model.parameters() if id(p) not in excluded and p.requires_grad]  # not frozen marginals
    optimizer = torch.optim.Adam(trained, lr=settings.lr)
    warmup_steps = int(settings.kl_balance_fraction * settings.steps)
    eval_every = max(1, settings.steps // 10)
    log_every = max(1, settings.steps // 200)
    history: dict[str, list[float]] = {"step": [], "loss": [], "train_elbo": [], "log_target": [],
                                       "eval_step": [], "test_elbo": []}
    running: dict[str, float | None] = {"loss": None, "elbo": None, "log_target": None}
    model.train()
    for step in range(1, settings.steps + 1):
        x, mask, y, y_mask = next(batches)
        out = model.objective(x, mask, y, y_mask, generator=generator, warmup=step <= warmup_steps)
        optimizer.zero_grad(set_to_none=True)
        out.loss.backward()
        optimizer.step()
        running["loss"] = _smooth(running["loss"], float(out.loss.detach()))
        running["elbo"] = _smooth(running["elbo"], float(out.elbo.mean()))
        if "log_target" in out.extras:
            running["log_target"] = _smooth(running["log_target"], float(out.extras["log_target"].mean()))
        if step % log_every == 0 or step == settings.steps:
            history["step"].append(step)
            history["loss"].append(round(running["loss"], 4))
            history["train_elbo"].append(round(running["elbo"], 4))
            history["log_target"].append(round(running["log_target"] or 0.0, 4))
        if step % eval_every == 0 or step == settings.steps:
            history["eval_step"].append(step)
            history["test_elbo"].append(round(_test_elbo(model, x_eval), 4))
        if progress:
            progress.update(step, loss=running["loss"], ELBO=running["elbo"])
    model.eval()
    return history


def train_marginal_stage(model: LatentVariableModel, dataset: Dataset, settings: StageSettings,
                         progress: ProgressBar | None = None) -> dict[str, list[float]]:
    """Stage 1: Adam on the marginal VAEs alone (eq. 5.3) under the training masks, then freeze them."""
    device = model.device
    generator = seeded_generator(settings.seed + 2, device)
    batches = ProtocolBatches(dataset, settings.batch_size, generator, device)
    optimizer = torch.optim.Adam(model.marginals.parameters(), lr=settings.lr)
    log_every = max(1, settings.marginal_steps // 100)
    history: dict[str, list[float]] = {"step": [], "loss": [], "train_elbo": []}
    running: float | None = None
    model.train()
    for step in range(1, settings.marginal_steps + 1):
        x, mask, _, _ = next(batches)
        loss = model.marginal_objective(x, mask, generator)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        running = _smooth(running, float(loss.detach()))
        if step % log_every == 0 or step == settings.marginal_steps:
            history["step"].append(step)
            history["loss"].append(round(running, 4))
            history["train_elbo"].append(round(-running, 4))
        if progress:
            progress.update(step, loss=running)
    model.freeze_marginals()
    model.eval()
    return history


def _finite_grads(parameters: list[torch.nn.Parameter]) -> None:
    # A divergent chain is rejected in the forward pass, but 0 · NaN can still reach the backward
    # pass: drop such entries rather than poison Adam's state.
    for p in parameters:
        if p.grad is not None:
            torch.nan_to_num_(p.grad, nan=0.0, posinf=0.0, neginf=0.0)


def train_hmc_stage(model: LatentVariableModel, dataset: Dataset, settings: StageSettings,
                    progress: ProgressBar | None = None) -> dict[str, list]:
    """Stage 3 of Algorithm 1 (see the module docstring); returns its history."""
    device = model.device
    generator = seeded_generator(settings.seed + 1, device)
    batches = ProtocolBatches(dataset, settings.batch_size, generator, device)
    encoder_params = model.encoder_parameters()
    hmc_params = model.generative_parameters() + [model.hmc.log_step_sizes]
    inflation_params = [model.hmc.log_inflation]
    lr_networks = settings.lr if settings.lr_stage3 is None else settings.lr_stage3
    lr_step_sizes = settings.lr if settings.lr_step_sizes is None else settings.lr_step_sizes
    optimizers = [torch.optim.Adam(encoder_params, lr=lr_networks),
                  torch.optim.Adam([{"params": hmc_params[:-1]},
                                    {"params": hmc_params[-1:], "lr": lr_step_sizes}], lr=lr_networks),
                  torch.optim.Adam(inflation_params, lr=settings.lr_inflation)]
    log_every = max(1, settings.hmc_steps // 100)
    history: dict[str, list] = {"step": [], "train_elbo": [], "hmc_objective": [], "sksd": [],
                                "mean_acceptance": [], "divergences": [], "inflation": [], "mean_step_size": []}
    running: dict[str, float | None] = {"elbo": None, "hmc": None, "sksd": None, "acceptance": None}
    divergences = 0
    model.train()
    for step in range(1, settings.hmc_steps + 1):
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
        _finite_grads(encoder_params + hmc_params + inflation_params)
        for optimizer in optimizers:
            optimizer.step()
        running["elbo"] = _smooth(running["elbo"], float(out.elbo.mean()))
        running["hmc"] = _smooth(running["hmc"], float(losses.hmc_objective.detach()))
        running["sksd"] = _smooth(running["sksd"], float(losses.sksd.detach()))
        running["acceptance"] = _smooth(running["acceptance"], losses.result.acceptance_rate())
        divergences += losses.result.n_divergences()
        if step % log_every == 0 or step == settings.hmc_steps:
            history["step"].append(step)
            history["train_elbo"].append(round(running["elbo"], 4))
            history["hmc_objective"].append(round(running["hmc"], 4))
            history["sksd"].append(round(running["sksd"], 4))
            history["mean_acceptance"].append(round(running["acceptance"], 4))
            history["divergences"].append(divergences)
            history["inflation"].append([round(v, 4) for v in model.hmc.inflation.detach().tolist()])
            history["mean_step_size"].append(round(float(model.hmc.step_sizes.detach().mean()), 5))
        if progress:
            progress.update(step, ELBO=running["elbo"], HMC=running["hmc"], SKSD=running["sksd"],
                            acc=running["acceptance"])
    model.eval()
    return history


def train_stages(model: LatentVariableModel, dataset: Dataset, settings: StageSettings,
                 progress: ProgressFactory | None = None) -> list[dict[str, Any]]:
    """Run Stage 1 (mixed-type models), Stage 2 and, for HMC models with ``hmc_steps > 0``, Stage 3. One record per stage:
    name, steps, seconds and history (saved in config.json under ``training.stages``)."""
    torch.manual_seed(settings.seed)
    stages: list[tuple[str, int, Callable]] = []
    if hasattr(model, "marginals"):
        if settings.marginal_steps > 0:
            stages.append(("stage 1: marginal VAEs", settings.marginal_steps, train_marginal_stage))
        else:
            model.freeze_marginals()  # continuing from trained marginals
    if settings.steps > 0:
        stages.append(("stage 2: VI", settings.steps, train_vi_stage))
    if hasattr(model, "hmc_losses") and settings.hmc_steps > 0:
        stages.append(("stage 3: HMC", settings.hmc_steps, train_hmc_stage))
    records = []
    for name, steps, run in stages:
        bar = progress(steps, name) if progress else None
        started = time.perf_counter()
        history = run(model, dataset, settings, bar)
        records.append({"name": name, "steps": steps, "seconds": round(time.perf_counter() - started, 1),
                        "history": history})
    return records
