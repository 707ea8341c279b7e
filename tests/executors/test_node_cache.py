"""A node's cache of run folders: which folders a sweep removes (those of runs whose Ray job has ended, on
this cluster) and which it must leave (a live run's, another cluster's, one it cannot tell, one in use)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from parex_lsp.executors.ray.cache import CACHE_VAR, OWNER, Job, NodeRepo, sweep

SESSION = "session_2026-11-28_10-00-00_000000_1"


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv(CACHE_VAR, str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture
def history(tmp_path: Path) -> bytes:
    """A bundle of a one-commit repository: what a node clones a run's repository from."""
    src = tmp_path / "src"
    subprocess.run(["git", "init", "-q", str(src)], check=True)
    subprocess.run(["git", "-C", str(src), "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q",
                    "--allow-empty", "-m", "base"], check=True)
    subprocess.run(["git", "-C", str(src), "bundle", "create", "-q", str(tmp_path / "b.bundle"), "HEAD"],
                   check=True, capture_output=True)
    return (tmp_path / "b.bundle").read_bytes()


def made(history: bytes, run_id: str, node: str, job: Job | None) -> NodeRepo:
    """A run folder as a node leaves it: its repository cloned, a worktree in it, its owner recorded."""
    repo = NodeRepo(run_id, node, job)
    repo.ensure(lambda: history)
    (repo.root / "trees" / "t-a1").mkdir(parents=True)
    return repo


def test_a_sweep_removes_only_folders_of_ended_jobs_of_this_cluster(cache: Path, history: bytes):
    me = Job(SESSION, "05000000")
    dead = made(history, "run-dead", "node-one-0123456789", Job(SESSION, "01000000"))
    dead_too = made(history, "run-dead", "node-two-0123456789", Job(SESSION, "01000000"))  # another node, same machine
    alive = made(history, "run-alive", "node-one-0123456789", Job(SESSION, "02000000"))
    other_cluster = made(history, "run-other", "node-one-0123456789", Job("session_other", "01000000"))
    unknown = made(history, "run-unknown", "node-one-0123456789", None)  # no record: an older parex, or being made
    mine = made(history, "run-mine", "node-one-0123456789", me)

    removed = sweep(me, {"01000000", "03000000", "05000000"}, keep="run-mine")

    assert removed == ["run-dead"]
    assert not dead.root.exists() and not dead_too.root.exists() and not (cache / "run-dead").exists()
    for kept in (alive, other_cluster, unknown, mine):
        assert (kept.root / "repo.git").is_dir() and (kept.root / "trees" / "t-a1").is_dir(), kept.root
    assert (alive.root / OWNER).read_text() == f"{SESSION} 02000000\n"
    assert sweep(me, set(), keep="run-mine") == []


def test_a_folder_whose_lock_is_held_is_left_for_a_later_sweep(cache: Path, history: bytes):
    me = Job(SESSION, "05000000")
    dead = made(history, "run-dead", "node-one-0123456789", Job(SESSION, "01000000"))
    holder = subprocess.Popen([sys.executable, "-c", "import sys, filelock\n"
                               f"with filelock.FileLock({str(dead.root) + '.lock'!r}):\n"
                               "    print('held', flush=True)\n    sys.stdin.read()\n"],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        assert sweep(me, {"01000000"}, keep="run-mine") == []
        assert (dead.root / "repo.git").is_dir()
    finally:
        holder.communicate("")
    assert sweep(me, {"01000000"}, keep="run-mine") == ["run-dead"]
    assert not (cache / "run-dead").exists()


def test_an_owner_record_reads_back_and_a_damaged_one_is_none(tmp_path: Path):
    Job("s", "01000000").write(tmp_path / OWNER)
    assert Job.read(tmp_path / OWNER) == Job("s", "01000000")
    (tmp_path / OWNER).write_text("just-one-word\n")
    assert Job.read(tmp_path / OWNER) is None
    assert Job.read(tmp_path / "missing") is None
