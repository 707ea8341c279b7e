"""Lock and worktree benchmark.

    .venv/bin/python tests/bench/bench_locks.py            # full
    .venv/bin/python tests/bench/bench_locks.py --quick    # smaller, for a smoke check

What each figure measures (one process, wall clock, `time.perf_counter`):

1. in-process grants/s — `WorkspaceLocks(cross_process=False)`: one `try_acquire` of a 3-key set (two files and
   a glob) that is granted, then `release`, repeated. Meanwhile 8 other tasks hold 3 keys each (files and globs,
   disjoint from the measured set), so every grant is checked against all of them — what the scheduler pays
   when a task with `files` becomes ready while 8 others run. Target: >= 50,000/s.
2. cross-process grants/s — the same loop with `cross_process=True`: besides the in-memory check, each grant
   takes the registry FileLock, lists (and, once, parses) the 8 other owner files under `.parex/locks/` and
   creates its own owner file under the lock; each release unlinks that file (giving keys up needs no lock). No
   fsync. Target: >= 2,000/s. Two reference rows show this machine's floor for it: a bare FileLock
   acquire+release, and a small file created and unlinked.
3. worktree ms/task — on a repository of 3,000 tracked files: `create` (git worktree add: a new branch and a
   checkout of every file), the task writes one new file, `finish(succeeded=True)` (add -A + commit in the
   worktree, worktree remove, `merge --no-ff` into the base branch, branch delete). Tasks one after another;
   the figure is the mean per task, split into create and finish.

The last line printed is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import git  # noqa: E402
from filelock import FileLock  # noqa: E402

from parex_lsp.isolation.table import WorkspaceLocks  # noqa: E402
from parex_lsp.isolation.worktree import Worktrees  # noqa: E402

MEASURED = frozenset({"src/app.py", "src/models.py", "tests/**/*.py"})
OTHERS = [frozenset({f"pkg{i}/a.py", f"pkg{i}/b.py", f"pkg{i}/**/*.md"}) for i in range(8)]


def grants_per_second(ws: Path, cross_process: bool, n: int) -> float:
    locks = WorkspaceLocks(ws, cross_process=cross_process)
    for i, keys in enumerate(OTHERS):
        assert locks.try_acquire("bench", f"other{i}", keys) is None
    for _ in range(min(n, 200)):  # warm caches (parsed keys, compiled globs, dentries)
        locks.try_acquire("bench", "measured", MEASURED)
        locks.release("bench", "measured")
    start = time.perf_counter()
    for _ in range(n):
        if locks.try_acquire("bench", "measured", MEASURED) is not None:
            raise AssertionError("the measured set conflicts with the others: the benchmark is wrong")
        locks.release("bench", "measured")
    elapsed = time.perf_counter() - start
    locks.close()
    return n / elapsed


def floor_per_second(ws: Path, n: int) -> tuple[float, float]:
    """What the cross-process figure cannot beat on this machine: one FileLock acquire+release, and one small
    file created and unlinked (each grant publishes an owner file; each release removes it)."""
    lock = FileLock(ws / "floor.lock", poll_interval=0.001)
    start = time.perf_counter()
    for _ in range(n):
        with lock:
            pass
    filelock_rate = n / (time.perf_counter() - start)
    start = time.perf_counter()
    for i in range(n):
        path = ws / f"floor{i}.json"
        with open(path, "x") as f:
            f.write("{}" * 100)
        path.unlink()
    return filelock_rate, n / (time.perf_counter() - start)


def repo_with_files(path: Path, count: int) -> None:
    repo = git.Repo.init(path, initial_branch="main")
    with repo.config_writer() as cw:
        cw.set_value("user", "name", "bench")
        cw.set_value("user", "email", "bench@localhost")
    per_dir = 30
    for i in range(count):
        d = path / f"pkg{i // per_dir:03d}"
        d.mkdir(exist_ok=True)
        (d / f"mod{i % per_dir:02d}.py").write_text(f"VALUE = {i}\n" + "# filler line\n" * 20)
    repo.git.add("-A")
    repo.git.commit("-q", "-m", "init")


def worktree_times(ws: Path, tasks: int) -> tuple[float, float]:
    wt = Worktrees(ws, "bench", lambda run_id: False)
    wt.prepare()
    create = finish = 0.0
    for i in range(tasks):
        t0 = time.perf_counter()
        path = wt.create(f"t{i}")
        t1 = time.perf_counter()
        (path / f"out{i}.txt").write_text(f"task {i}\n")
        t2 = time.perf_counter()
        outcome = wt.finish(f"t{i}", True)
        t3 = time.perf_counter()
        if not outcome.ok:
            raise AssertionError(outcome.message)
        create += t1 - t0
        finish += t3 - t2
    wt.close()
    return create / tasks * 1000, finish / tasks * 1000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    n_mem, n_xp, n_files, n_tasks = (20_000, 1_000, 3_000, 3) if args.quick else (200_000, 10_000, 3_000, 10)
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        (tmp_path / "locks").mkdir()
        in_process = grants_per_second(tmp_path / "locks", False, n_mem)
        cross_process = grants_per_second(tmp_path / "locks", True, n_xp)
        filelock_rate, file_rate = floor_per_second(tmp_path, n_xp)
        repo_with_files(tmp_path / "repo", n_files)
        create_ms, finish_ms = worktree_times(tmp_path / "repo", n_tasks)
    rows = [
        ("in-process try_acquire+release", f"{in_process:,.0f}/s", ">= 50,000/s", in_process >= 50_000),
        ("cross-process try_acquire+release", f"{cross_process:,.0f}/s", ">= 2,000/s", cross_process >= 2_000),
        ("  for reference: FileLock cycle alone", f"{filelock_rate:,.0f}/s", "", None),
        ("  for reference: file create+unlink", f"{file_rate:,.0f}/s", "", None),
        (f"worktree create ({n_files:,} files)", f"{create_ms:.0f} ms/task", "", None),
        ("worktree commit+merge+remove", f"{finish_ms:.0f} ms/task", "", None),
        ("worktree total", f"{create_ms + finish_ms:.0f} ms/task", "", None),
    ]
    print(f"{'figure':<38} {'measured':>14}  {'target':<12} met")
    for name, value, target, met in rows:
        print(f"{name:<38} {value:>14}  {target:<12} {'' if met is None else ('yes' if met else 'NO')}")
    print(json.dumps({
        "inProcessGrantsPerSec": round(in_process), "crossProcessGrantsPerSec": round(cross_process),
        "fileLockCyclesPerSec": round(filelock_rate), "fileCreateUnlinkPerSec": round(file_rate),
        "worktreeRepoFiles": n_files, "worktreeTasks": n_tasks, "worktreeCreateMs": round(create_ms, 1),
        "worktreeFinishMs": round(finish_ms, 1), "worktreeTotalMs": round(create_ms + finish_ms, 1),
    }))


if __name__ == "__main__":
    main()
