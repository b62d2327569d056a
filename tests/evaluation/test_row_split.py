"""Evaluations split between ranks (``vizvae.evaluation.rows``): the rows are shared out in chunks,
each with its own random stream, so any number of ranks gives the same figures, and every row is
scored exactly once. Ranks are simulated by threads meeting at a barrier (the gather), and once by
a real 2-rank ``torchrun -m vizvae evaluate``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from vizvae.checkpoint import checkpoint_dataset, load_checkpoint, resolve_checkpoint
from vizvae.evaluation.imputation import evaluate_imputation
from vizvae.evaluation.inpainting import InpaintingSettings, evaluate_inpainting
from vizvae.evaluation.rows import RowSplit
from vizvae.evaluation.saia import evaluate_saia

ROOT = Path(__file__).resolve().parents[2]


def split_run(count: int, evaluate) -> list:
    """``evaluate(split)`` on ``count`` simulated ranks; every rank's result."""
    barrier = threading.Barrier(count)
    shared: list = [None] * count
    results: list = [None] * count
    errors: list = []

    def rank(index: int) -> None:
        def gather(value):
            shared[index] = value
            barrier.wait()
            everything = list(shared)
            barrier.wait()  # nobody overwrites ``shared`` before everyone has read it
            return everything

        try:
            results[index] = evaluate(RowSplit(index, count, gather))
        except BaseException as err:  # surfaced below
            errors.append(err)
            barrier.abort()

    threads = [threading.Thread(target=rank, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return results


def test_blocks_cover_every_item_once_in_order():
    for n in (0, 1, 7, 10):
        for count in (1, 2, 3, 4):
            blocks = [list(RowSplit(i, count).block(n)) for i in range(count)]
            assert sum(blocks, []) == list(range(n))


@pytest.fixture(scope="module")
def pvae():
    checkpoint = load_checkpoint(resolve_checkpoint("mnist-pvae"), device="cpu")
    return checkpoint.model, checkpoint_dataset(checkpoint.config)


def test_split_imputation_is_the_same_on_two_and_three_ranks(pvae):
    model, dataset = pvae

    def evaluate(split):
        return evaluate_imputation(model, dataset, rows=120, n_samples=3, seeds=(0, 1), split=split)

    two, three = split_run(2, evaluate), split_run(3, evaluate)
    assert two[0] == two[1] == three[0] == three[2]  # every rank ends with the gathered figures
    assert two[0]["imputation_rows"] == 120


def test_split_inpainting_is_the_same_on_two_and_three_ranks():
    checkpoint = load_checkpoint(resolve_checkpoint("mnist-vae-2d"), device="cpu")
    dataset = checkpoint_dataset(checkpoint.config)
    settings = InpaintingSettings(rows=30, n_samples=3, n_proposals=20, n_iterations=3, methods=("mean", "sir"),
                                  batch_size=8)

    def evaluate(split):
        result = evaluate_inpainting(checkpoint.model, dataset, settings, split=split)
        return {m: {k: v for k, v in s.items() if k != "seconds"} for m, s in result["methods"].items()}

    two, three = split_run(2, evaluate), split_run(3, evaluate)
    assert two[0] == three[1]


def test_split_saia_curves_are_the_same_on_two_and_three_ranks():
    checkpoint = load_checkpoint(resolve_checkpoint("boston-vaem"), device="cpu")
    dataset = checkpoint_dataset(checkpoint.config)

    def evaluate(split):
        return evaluate_saia(checkpoint.model, dataset, rows=70, samples=10, kl_samples=5, strategies=("random", "mi"),
                             split=split)

    two, three = split_run(2, evaluate), split_run(3, evaluate)
    assert two[0]["curves"] == three[2]["curves"] and two[0]["first_acquired"] == three[0]["first_acquired"]
    assert sum(two[0]["first_acquired"]["random"]) == 70  # each row acquired exactly one first feature


def test_torchrun_evaluate_gathers_the_rows_on_rank_zero(pvae, tmp_path):
    model, dataset = pvae
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    env.update(PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1", GLOO_SOCKET_IFNAME="lo")
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2",
                           "-m", "vizvae", "evaluate", "mnist-pvae", "--task", "imputation", "--device", "cpu",
                           "-o", "rows=120", "-o", "samples=3", "-o", "seeds=0,1", "--json"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    printed = [line for line in done.stdout.splitlines() if line.startswith("{")]
    assert len(printed) == 1  # rank 0 alone prints
    expected = split_run(2, lambda split: evaluate_imputation(model, dataset, rows=120, n_samples=3, seeds=(0, 1),
                                                              split=split))[0]
    result = json.loads(printed[0])
    assert result["missing_nll"] == expected["missing_nll"] and result["imputation_rows"] == 120
