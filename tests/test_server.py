"""What a shared server lets a visitor reach: open paths, model folders, private uploads, caps."""

import os
import stat
import time

import pytest

from vizvae.server import (
    CAPS, CapExceeded, SessionUploads, UploadRefused, allowed_folder, cap, check_caps, is_loopback, open_paths,
    public_name, sweep_stale_uploads,
)


@pytest.mark.parametrize("address, loopback", [
    ("127.0.0.1", True), ("localhost", True), ("::1", True), ("[::1]", True), ("127.0.1.1", True),
    (None, False), ("", False), ("0.0.0.0", False), ("::", False), ("10.1.2.3", False), ("lab.example.org", False),
])
def test_open_paths_defaults_to_on_only_on_loopback(monkeypatch, address, loopback):
    monkeypatch.delenv("VIZVAE_OPEN_PATHS", raising=False)
    assert is_loopback(address) is loopback
    assert open_paths(address) is loopback


@pytest.mark.parametrize("value, expected", [("1", True), ("on", True), ("TRUE", True), ("0", False), ("off", False)])
def test_the_setting_overrides_the_address(monkeypatch, value, expected):
    monkeypatch.setenv("VIZVAE_OPEN_PATHS", value)
    assert open_paths("0.0.0.0") is expected and open_paths("127.0.0.1") is expected


def test_a_folder_is_allowed_only_inside_a_root_after_links_and_dots_are_resolved(tmp_path):
    root, outside = tmp_path / "models", tmp_path / "private"
    (root / "vae").mkdir(parents=True)
    outside.mkdir()
    (root / "escape").symlink_to(outside)  # a link inside the model folder pointing out of it
    assert allowed_folder("vae", [root]) == (root / "vae").resolve()
    assert allowed_folder(str(root / "vae"), [root]) == (root / "vae").resolve()
    assert allowed_folder("escape", [root]) is None
    assert allowed_folder("vae/../../private", [root]) is None
    assert allowed_folder(str(outside), [root]) is None
    assert allowed_folder("missing", [root]) is None
    assert public_name(root / "vae", [root]) == "vae" and public_name(outside, [root]) is None


def test_session_uploads_are_private_and_never_written_through_a_planted_link(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("mine")
    uploads = SessionUploads(base=tmp_path, max_bytes=10**6)
    assert uploads.folder.parent == tmp_path and uploads.folder.name.startswith("vizvae-upload-")
    assert stat.S_IMODE(uploads.folder.stat().st_mode) == 0o700
    folder = uploads.save({"model.safetensors": b"w" * 10, "config.json": b"{}"})
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert stat.S_IMODE((folder / "config.json").stat().st_mode) == 0o600
    assert (folder / "model.safetensors").read_bytes() == b"w" * 10
    # a link planted where the next upload goes is refused, not followed
    (uploads.folder / "0002").mkdir()
    (uploads.folder / "0002" / "config.json").symlink_to(victim)
    with pytest.raises(FileExistsError):
        uploads.save({"config.json": b"overwritten"})
    assert victim.read_text() == "mine"


def test_session_uploads_are_capped_and_removed_when_closed_or_dropped(tmp_path):
    uploads = SessionUploads(base=tmp_path, max_bytes=100)
    uploads.save({"config.json": b"x" * 60})
    with pytest.raises(UploadRefused, match=r"capped at 0 MB on this server \(VIZVAE_MAX_UPLOAD_MB\)"):
        uploads.save({"config.json": b"x" * 60})
    folder = uploads.folder
    uploads.close()
    assert not folder.exists() and uploads.closed
    dropped = SessionUploads(base=tmp_path)
    folder = dropped.folder
    del dropped  # a session's state dropped without a close: the finalizer removes the folder
    assert not folder.exists()


def test_the_sweep_removes_only_old_vizvae_upload_folders(tmp_path):
    sessions = [SessionUploads(base=tmp_path), SessionUploads(base=tmp_path)]  # held: dropped ones remove themselves
    old, young = (session.folder for session in sessions)
    other = tmp_path / "someone-else"
    other.mkdir()
    two_days_ago = time.time() - 2 * 86400
    for folder in (old, other):
        os.utime(folder, (two_days_ago, two_days_ago))
    assert sweep_stale_uploads(tmp_path, max_age_hours=24) == [old]
    assert not old.exists() and young.exists() and other.exists()


def test_a_knob_over_its_cap_is_refused_naming_the_cap_and_its_setting(monkeypatch):
    monkeypatch.setenv("VIZVAE_MAX_SAMPLES", "16")
    check_caps(samples=16)
    with pytest.raises(CapExceeded) as refused:
        check_caps(samples=64)
    assert str(refused.value) == "Samples = 64 is over this server's cap of 16 (set VIZVAE_MAX_SAMPLES to raise it)"
    monkeypatch.setenv("VIZVAE_MAX_SAMPLES", "nonsense")
    assert cap("samples") == CAPS["samples"].default


def test_every_cap_has_its_own_setting():
    assert sorted(CAPS) == ["chain_transitions", "iwae_k", "proposals", "samples", "umap_points"]
    assert len({spec.env for spec in CAPS.values()}) == len(CAPS)
    assert all(spec.env.startswith("VIZVAE_MAX_") for spec in CAPS.values())
