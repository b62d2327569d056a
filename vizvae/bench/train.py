"""Data-parallel training throughput: ``python -m vizvae bench --only train --json [-o steps=6]
[-o repeats=3] [-o hidden=2048] [-o batch=2048] [-o dataset=mnist]``.

* ``ddp_scaling_2proc`` — images per second of 2 gloo processes (1 thread each, DDP, the global
  batch cut into 2 shards) ÷ images per second of 1 process (1 thread, the same global batch), on
  a VAE big enough for compute to outweigh the gradient all-reduce (MNIST, hidden layers of
  ``hidden`` units). Both are timed inside ``fit``, from the end of its third step to the end of
  its last (process start, data loading, DDP's construction and first steps excluded); the runs
  alternate 1, 2, 2, 1, … and the figure is the median of the paired ratios. 2 would be perfect
  scaling. Each step ends with a 1-row test ELBO on rank 0, the timing hook (microseconds).
* ``ddp_images_per_s_1proc`` / ``ddp_images_per_s_2proc`` — the medians behind it.

Each timed run is a fresh set of processes (``python -m vizvae.bench.train --worker``), started
with the environment torchrun would give them.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from typing import Any

WORKER_TIMEOUT_S = 900


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def timed_run(processes: int, steps: int, hidden: int, batch: int, dataset: str = "digits") -> float:
    """Images per second of one training run on ``processes`` ranks (rank 0's measurement)."""
    port = _free_port()
    command = [sys.executable, "-m", "vizvae.bench.train", "--worker", "--steps", str(steps), "--hidden", str(hidden),
               "--batch", str(batch), "--shards", str(processes), "--dataset", dataset]
    children = []
    for rank in range(processes):
        env = {**os.environ, "OMP_NUM_THREADS": "1", "GLOO_SOCKET_IFNAME": os.environ.get("GLOO_SOCKET_IFNAME", "lo")}
        if processes > 1:
            env.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(processes),
                       LOCAL_RANK=str(rank))
        else:
            for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
                env.pop(key, None)
        children.append(subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    outputs = [child.communicate(timeout=WORKER_TIMEOUT_S) for child in children]
    for child, (_, err) in zip(children, outputs):
        if child.returncode != 0:
            raise RuntimeError(f"a benchmark worker failed: {err[-2000:]}")
    return float(json.loads(outputs[0][0].strip().splitlines()[-1])["images_per_s"])


def run(options: dict[str, Any]) -> dict[str, Any]:
    steps, repeats = int(options.get("steps", 6)), int(options.get("repeats", 3))
    hidden, batch = int(options.get("hidden", 2048)), int(options.get("batch", 2048))
    dataset = str(options.get("dataset", "mnist"))
    one, two, ratios = [], [], []
    for repeat in range(repeats):
        order = (1, 2) if repeat % 2 == 0 else (2, 1)
        measured = {n: timed_run(n, steps, hidden, batch, dataset) for n in order}
        one.append(measured[1])
        two.append(measured[2])
        ratios.append(measured[2] / measured[1])
    return {"ddp_scaling_2proc": round(statistics.median(ratios), 3),
            "ddp_images_per_s_1proc": round(statistics.median(one), 1),
            "ddp_images_per_s_2proc": round(statistics.median(two), 1),
            "ddp_model": f"vae {dataset} hidden {hidden},{hidden} batch {batch}", "ddp_steps": steps,
            "ddp_cpu_count": os.cpu_count()}


def worker(args: argparse.Namespace) -> None:
    """One rank: one ``fit`` of 3 warm-up steps and ``steps`` timed ones (from the end of the
    third step to the end of the last); rank 0 prints JSON."""
    import torch

    from vizvae.data import load_dataset
    from vizvae.models import VAE, VAEConfig
    from vizvae.train.loop import TrainSettings, fit
    from vizvae.train.parallel import ShardPlan, launched_ranks, start_process_group, stop_process_group
    from vizvae.train.resume import RunContext

    torch.set_num_threads(1)
    ranks = launched_ranks()
    start_process_group(ranks, torch.device("cpu"))
    try:
        dataset = load_dataset(args.dataset, binarize=True)
        torch.manual_seed(0)
        model = VAE(VAEConfig(input_shape=tuple(dataset.image_shape), latent_dim=16,
                              hidden_dims=(args.hidden, args.hidden)))
        context = RunContext(ShardPlan(args.shards, ranks))
        warmup = 3  # DDP's bucket rebuild and the allocator's first steps
        step_times: list[float] = []  # rank 0, after each step (the callback runs there only)
        fit(model, dataset, TrainSettings(steps=warmup + args.steps, batch_size=args.batch, eval_rows=1, eval_every=1),
            callback=lambda step, scalars: step_times.append(time.perf_counter()), context=context)
        if ranks.is_main:
            seconds = step_times[-1] - step_times[warmup - 1]
            print(json.dumps({"images_per_s": args.steps * args.batch / seconds}))
    finally:
        stop_process_group()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--worker", action="store_true")
    parser.add_argument("--dataset", default="digits")
    for name in ("steps", "hidden", "batch", "shards"):
        parser.add_argument(f"--{name}", type=int, required=True)
    worker(parser.parse_args())
