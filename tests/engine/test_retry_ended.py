"""A retry of a task an ended run left ready, through the engine (`RunOptions.retry`), on real git repositories:
the task runs even when an older run had it succeed, on a branch made at the kept branch's head; a kept branch
that went away before the task started fails it, naming the branch."""

from __future__ import annotations

import subprocess
from pathlib import Path

from parex_lsp.engine import RunOptions
from parex_lsp.engine.journal import find_run, replay
from parex_lsp.engine.review_later import retry_of
from tests.support.engine_helpers import make_run


def git(ws: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=ws, check=True, capture_output=True, text=True).stdout.strip()


def repo(ws: Path) -> None:
    git(ws, "init", "-q", "-b", "main")
    (ws / "README").write_text("base\n")
    (ws / ".gitignore").write_text("*.log\nparex.toml\n")
    git(ws, "add", "-A")
    git(ws, "-c", "user.name=dev", "-c", "user.email=d@x", "commit", "-q", "-m", "base")


PLAN = """
[run]
isolation = "worktree"

[[task]]
id = "t"
prompt = 'echo "n=${PAREX_FEEDBACK:-none}" >> f.txt'
"""


async def test_a_retry_runs_the_task_even_if_an_older_run_had_it_succeed(tmp_path: Path):
    repo(tmp_path)
    first, _ = await make_run(tmp_path, PLAN)
    assert (await first.execute()).status == "succeeded"
    held, _ = await make_run(tmp_path, PLAN, RunOptions(only=["t"], merge="review"))
    assert (await held.execute()).status == "ready"
    kept = git(tmp_path, "rev-parse", f"parex/{held.run_id}/t")

    got = retry_of(tmp_path, held.run_id, "t", "more")
    assert (got.dependents, got.waiting) == ([], [])
    again, rec = await make_run(tmp_path, PLAN, RunOptions(retry=got.retry))
    assert list(again.tasks) == ["t"]
    result = await again.execute()
    assert {t.id: t.status for t in result.tasks} == {"t": "succeeded"}  # the plan merges at once
    assert (tmp_path / "f.txt").read_text() == "n=none\nn=none\nn=more\n"
    assert git(tmp_path, "merge-base", "--is-ancestor", kept, "main") == ""
    journal = find_run(tmp_path, held.run_id)
    assert journal is not None
    t = replay(journal).tasks["t"]
    assert (t.status, t.review["retriedIn"]) == ("queued", again.run_id)


async def test_a_kept_branch_gone_before_the_task_starts_fails_it_by_name(tmp_path: Path):
    repo(tmp_path)
    held, _ = await make_run(tmp_path, PLAN, RunOptions(merge="review"))
    assert (await held.execute()).status == "ready"
    got = retry_of(tmp_path, held.run_id, "t", "more")
    git(tmp_path, "branch", "-D", f"parex/{held.run_id}/t")
    again, _ = await make_run(tmp_path, PLAN, RunOptions(retry=got.retry))
    [t] = (await again.execute()).tasks
    assert t.status == "failed"
    assert t.error == f"branch parex/{held.run_id}/t of task t no longer exists: there is no earlier work to continue from"
    assert not (tmp_path / "f.txt").exists()
