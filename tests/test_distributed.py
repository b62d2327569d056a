"""Data-parallel training (``vizvae.train.parallel``) and resumable runs (``vizvae.train.resume``),
as a user launches them: ``torchrun`` with 2 gloo ranks on the loopback, against one process that
computes the same shards; a run killed with SIGKILL and resumed; a rank killed or frozen mid-run.

Equivalence is to 1e-5 (the two runs add the same shard gradients in another order: float32
rounding, ~1e-7 relative per step); resume is to 1e-6 (the same operations in the same order)."""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from vizvae.errors import VizvaeError
from vizvae.train.parallel import Ranks, ShardPlan, Streams, check_shards, launched_ranks
from vizvae.train.resume import check_same_run, read_state, run_identity

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--threads", "1", "--quiet", "--seed", "3"]
STAGED = ["--plateau-window", "0", "--hmc-batch-size", "2", "--latent-dims", "4,2", "--hidden", "16",
          "--sksd-chains", "4", "--n-transitions", "2", "--n-leapfrog", "2", "--imputation-rows", "0"]
COMMANDS = {
    "vae": ["--model", "vae", "--dataset", "digits", "--steps", "6", "--batch-size", "32", "--latent-dim", "4",
            "--hidden", "32"],
    "ugvae": ["--model", "ugvae", "--dataset", "digits", "--steps", "5", "--batch-size", "16", "--latent-dim", "4",
              "--global-dim", "3", "--clusters", "3", "--hidden", "32"],
    "hhvae": ["--model", "hhvae", "--dataset", "digits", "--steps", "4", "--hmc-steps", "3", "--batch-size", "16",
              *STAGED],
    "hhvaem": ["--model", "hhvaem", "--dataset", "boston", "--marginal-steps", "3", "--steps", "3", "--hmc-steps", "2",
               "--batch-size", "16", "--marginal-hidden", "8", *STAGED, "--imputation-rows", "16",
               "--imputation-samples", "2", "--saia-rows", "8"],
}


def environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_PORT")}
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env["OMP_NUM_THREADS"] = "1"
    env["GLOO_SOCKET_IFNAME"] = "lo"  # the loopback, whatever the host name resolves to
    return env


def train(args: list[str], cwd: Path, ranks: int = 1, timeout: float = 240) -> subprocess.CompletedProcess:
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={ranks}"] \
        if ranks > 1 else [sys.executable]
    done = subprocess.run([*launcher, "-m", "vizvae", "train", *args], cwd=cwd, env=environment(),
                          capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def weights(folder: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(folder / "model.safetensors"))


def training_record(folder: Path) -> dict:
    return json.loads((folder / "config.json").read_text())["training"]


def largest_difference(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    assert a.keys() == b.keys()
    return max(float((a[k] - b[k]).abs().max()) for k in a)


def final_losses(record: dict) -> list[float]:
    """The last logged training scalar of every stage (the loss, or Stage 3's HMC objective)."""
    histories = [stage["history"] for stage in record.get("stages", [])] or [record["history"]]
    return [h["loss"][-1] if h.get("loss") else h["hmc_objective"][-1] for h in histories]


@pytest.mark.parametrize("model", list(COMMANDS))
def test_two_ranks_match_one_process_on_the_same_shards(model, tmp_path):
    command = [*COMMANDS[model], *TINY, "--shards", "2"]
    train([*command, "--out", "ranks2"], tmp_path, ranks=2)
    train([*command, "--out", "ranks1"], tmp_path)
    two, one = training_record(tmp_path / "ranks2"), training_record(tmp_path / "ranks1")
    assert largest_difference(weights(tmp_path / "ranks2"), weights(tmp_path / "ranks1")) <= 1e-5
    assert final_losses(two) == pytest.approx(final_losses(one), abs=1e-5)
    batch = int(command[command.index("--batch-size") + 1])
    global_batch = 2 * batch if model == "ugvae" else batch  # a group model takes one group per shard
    assert two["parallel"] == {"world_size": 2, "shards": 2, "global_batch": global_batch, "backend": "gloo"}
    assert one["parallel"]["world_size"] == 1
    if model == "hhvaem":  # the evaluations at the end shared their rows between the ranks, rank 0 saved them
        config = json.loads((tmp_path / "ranks2" / "config.json").read_text())
        assert config["evaluation"]["imputation_rows"] == 16
        assert json.loads((tmp_path / "ranks2" / "saia.json").read_text())["rows"] == 8
    if model.startswith("hh"):  # the run reached Stage 3 and synchronised the step sizes through it
        assert two["stages"][-1]["name"].startswith("stage 3") and two["stages"][-1]["steps"] >= 2


def test_one_shard_is_the_single_process_run_of_before(tmp_path):
    """With one shard, the order stream is also the shard's stream: a recorded command still rebuilds
    its checkpoint. Two shards are a different (equally valid) run."""
    plan = ShardPlan(1)
    streams = Streams(5, plan, "cpu")
    assert streams.shard[0] is streams.order
    two = Streams(5, ShardPlan(2), "cpu")
    assert set(two.shard) == {0, 1} and two.shard[0] is not two.order
    first = torch.randn(4, generator=two.shard[0])
    assert not torch.equal(first, torch.randn(4, generator=two.shard[1]))


def test_shards_are_split_between_ranks_in_order():
    rows = torch.arange(12)
    assert [s.tolist() for s in ShardPlan(4, Ranks(1, 2)).split(rows)] == [[6, 7, 8], [9, 10, 11]]
    assert list(ShardPlan(4, Ranks(0, 2)).local) == [0, 1]
    with pytest.raises(VizvaeError, match="multiple of the number of ranks"):
        check_shards(3, Ranks(0, 2), 12)
    with pytest.raises(VizvaeError, match="--batch-size a multiple of --shards"):
        check_shards(5, Ranks(), 12)


def test_ranks_come_from_the_launcher_environment():
    assert launched_ranks({}) == Ranks()
    assert launched_ranks({"WORLD_SIZE": "4", "RANK": "2", "LOCAL_RANK": "0"}) == Ranks(2, 4, 0)
    with pytest.raises(VizvaeError):
        launched_ranks({"WORLD_SIZE": "2", "RANK": "5"})
    with pytest.raises(VizvaeError):
        launched_ranks({"WORLD_SIZE": "two"})


def wait_for_state(folder: Path, process: subprocess.Popen, at_least: tuple[int, int] = (0, 0),
                   timeout: float = 120) -> None:
    """Until ``folder`` holds a state at or past (stage, step) ``at_least``."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            saved = json.loads((folder / "state.json").read_text())
            if (saved["stage"], saved["step"]) >= at_least:
                return
        except (OSError, ValueError):
            pass
        assert process.poll() is None, process.communicate()[1][-2000:]
        assert time.monotonic() < deadline, "no state was written"
        time.sleep(0.01)


RESUMABLE = [*COMMANDS["hhvae"][:4], "--steps", "30", "--hmc-steps", "24", "--batch-size", "16", *STAGED, *TINY,
             "--save-every", "5"]


def test_a_run_killed_at_a_random_step_and_resumed_ends_as_an_uninterrupted_one(tmp_path):
    train([*RESUMABLE, "--out", "whole"], tmp_path)
    process = subprocess.Popen([sys.executable, "-m", "vizvae", "train", *RESUMABLE, "--out", "cut"], cwd=tmp_path,
                               env=environment(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    state = tmp_path / "cut.state"
    saves = [(0, step) for step in range(5, 30, 5)] + [(1, step) for step in range(5, 24, 5)]  # Stage 2, Stage 3
    target = random.choice(saves)
    wait_for_state(state, process, target)
    process.kill()  # SIGKILL, a moment past a state: nothing runs on the way out
    process.communicate()
    saved = json.loads((state / "state.json").read_text())
    assert (saved["stage"], saved["step"]) >= target and saved["step"] % 5 == 0, target
    assert (state / saved["tensors"]).is_file()
    assert not (tmp_path / "cut").exists()
    train([*RESUMABLE, "--out", "cut", "--resume", str(state)], tmp_path)
    assert largest_difference(weights(tmp_path / "cut"), weights(tmp_path / "whole")) <= 1e-6
    whole, cut = training_record(tmp_path / "whole"), training_record(tmp_path / "cut")
    assert [s["history"] for s in cut["stages"]] == [s["history"] for s in whole["stages"]]
    assert not state.exists()  # a finished run removes its state


def test_sigterm_writes_the_state_and_a_resume_on_more_ranks_carries_on(tmp_path):
    command = [*COMMANDS["vae"][:4], "--steps", "800", "--batch-size", "32", "--latent-dim", "4", "--hidden", "32",
               *TINY, "--shards", "2", "--save-every", "25"]
    train([*command, "--out", "whole"], tmp_path)
    process = subprocess.Popen([sys.executable, "-m", "vizvae", "train", *command, "--out", "cut",
                                "--state-dir", "saved"], cwd=tmp_path, env=environment(), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    wait_for_state(tmp_path / "saved", process)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 143, stderr[-2000:]
    assert "--resume saved" in stderr
    step = json.loads((tmp_path / "saved" / "state.json").read_text())["step"]
    assert 0 < step < 800
    train([*command, "--out", "cut", "--resume", "saved"], tmp_path, ranks=2)  # 1 process -> 2 ranks, same shards
    assert largest_difference(weights(tmp_path / "cut"), weights(tmp_path / "whole")) <= 1e-5


def test_a_resume_with_other_options_is_refused_by_name(tmp_path):
    identity = run_identity({"model": "vae", "lr": 0.001, "out": "a", "quiet": True, "shard_count": 2})
    assert "out" not in identity and "quiet" not in identity
    with pytest.raises(VizvaeError, match=r"--lr 0\.001 there, 0\.01 now"):
        check_same_run({"identity": identity}, {**identity, "lr": 0.01}, "saved")
    with pytest.raises(VizvaeError, match="no state.json"):
        read_state(tmp_path)
    (tmp_path / "state.json").write_bytes(b"\x80\x04\x95 a pickle")
    with pytest.raises(VizvaeError, match="not valid JSON"):
        read_state(tmp_path)
    (tmp_path / "state.json").write_text(json.dumps({"format": "vizvae-train-state/1", "tensors": "../x"}))
    with pytest.raises(VizvaeError, match="missing"):
        read_state(tmp_path)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_ranks(tmp_path: Path, extra: list[str]) -> list[subprocess.Popen]:
    """Two ranks started by hand (as a scheduler would), so that the test holds each one's pid."""
    port = free_port()
    command = [*COMMANDS["vae"][:4], "--steps", "100000", "--batch-size", "32", "--latent-dim", "4",
               "--hidden", "32", *TINY, "--save-every", "200", "--out", "run", *extra]
    processes = []
    for rank in range(2):
        env = {**environment(), "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "RANK": str(rank),
               "WORLD_SIZE": "2", "LOCAL_RANK": str(rank)}
        processes.append(subprocess.Popen([sys.executable, "-m", "vizvae", "train", *command], cwd=tmp_path, env=env,
                                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    wait_for_state(tmp_path / "run.state", processes[0])
    return processes


def test_a_killed_rank_brings_the_run_down_with_a_clear_message(tmp_path):
    survivor, victim = start_ranks(tmp_path, [])
    victim.kill()
    victim.communicate()
    _, stderr = survivor.communicate(timeout=120)  # no hang: the survivor's collective fails at once
    assert survivor.returncode == 1
    assert "rank 0 of 2: another rank stopped answering" in stderr and "--resume" in stderr
    assert "Traceback" not in stderr


def test_a_silent_rank_fails_the_run_after_the_process_group_timeout(tmp_path):
    survivor, frozen = start_ranks(tmp_path, ["--dist-timeout", "5"])
    frozen.send_signal(signal.SIGSTOP)  # alive but silent: only the timeout can end the wait
    try:
        started = time.monotonic()
        _, stderr = survivor.communicate(timeout=120)
        assert survivor.returncode == 1 and time.monotonic() - started < 100
        assert "rank 0 of 2: another rank stopped answering" in stderr
    finally:
        frozen.kill()
        frozen.communicate()


def test_a_damaged_state_is_refused_with_a_message(tmp_path):
    command = [*COMMANDS["vae"][:4], "--steps", "3000", "--batch-size", "32", "--latent-dim", "4", "--hidden", "32",
               *TINY, "--save-every", "10"]
    process = subprocess.Popen([sys.executable, "-m", "vizvae", "train", *command, "--out", "run", "--state-dir",
                                "saved"], cwd=tmp_path, env=environment(), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    wait_for_state(tmp_path / "saved", process)
    process.kill()
    process.communicate()
    from safetensors.torch import load_file, save_file

    saved = json.loads((tmp_path / "saved" / "state.json").read_text())
    tensors = load_file(str(tmp_path / "saved" / saved["tensors"]))
    tensors.pop("rng.torch")
    save_file(tensors, str(tmp_path / "saved" / saved["tensors"]))
    done = subprocess.run([sys.executable, "-m", "vizvae", "train", *command, "--out", "run", "--resume", "saved"],
                          cwd=tmp_path, env=environment(), capture_output=True, text=True, timeout=120)
    assert done.returncode != 0 and "the saved state is damaged" in done.stderr and "Traceback" not in done.stderr
