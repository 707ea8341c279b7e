"""Worktree isolation through the whole engine (`parex-lsp run --isolation worktree`) on real git repos."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

PAREX = [sys.executable, "-m", "parex_lsp"]


def git(ws: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=ws, check=True, capture_output=True, text=True).stdout


def repo(ws: Path, plan: str) -> Path:
    git(ws, "init", "-q", "-b", "main")
    git(ws, "config", "user.email", "dev@example.com")
    git(ws, "config", "user.name", "dev")
    (ws / "shared.txt").write_text("line one\nline two\nline three\n")
    (ws / "parex.toml").write_text(textwrap.dedent(plan).lstrip())
    (ws / ".gitignore").write_text("*.log\n")
    git(ws, "add", "-A")
    git(ws, "commit", "-q", "-m", "base")
    (ws / ".env").write_text("SECRET=1\n")  # untracked, as secrets are: only copy_files brings it in
    return ws


def run(ws: Path, *extra: str) -> tuple[int, dict, str]:
    p = subprocess.run([*PAREX, "run", "parex.toml", "--isolation", "worktree", "--json", *extra], cwd=ws,
                       capture_output=True, text=True, timeout=120)
    result = json.loads(p.stdout.splitlines()[-1]) if p.stdout.strip() else {}
    return p.returncode, result, p.stderr


PLAN = """
    [run]
    max_concurrency = 4
    copy_files = [".env"]
    setup = "test -f .env && echo setup ran with $(cat .env)"

    [[task]]
    id = "schema"
    prompt = "echo 'CREATE TABLE users;' > schema.sql"

    [[task]]
    id = "docs"
    prompt = "mkdir -p docs && echo guide > docs/guide.md"

    [[task]]
    id = "api"
    prompt = "test -f schema.sql && grep -q users schema.sql && echo 'routes' > api.py"
    depends_on = ["schema"]

    [[task]]
    id = "edit-a"
    prompt = "sed -i 's/line two/line two (a)/' shared.txt"

    [[task]]
    id = "edit-b"
    prompt = "sed -i 's/line two/line two (b)/' shared.txt"
"""


def test_worktree_runs_merge_back_and_leave_nothing_behind(workspace: Path):
    ws = repo(workspace, PLAN)
    rc, result, err = run(ws)
    by_id = {t["id"]: t for t in result["tasks"]}
    assert rc == 1, err
    for tid in ("schema", "docs", "api"):
        assert by_id[tid]["status"] == "succeeded", (tid, by_id[tid], err)
    # the dependent saw its dependency's file, and everything that succeeded is on main
    assert (ws / "api.py").read_text() == "routes\n"
    assert (ws / "docs" / "guide.md").exists() and (ws / "schema.sql").exists()
    # the two edits of one line: exactly one merged, the other is a merge conflict naming the file
    edits = sorted((by_id["edit-a"]["status"], by_id["edit-b"]["status"]))
    assert edits == ["failed", "succeeded"], edits
    loser = by_id["edit-a"] if by_id["edit-a"]["status"] == "failed" else by_id["edit-b"]
    assert loser["code"] == "merge-conflict" and "shared.txt" in loser["error"]
    assert "line two (" in (ws / "shared.txt").read_text()
    # setup ran in each worktree, with the untracked .env copied in; the copy is never committed
    log = Path(by_id["schema"]["logUri"].removeprefix("file://")).read_text()
    assert "setup ran with SECRET=1" in log
    assert ".env" not in git(ws, "ls-files").split()
    # the conflicting branch is kept for the user; no worktree is left; the checkout is clean
    branches = git(ws, "branch", "--list", "parex/*").split()
    assert any(b.endswith("/" + loser["id"]) for b in branches), branches
    assert len(git(ws, "worktree", "list").splitlines()) == 1
    assert git(ws, "status", "--porcelain", "--untracked-files=no") == ""
    assert git(ws, "rev-parse", "--abbrev-ref", "HEAD").strip() == "main"


def test_a_failing_setup_fails_the_task_with_its_reason(workspace: Path):
    ws = repo(workspace, """
        [run]
        setup = "echo installing; exit 9"
        [[task]]
        id = "t"
        prompt = "echo never > never.txt"
    """)
    rc, result, _ = run(ws)
    t = result["tasks"][0]
    assert rc == 1 and t["code"] == "setup-failed" and "exit" in t["error"]
    assert not (ws / "never.txt").exists()


def test_a_dirty_checkout_is_refused_before_anything_runs(workspace: Path):
    ws = repo(workspace, '[[task]]\nid = "t"\nprompt = "echo hi > hi.txt"\n')
    (ws / "shared.txt").write_text("uncommitted work\n")
    p = subprocess.run([*PAREX, "run", "parex.toml", "--isolation", "worktree"], cwd=ws, capture_output=True,
                       text=True, timeout=60)
    assert p.returncode == 2
    assert "uncommitted" in p.stderr.lower() or "dirty" in p.stderr.lower(), p.stderr
    assert (ws / "shared.txt").read_text() == "uncommitted work\n"  # the user's work is untouched
    assert not (ws / "hi.txt").exists()
