"""`parex-lsp run --review` without a TTY, then `parex-lsp review` and `gc --branches`, on real git repositories."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

PAREX = [sys.executable, "-m", "parex_lsp"]

PLAN = """
[run]
isolation = "worktree"
verify = "test ! -f broken.txt"

[[task]]
id = "one"
prompt = "echo 1 > one.txt"

[[task]]
id = "after-one"
prompt = "echo 2 > two.txt"
depends_on = ["one"]

[[task]]
id = "breaks"
prompt = "echo x > broken.txt"

[[task]]
id = "nope"
prompt = "echo no > nope.txt"
"""


def git(ws: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=ws, check=True, capture_output=True, text=True).stdout.strip()


def parex(ws: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*PAREX, *args], cwd=ws, capture_output=True, text=True, timeout=120,
                          stdin=subprocess.DEVNULL)


def test_a_headless_review_run_ends_ready_and_is_reviewed_later(tmp_path: Path) -> None:
    git(tmp_path, "init", "-q", "-b", "main")
    (tmp_path / "parex.toml").write_text(textwrap.dedent(PLAN))
    (tmp_path / ".gitignore").write_text("parex.toml\n")
    git(tmp_path, "add", "-A")
    git(tmp_path, "-c", "user.name=d", "-c", "user.email=d@x", "commit", "-q", "-m", "base")

    p = parex(tmp_path, "run", "--review", "--json")
    assert p.returncode == 3, p.stderr  # tasks wait for review
    result = json.loads(p.stdout.splitlines()[-1])
    run_id = result["runId"]
    assert {t["id"]: t["status"] for t in result["tasks"]} == {
        "one": "ready", "after-one": "pending", "breaks": "ready", "nope": "ready"}
    assert f"parex-lsp review {run_id}" in p.stderr

    listed = json.loads(parex(tmp_path, "review", "--json").stdout)
    assert listed["runId"] == run_id and {r["taskId"] for r in listed["ready"]} == {"one", "breaks", "nope"}
    assert "+1" in parex(tmp_path, "review", run_id, "diff", "one").stdout

    accepted = parex(tmp_path, "review", run_id, "accept", "one")
    assert accepted.returncode == 0 and (tmp_path / "one.txt").read_text() == "1\n"
    # the dependent the ended run held back is named, with the command that runs it
    resume = f"parex-lsp run {tmp_path / 'parex.toml'} --resume {run_id} --only after-one"
    assert f"not started yet: after-one; to run them: {resume}" in accepted.stdout, accepted.stdout
    before = git(tmp_path, "rev-parse", "HEAD")
    failed = parex(tmp_path, "review", run_id, "accept", "breaks")
    assert failed.returncode == 1 and "the merge was undone" in failed.stdout
    assert git(tmp_path, "rev-parse", "HEAD") == before  # the verify failure undid that merge alone
    assert parex(tmp_path, "review", run_id, "reject", "nope").returncode == 0
    again = parex(tmp_path, "review", run_id, "reject", "nope")
    assert again.returncode == 1 and "not ready" in again.stderr

    status = json.loads(parex(tmp_path, "status", run_id, "--json").stdout)
    assert {t["id"]: t["status"] for t in status["tasks"]}["nope"] == "rejected"
    assert sorted(status["keptBranches"]) == [f"parex/{run_id}/breaks", f"parex/{run_id}/nope"]
    kept = git(tmp_path, "for-each-ref", "--format=%(refname:short)", "refs/heads/parex/").split()
    assert sorted(kept) == [f"parex/{run_id}/breaks", f"parex/{run_id}/nope"]  # nothing lost
    assert parex(tmp_path, "gc", "--branches").returncode == 0
    assert git(tmp_path, "for-each-ref", "refs/heads/parex/") == ""

    resumed = parex(tmp_path, *resume.split()[1:], "--json")
    tasks = {t["id"]: t for t in json.loads(resumed.stdout.splitlines()[-1])["tasks"]}
    assert resumed.returncode == 0 and tasks["after-one"]["status"] == "succeeded", resumed.stderr
    assert tasks["one"].get("reusedFrom") == run_id and (tmp_path / "two.txt").read_text() == "2\n"
