"""Per-file locks: key normalization, conflict rules, the in-memory table, and the cross-process registry
exercised with real child processes and real lock files."""

from __future__ import annotations

import gc
import itertools
import json
import os
import random
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import anyio
import pytest

from parex_lsp.isolation.keys import _parse, keys_conflict, lock_keys
from parex_lsp.isolation.registry import LockOwner, LockTimeout
from parex_lsp.isolation.table import WorkspaceLocks
from parex_lsp.state import locks_dir

K = frozenset


# ---------------------------------------------------------------------------------------------------------
# lock_keys


def test_lock_keys_normalizes_to_workspace_relative_posix(tmp_path: Path):
    (tmp_path / "api" / "v1").mkdir(parents=True)
    (tmp_path / "src").mkdir()
    keys = lock_keys(tmp_path, ["./tests//test_users.py", "api/**/*.py", "src", "a/../b.py", "docs\\x.md"])
    assert keys == K({"tests/test_users.py", "api/**/*.py", "src/**", "b.py", "docs/x.md"})


def test_lock_keys_follows_symlinks_in_literal_paths_and_glob_prefixes(tmp_path: Path):
    (tmp_path / "real" / "pkg").mkdir(parents=True)
    (tmp_path / "real" / "pkg" / "mod.py").write_text("")
    (tmp_path / "alias").symlink_to(tmp_path / "real")
    keys = lock_keys(tmp_path, ["alias/pkg/mod.py", "alias/**/*.py"])
    assert keys == K({"real/pkg/mod.py", "real/**/*.py"})


def test_lock_keys_accepts_absolute_paths_inside_the_workspace(tmp_path: Path):
    assert lock_keys(tmp_path, [str(tmp_path / "a" / "b.txt")]) == K({"a/b.txt"})


@pytest.mark.parametrize("pattern", ["../outside.py", "a/../../x", "/etc/passwd", "link/secret", "x/*/../../../y"])
def test_lock_keys_refuses_patterns_that_leave_the_workspace(tmp_path: Path, pattern: str):
    outside = tmp_path.parent / f"{tmp_path.name}-outside"
    outside.mkdir()
    (tmp_path / "link").symlink_to(outside)
    with pytest.raises(ValueError) as err:
        lock_keys(tmp_path, ["fine.py", pattern])
    assert repr(pattern) in str(err.value)


# ---------------------------------------------------------------------------------------------------------
# keys_conflict


@pytest.mark.parametrize("a, b, expected", [
    ("a.py", "a.py", True),
    ("a.py", "b.py", False),
    ("api/**/*.py", "api/v1/users.py", True),
    ("api/**/*.py", "api/users.py", True),
    ("api/**/*.py", "api/readme.md", False),
    ("api/**/*.py", "tests/test_api.py", False),
    ("api/*.py", "api/v1/users.py", False),
    ("api/**", "api/**/*.py", True),
    ("api/**", "tests/**", False),
    ("**", "anything/at/all.txt", True),
    ("**/*.py", "docs/guide.md", False),
    ("**/*.py", "docs/conf.py", True),
    ("src/*/a.py", "src/*/b.py", False),
    ("src/*/a.py", "src/pkg/*.py", True),
    ("a/*", "a/b/*", False),
    ("**/x.py", "a/**/y.py", False),
    ("**/x.py", "a/**/x.py", True),
    ("a/**/b", "a/b", True),
    ("a/[bc].py", "a/b.py", True),
    ("a/[bc].py", "a/d.py", False),
    ("a/[!b].py", "a/b.py", False),
    ("a/?.py", "a/bb.py", False),
    ("src/*.py", "src/*.md", True),  # conservative: two wildcard segments are assumed to meet
])
def test_keys_conflict_rules(a: str, b: str, expected: bool):
    assert keys_conflict([a], [b]) is expected
    assert keys_conflict([b], [a]) is expected  # symmetric


def test_keys_conflict_on_sets_is_any_pair():
    assert keys_conflict({"x.py", "docs/**"}, {"y.py", "docs/a/b.md"})
    assert not keys_conflict({"x.py", "docs/**"}, {"y.py", "src/**"})
    assert not keys_conflict(set(), {"**"})


def test_glob_overlap_is_never_missed():
    """Soundness over a small universe: whenever some path matches two globs, they are reported as conflicting."""
    rng = random.Random(7)
    segs = ["a", "b", "x.py", "y.md", "*", "*.py", "?", "[ab]", "**"]
    paths = ["/".join(p) for n in (1, 2, 3, 4) for p in itertools.product(["a", "b", "x.py", "y.md"], repeat=n)]
    globs = {"/".join(rng.choice(segs) for _ in range(rng.randint(1, 4))) for _ in range(160)}
    globs = [g for g in globs if _parse(g).glob]
    for g, h in itertools.combinations(globs, 2):
        rg, rh = _parse(g).regex, _parse(h).regex
        if any(rg.match(p) and rh.match(p) for p in paths):
            assert keys_conflict([g], [h]), (g, h)


# ---------------------------------------------------------------------------------------------------------
# in-memory table


def test_sets_are_granted_all_or_nothing(tmp_path: Path):
    locks = WorkspaceLocks(tmp_path, cross_process=False)
    assert locks.try_acquire("r", "a", K({"api/**"})) is None
    blocked = locks.try_acquire("r", "b", K({"readme.md", "api/users.py"}))
    assert blocked is not None
    key, owner = blocked
    assert key == "api/users.py" and owner.task_id == "a" and owner.pid == os.getpid()
    assert "readme.md" not in locks.holders()  # nothing of b's set was taken
    assert locks.try_acquire("r", "c", K({"readme.md"})) is None
    locks.release("r", "a")
    assert locks.try_acquire("r", "b", K({"api/users.py"})) is None
    assert not (tmp_path / ".parex").exists()  # in-memory only


def test_reentrant_for_the_same_task_and_released_at_once(tmp_path: Path):
    locks = WorkspaceLocks(tmp_path, cross_process=False)
    assert locks.try_acquire("r", "a", K({"x.py"})) is None
    assert locks.try_acquire("r", "a", K({"x.py", "y.py"})) is None
    assert set(locks.holders()) == {"x.py", "y.py"}
    assert locks.try_acquire("other-run", "a", K({"y.py"}))[1].run_id == "r"  # same task id, other run: blocked
    locks.release("r", "a")
    assert locks.holders() == {}


def test_blocking_key_is_the_smallest_conflicting_key(tmp_path: Path):
    locks = WorkspaceLocks(tmp_path, cross_process=False)
    locks.try_acquire("r", "a", K({"c.py", "b.py", "d.py"}))
    assert locks.try_acquire("r", "b", K({"d.py", "b.py", "z.py"}))[0] == "b.py"


def test_threads_never_hold_overlapping_sets(tmp_path: Path):
    locks = WorkspaceLocks(tmp_path, cross_process=False)
    inside: dict[str, str] = {}
    errors: list[str] = []
    sets = [K({"a.py", "b.py"}), K({"b.py", "c.py"}), K({"c.py", "a.py"}), K({"**/*.py"})]

    def worker(n: int) -> None:
        keys = sets[n % len(sets)]
        for i in range(300):
            while locks.try_acquire("r", f"t{n}", keys) is not None:
                time.sleep(0)
            for k in ("a.py", "b.py", "c.py"):
                if keys_conflict(keys, [k]):
                    if k in inside:
                        errors.append(f"{k} held by {inside[k]} and t{n}")
                    inside[k] = f"t{n}"
            for k in ("a.py", "b.py", "c.py"):
                if inside.get(k) == f"t{n}":
                    del inside[k]
            locks.release("r", f"t{n}")

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert locks.holders() == {}


# ---------------------------------------------------------------------------------------------------------
# waiting


async def test_acquire_waits_for_the_holder_and_reports_the_wait(tmp_path: Path):
    locks = WorkspaceLocks(tmp_path)
    locks.try_acquire("r", "first", K({"x.py"}))
    waits: list[tuple[str, str]] = []

    async def release_later():
        await anyio.sleep(0.2)
        locks.release("r", "first")

    async with anyio.create_task_group() as tg:
        tg.start_soon(release_later)
        await locks.acquire("r", "second", K({"x.py"}), timeout=30,
                            on_wait=lambda k, o: waits.append((k, o.task_id)), poll=0.01)
    assert waits == [("x.py", "first")]  # once per blocker, not once per poll
    assert locks.holders()["x.py"].task_id == "second"
    locks.close()


async def test_acquire_times_out_naming_key_and_holder(tmp_path: Path):
    locks = WorkspaceLocks(tmp_path)
    locks.try_acquire("r", "first", K({"api/**"}))
    with pytest.raises(LockTimeout) as err:
        await locks.acquire("r", "second", K({"api/users.py"}), timeout=0.1, poll=0.01)
    assert err.value.key == "api/users.py" and err.value.holder.task_id == "first"
    assert "api/users.py" in str(err.value) and "first" in str(err.value)
    locks.close()


async def test_acquire_is_cancellable(tmp_path: Path):
    locks = WorkspaceLocks(tmp_path, cross_process=False)
    locks.try_acquire("r", "first", K({"x.py"}))
    with anyio.move_on_after(0.1) as scope:
        await locks.acquire("r", "second", K({"x.py"}), timeout=None, poll=0.01)
    assert scope.cancelled_caught
    assert locks.holders()["x.py"].task_id == "first"


async def test_hold_is_reentrant_through_declared_files_and_releases_only_its_extra(tmp_path: Path):
    locks = WorkspaceLocks(tmp_path)
    locks.try_acquire("r", "t", lock_keys(tmp_path, ["api/**/*.py"]))
    async with locks.hold("r", "t", ["api/v1/users.py"]):
        assert locks.held_by("r", "t") == K({"api/**/*.py"})  # covered: nothing new taken
    async with locks.hold("r", "t", [str(tmp_path / "README.md")]):
        assert locks.held_by("r", "t") == K({"api/**/*.py", "README.md"})
        assert locks.try_acquire("r", "other", K({"README.md"}))[1].task_id == "t"
        (owner_path,) = locks_dir(tmp_path).glob("r@t.*.json")
        owner_file = json.loads(owner_path.read_text())
        assert owner_file["keys"] == ["README.md", "api/**/*.py"]
    assert locks.held_by("r", "t") == K({"api/**/*.py"})
    assert locks.try_acquire("r", "other", K({"README.md"})) is None
    locks.close()
    assert sorted(p.name for p in locks_dir(tmp_path).iterdir()) == ["registry.lock"]


async def test_hold_without_declared_files_waits_for_other_writers(tmp_path: Path):
    locks = WorkspaceLocks(tmp_path)
    locks.try_acquire("r", "writer", K({"notes.md"}))
    with pytest.raises(LockTimeout):
        async with locks.hold("r", "agent", ["notes.md"], timeout=0.05):
            pass
    locks.release("r", "writer")
    async with locks.hold("r", "agent", ["notes.md"], timeout=1):
        assert locks.holders()["notes.md"].task_id == "agent"
    assert locks.holders() == {}


# ---------------------------------------------------------------------------------------------------------
# across processes

CHILD = textwrap.dedent("""
    import sys, time, json, os, anyio
    from pathlib import Path
    from parex_lsp.isolation.table import WorkspaceLocks
    ws, mode, task, keys = Path(sys.argv[1]), sys.argv[2], sys.argv[3], frozenset(sys.argv[4].split(","))
    locks = WorkspaceLocks(ws)
    if mode == "hold":
        assert locks.try_acquire("run-" + task, task, keys) is None
        print("held", flush=True)
        time.sleep(600)
    elif mode == "hammer":
        marker_dir = ws / "inside"
        async def main():
            for i in range(int(sys.argv[5])):
                await locks.acquire("run-" + task, task, keys, timeout=60, poll=0.001)
                for k in sorted(keys):
                    # O_EXCL: creating the marker fails if another process is inside for the same key
                    fd = os.open(marker_dir / k, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
                    os.close(fd)
                with open(ws / "log", "a") as f:
                    f.write(f"{task} {i}\\n")
                for k in sorted(keys):
                    os.unlink(marker_dir / k)
                locks.release("run-" + task, task)
        anyio.run(main)
        print("done", flush=True)
""")


def _spawn(tmp_path: Path, *args: str) -> subprocess.Popen[str]:
    script = tmp_path / "child.py"
    if not script.exists():
        script.write_text(CHILD)
    return subprocess.Popen([sys.executable, str(script), str(tmp_path / "ws"), *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=Path(__file__).resolve().parents[2])


def _wait_held(proc: subprocess.Popen[str]) -> None:
    line = proc.stdout.readline()
    assert line.strip() == "held", proc.stderr.read()


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    (tmp_path / "ws" / "inside").mkdir(parents=True)
    return tmp_path / "ws"


def test_two_processes_with_overlapping_sets_never_hold_at_once(tmp_path: Path, ws: Path):
    rounds = 150
    procs = [_spawn(tmp_path, "hammer", "p1", "a,b", str(rounds)),
             _spawn(tmp_path, "hammer", "p2", "b,c", str(rounds)),
             _spawn(tmp_path, "hammer", "p3", "c,a", str(rounds))]
    for p in procs:
        out, err = p.communicate(timeout=90)
        assert p.returncode == 0, err  # FileExistsError here would mean two holders of one key at once
        assert out.strip() == "done"
    lines = (ws / "log").read_text().splitlines()
    assert len(lines) == 3 * rounds
    assert sorted(os.listdir(locks_dir(ws))) == ["registry.lock"]


def test_other_process_holder_is_visible_and_blocks(tmp_path: Path, ws: Path):
    child = _spawn(tmp_path, "hold", "api", "api/**")
    try:
        _wait_held(child)
        locks = WorkspaceLocks(ws)
        key, owner = locks.try_acquire("mine", "t", K({"src/x.py", "api/users.py"}))
        assert (key, owner.pid, owner.task_id, owner.run_id) == ("api/users.py", child.pid, "api", "run-api")
        assert locks.holders()["api/**"].pid == child.pid
        assert locks.try_acquire("mine", "t", K({"src/x.py"})) is None  # disjoint: granted
        (owner_path,) = locks_dir(ws).glob("run-api@api.*.json")
        on_disk = json.loads(owner_path.read_text())
        assert {"pid", "host", "runId", "taskId", "acquiredAt", "expiresAt", "keys"} <= set(on_disk)
        assert LockOwner.from_dict(on_disk) == owner
        locks.close()
    finally:
        child.kill()
        child.wait()


@pytest.mark.parametrize("reap", [True, False], ids=["reaped", "zombie"])
def test_lock_of_a_killed_process_is_broken_by_the_next_acquirer(tmp_path: Path, ws: Path, reap: bool):
    child = _spawn(tmp_path, "hold", "t", "a.py,b/**")
    _wait_held(child)
    broken: list[tuple[str, int]] = []
    locks = WorkspaceLocks(ws, on_broken=lambda k, o: broken.append((k, o.pid)))
    assert locks.try_acquire("mine", "t", K({"b/c.py"})) is not None
    os.kill(child.pid, signal.SIGKILL)
    if reap:
        child.wait()
    else:  # not yet waited for by its parent: the pid still exists as a zombie
        stat = Path(f"/proc/{child.pid}/stat")
        while stat.read_text().split(") ")[1][0] != "Z":
            time.sleep(0.01)
    assert locks.try_acquire("mine", "t", K({"b/c.py"})) is None
    assert broken == [("a.py", child.pid), ("b/**", child.pid)]
    assert list(locks_dir(ws).glob("run-t@t.*")) == []
    assert set(locks.holders()) == {"b/c.py"}
    locks.close()
    child.wait()


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="process start times come from /proc")
def test_stale_file_of_a_reused_pid_is_broken(tmp_path: Path, ws: Path):
    """An owner file naming a live pid that now belongs to a different process (its start time differs)."""
    d = locks_dir(ws)
    d.mkdir(parents=True)
    record = {"pid": os.getppid(), "host": socket.gethostname(), "runId": "old", "taskId": "t",
              "acquiredAt": 1.0, "expiresAt": None, "keys": ["x.py"], "pidStart": "1"}
    (d / "old@t.0.json").write_text(json.dumps(record))
    broken: list[str] = []
    locks = WorkspaceLocks(ws, on_broken=lambda k, o: broken.append(f"{k}:{o.run_id}"))
    assert locks.try_acquire("mine", "t", K({"x.py"})) is None
    assert broken == ["x.py:old"]
    locks.close()


def test_owner_on_another_host_is_only_broken_by_its_lease(tmp_path: Path, ws: Path):
    d = locks_dir(ws)
    d.mkdir(parents=True)
    record = {"pid": 999999, "host": "elsewhere.example", "runId": "far", "taskId": "t",
              "acquiredAt": time.time(), "expiresAt": None, "keys": ["x.py"]}
    (d / "far@t.0.json").write_text(json.dumps(record))
    locks = WorkspaceLocks(ws)
    assert locks.try_acquire("mine", "t", K({"x.py"}))[1].host == "elsewhere.example"
    record["expiresAt"] = time.time() - 1  # as that host's process renews: a new version, the old one dropped
    (d / "far@t.1.json").write_text(json.dumps(record))
    (d / "far@t.0.json").unlink()
    assert locks.try_acquire("mine", "t", K({"x.py"})) is None
    locks.close()


def test_two_tables_in_one_process_exclude_each_other_through_the_registry(tmp_path: Path):
    first, second = WorkspaceLocks(tmp_path), WorkspaceLocks(tmp_path)
    assert first.try_acquire("run-a", "t", K({"x.py"})) is None
    assert second.try_acquire("run-b", "t", K({"x.py"}))[1].run_id == "run-a"
    first.close()
    assert second.try_acquire("run-b", "t", K({"x.py"})) is None
    second.close()


def test_a_table_dropped_without_close_leaves_no_lock_behind(tmp_path: Path):
    dropped = WorkspaceLocks(tmp_path)
    assert dropped.try_acquire("crashed-run", "t", K({"x.py"})) is None
    del dropped
    gc.collect()
    broken: list[str] = []
    locks = WorkspaceLocks(tmp_path, on_broken=lambda k, o: broken.append(f"{k}:{o.run_id}"))
    assert locks.try_acquire("next-run", "t", K({"x.py"})) is None
    assert broken == ["x.py:crashed-run"]
    locks.close()
