"""Tasks that attack their own worktree, and ids that try to leave the worktrees folder: parex must never
commit the person's files onto their branch, nor delete anything outside the run's own worktree folder.
Real runs on real git repositories."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from parex_lsp.isolation.worktree import WorktreeError, Worktrees
from parex_lsp.state import worktrees_dir

PAREX = [sys.executable, "-m", "parex_lsp"]


def git(ws: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=ws, check=True, capture_output=True, text=True).stdout


@pytest.fixture
def ws(workspace: Path) -> Path:
    git(workspace, "init", "-q", "-b", "main")
    git(workspace, "config", "user.email", "dev@example.com")
    git(workspace, "config", "user.name", "dev")
    (workspace / "tracked.txt").write_text("base\n")
    git(workspace, "add", "-A")
    git(workspace, "commit", "-q", "-m", "base")
    (workspace / "notes.txt").write_text("the person's own untracked notes\n")  # never to be committed
    return workspace


def run(ws: Path, plan: str) -> tuple[int, dict, str]:
    (ws / "parex.toml").write_text(textwrap.dedent(plan).lstrip())
    p = subprocess.run([*PAREX, "run", "parex.toml", "--isolation", "worktree", "--json"], cwd=ws,
                       capture_output=True, text=True, timeout=120)
    return p.returncode, (json.loads(p.stdout.splitlines()[-1]) if p.stdout.strip() else {}), p.stderr


def assert_person_untouched(ws: Path) -> None:
    tree = git(ws, "ls-tree", "-r", "--name-only", "main").split()
    assert "notes.txt" not in tree and "parex.toml" not in tree, tree
    touched = git(ws, "log", "--name-only", "--format=", "main").split()
    assert "notes.txt" not in touched and "parex.toml" not in touched, touched
    assert (ws / "notes.txt").read_text() == "the person's own untracked notes\n"
    assert "notes.txt" in git(ws, "status", "--porcelain", "--untracked-files=all")  # still untracked


@pytest.mark.parametrize("attack", [
    'own=$PWD; cd .. && rm -rf "$own"',  # its own worktree
    'cd .. && rm -rf "$PWD"',  # the run's whole worktree folder, a running sibling's worktree with it
    'rm -f .git && echo stray > stray.txt',  # its link to the repository: git would look upward, into ws
])
def test_a_task_that_destroys_worktrees_never_commits_the_persons_files(ws: Path, attack: str):
    head = git(ws, "rev-parse", "main").strip()
    code, result, err = run(ws, f"""
        [run]
        max_concurrency = 4

        [[task]]
        id = "first"
        prompt = "echo work > first.txt"

        [[task]]
        id = "vandal"
        prompt = '{attack}'
        depends_on = ["first"]

        [[task]]
        id = "sibling"
        prompt = "sleep 1; echo work > sibling.txt"
        depends_on = ["first"]
    """)
    by_id = {t["id"]: t for t in result["tasks"]}
    assert by_id["first"]["status"] == "succeeded", (result, err)
    assert by_id["vandal"]["status"] == "failed", result
    assert "worktree" in by_id["vandal"]["error"], by_id["vandal"]
    sibling = by_id["sibling"]
    files = git(ws, "ls-tree", "-r", "--name-only", "main").split()
    if "$PWD" in attack and "own" not in attack:
        # Its worktree went too, unless it was made after the deletion: a clean failure, or its work merged.
        assert sibling["status"] == "failed" or "sibling.txt" in files, sibling
        assert "Traceback" not in err
    else:
        assert sibling["status"] == "succeeded" and "sibling.txt" in files, sibling
    assert_person_untouched(ws)
    files = git(ws, "ls-tree", "-r", "--name-only", "main").split()
    assert "stray.txt" not in files and "first.txt" in files
    merged = [m for m in git(ws, "log", "--format=%s", f"{head}..main").splitlines() if "merge task" in m]
    assert all("first" in m or "sibling" in m for m in merged), merged
    assert code == 1
    assert not [p for p in (ws / ".parex" / "worktrees").rglob("*") if p.is_file()]  # nothing left behind


def _worktrees(ws: Path, run_id: str) -> Worktrees:
    wt = Worktrees(ws, run_id, lambda other: False)
    wt.prepare()
    return wt


@pytest.mark.parametrize("task_id", [".", "..", "../run-b", "a/../..", ""])
def test_ids_that_leave_the_run_folder_are_refused_without_deleting_siblings(ws: Path, task_id: str):
    other_run = _worktrees(ws, "run-b")
    sibling = other_run.create("sib")
    (sibling / "work.txt").write_text("another task's work in progress\n")
    wt = Worktrees(ws, "run-a", lambda other: other == "run-b")  # run-b is live: prepare leaves it alone
    wt.prepare()
    mine = wt.create("ok")
    (mine / "mine.txt").write_text("x\n")
    with pytest.raises(WorktreeError):
        wt.create(task_id)
    assert wt.finish(task_id, True) is None
    assert wt.finish(task_id, False) is None
    with pytest.raises(WorktreeError):
        wt._remove(wt.dir / task_id)
    with pytest.raises(WorktreeError):
        wt._remove(wt.dir)  # the run's folder itself is not a task's worktree
    wt.close()
    assert (sibling / "work.txt").read_text() == "another task's work in progress\n"
    assert (worktrees_dir(ws) / "run-b" / "sib").is_dir()
    assert (ws / "tracked.txt").is_file() and (ws / "notes.txt").is_file()
    assert_person_untouched(ws)
    other_run.close()
