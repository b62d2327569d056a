"""Checkpoint saves are atomic (issue 14, point 9): a save killed at any moment leaves the
destination as the old checkpoint, whole, or the new one, whole; an existing destination is
replaced only when asked; a checkpoint holding NaN is never written."""

import os
import random
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import safetensors.torch
import torch

import vizvae.checkpoint as checkpoint
from vizvae.checkpoint import check_out_folder, load_checkpoint, save_checkpoint
from vizvae.errors import CheckpointError
from vizvae.models import VAE, VAEConfig

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.usefixtures("one_thread")


def old_model():
    torch.manual_seed(0)
    return VAE(VAEConfig(input_shape=(1, 6, 6), latent_dim=2, hidden_dims=(8,)))


def new_model():  # another architecture: a config of one with the weights of the other cannot load
    torch.manual_seed(1)
    return VAE(VAEConfig(input_shape=(1, 6, 6), latent_dim=3, hidden_dims=(8, 8)))


def whole_version(folder: Path) -> str:
    """"old" or "new" when ``folder`` loads as that checkpoint, whole; else an AssertionError."""
    loaded = load_checkpoint(folder)
    version = {2: "old", 3: "new"}[loaded.model.latent_dims[0]]
    assert loaded.config["name"] == version
    reference = old_model() if version == "old" else new_model()
    x = torch.rand(2, 36, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(loaded.model.encode(x).mean, reference.encode(x).mean)
    return version


# the calls a save makes that change the disk; a kill lands before any one of them
STEPS = [(os, "rename"), (os, "fsync"), (os, "replace"), (os, "chmod"), (os, "mkdir"), (shutil, "rmtree"),
         (checkpoint, "exchange_folders"), (safetensors.torch, "save_file"), (Path, "write_text")]


def save_killed_before_step(destination: Path, step: int) -> bool:
    """Save the new model over ``destination`` in a forked child that dies (``os._exit``, no clean-up
    runs) just before its ``step``-th disk-changing call. True when the save finished first."""
    pid = os.fork()
    if pid == 0:  # the child
        calls = [0]
        for owner, name in STEPS:
            original = getattr(owner, name)

            def counted(*args, _original=original, **kwargs):
                calls[0] += 1
                if calls[0] == step:
                    os._exit(9)
                return _original(*args, **kwargs)

            setattr(owner, name, counted)
        try:
            save_checkpoint(new_model(), destination, name="new", dataset={"name": "toy"}, overwrite=True)
        finally:
            os._exit(0 if calls[0] < step else 3)
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) in (0, 9), status
    return os.WEXITSTATUS(status) == 0


@pytest.mark.parametrize("existing", [True, False])
def test_a_save_killed_before_any_step_leaves_the_old_or_the_new_checkpoint_whole(tmp_path, existing):
    """Before: weights were written, then config.json; a kill between the two left a checkpoint that
    `check` called ok but whose config described another run, and a kill while saving another
    architecture destroyed the old checkpoint."""
    seen = []
    for step in range(1, 60):
        destination = tmp_path / f"step{step}" / "ckpt"
        if existing:
            save_checkpoint(old_model(), destination, name="old", dataset={"name": "toy"})
            (destination / "card.md").write_text("the old card")
        finished = save_killed_before_step(destination, step)
        if destination.exists():
            seen.append(whole_version(destination))
            if seen[-1] == "old":
                assert (destination / "card.md").read_text() == "the old card"
        else:
            assert not existing  # a first save leaves nothing, or the new checkpoint
            seen.append("none")
        # the next save sweeps the killed one's staging folder
        save_checkpoint(new_model(), destination, name="new", dataset={"name": "toy"}, overwrite=True)
        assert [p.name for p in destination.parent.iterdir()] == ["ckpt"]
        if finished:
            break
    assert finished and seen[-1] == "new" and seen[0] == ("old" if existing else "none")
    assert len(seen) >= 6  # every step of a save was tried


KILLED_SAVER = textwrap.dedent("""
    import sys
    import torch
    from vizvae.checkpoint import save_checkpoint
    from vizvae.models import VAE, VAEConfig

    torch.set_num_threads(1)
    models = {name: VAE(VAEConfig(input_shape=(1, 6, 6), latent_dim=latent, hidden_dims=hidden))
              for name, latent, hidden in (("old", 2, (8,)), ("new", 3, (8, 8)))}
    print("ready", flush=True)
    while True:
        for name, model in models.items():
            save_checkpoint(model, sys.argv[1], name=name, dataset={"name": "toy"}, overwrite=True)
""")


def test_a_process_killed_at_a_random_moment_while_saving_leaves_a_whole_checkpoint(tmp_path):
    destination = tmp_path / "ckpt"
    save_checkpoint(old_model(), destination, name="old", dataset={"name": "toy"})
    saver = subprocess.Popen([sys.executable, "-c", KILLED_SAVER, str(destination)], stdout=subprocess.PIPE,
                             text=True, cwd=ROOT)
    assert saver.stdout.readline().strip() == "ready"
    try:
        time.sleep(random.uniform(0.0, 0.3))  # a random point within the next few saves
    finally:
        saver.kill()
        saver.wait()
    loaded = load_checkpoint(destination)
    assert loaded.config["name"] == {2: "old", 3: "new"}[loaded.model.latent_dims[0]]


def test_an_existing_destination_is_refused_unless_overwrite(tmp_path):
    destination = save_checkpoint(old_model(), tmp_path / "ckpt", name="old", dataset={"name": "toy"})
    with pytest.raises(CheckpointError, match="ckpt: already holds a checkpoint; pass --overwrite to replace it"):
        save_checkpoint(new_model(), destination, name="new", dataset={"name": "toy"}, overwrite=False)
    assert whole_version(destination) == "old"
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "mine.txt").write_text("keep")
    with pytest.raises(CheckpointError, match="notes: is not empty; pass --overwrite"):
        check_out_folder(tmp_path / "notes")
    (tmp_path / "file").write_text("x")
    with pytest.raises(CheckpointError, match="file: a file, not a folder"):
        check_out_folder(tmp_path / "file", overwrite=True)
    save_checkpoint(new_model(), destination, name="new", dataset={"name": "toy"}, overwrite=True)
    assert whole_version(destination) == "new"


def test_a_model_holding_nan_is_never_written(tmp_path):
    model = new_model()
    with torch.no_grad():
        model.decoder.body[0].weight[0, 0] = float("nan")
    with pytest.raises(CheckpointError, match=r"ckpt: not saved: tensor 'decoder.body.0.weight' holds NaN or infinite"):
        save_checkpoint(model, tmp_path / "ckpt", name="nan", dataset={"name": "toy"})
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="renameat2 is Linux's")
def test_exchange_folders_swaps_two_folders_in_one_step(tmp_path):
    """The one call past Python's os module: fails loudly if libc's renameat2 stops doing a swap."""
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "a" / "from-a").write_text("a")
    (tmp_path / "b" / "from-b").write_text("b")
    assert checkpoint.exchange_folders(tmp_path / "a", tmp_path / "b")
    assert [p.name for p in (tmp_path / "a").iterdir()] == ["from-b"]
    assert [p.name for p in (tmp_path / "b").iterdir()] == ["from-a"]
