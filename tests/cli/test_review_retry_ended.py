"""`parex-lsp review RUN retry TASK --feedback TEXT` of a run that has ended (headless, tasks left ready): a new
run, in the foreground, resumes it and runs the task again from its kept branch with the feedback, as a live
retry gives it; the ended run's journal names the run that took the task over. Real git, real processes."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from tests.cli.cli_helpers import parex, write_plan
from tests.support.review_plans import git, init_repo, journal

FEEDBACK = "add a second line"
CHECKOUT_NOTE = "A reviewer looked at your previous attempt, which is in this checkout, and asks:"


def runs(ws: Path) -> list[str]:
    return sorted(p.name for p in (ws / ".parex" / "runs").iterdir())


def is_ancestor(ws: Path, older: str, newer: str) -> bool:
    return subprocess.run(["git", "merge-base", "--is-ancestor", older, newer], cwd=ws).returncode == 0


REVIEW_PLAN = """
    [run]
    isolation = "worktree"
    merge = "review"

    [[task]]
    id = "write"
    prompt = 'echo "feedback=${PAREX_FEEDBACK:-none}" >> notes.txt'

    [[task]]
    id = "after"
    prompt = "cp notes.txt seen.txt"
    depends_on = ["write"]

    [[task]]
    id = "picky"
    prompt = 'test -z "$PAREX_FEEDBACK" && echo fine > picky.txt'

    [[task]]
    id = "gone"
    prompt = "echo gone > gone.txt"
    """


def test_retry_of_an_ended_run_continues_the_kept_branch_with_the_feedback(tmp_path: Path):
    init_repo(tmp_path)
    write_plan(tmp_path, REVIEW_PLAN)
    first = parex("run", "parex.toml", cwd=tmp_path)
    assert first.returncode == 3, first.stderr
    [ended] = runs(tmp_path)
    kept = git(tmp_path, "rev-parse", f"parex/{ended}/write")
    before = len(journal(tmp_path, ended))

    # refusals name what is missing, start nothing and leave the ended run's journal as it was
    git(tmp_path, "branch", "-D", f"parex/{ended}/gone")
    for args, says in (
        (["write"], "retry needs feedback"),
        (["nope", "--feedback", "x"], f"run {ended} has no task nope"),
        (["after", "--feedback", "x"], f"task after of run {ended} is queued, not ready for review"),
        (["gone", "--feedback", "x"], f"branch parex/{ended}/gone of task gone (run {ended}) no longer exists"),
    ):
        refused = parex("review", ended, "retry", *args, cwd=tmp_path)
        assert refused.returncode == 2, (args, refused.stdout, refused.stderr)
        assert says in refused.stderr
    assert runs(tmp_path) == [ended]
    assert len(journal(tmp_path, ended)) == before

    # a retry whose agent fails: exit 1, and the ended run still records that it was taken over
    failed = parex("review", ended, "retry", "picky", "--feedback", "be picky", cwd=tmp_path)
    assert failed.returncode == 1, failed.stdout + failed.stderr
    picky_run = next(r for r in runs(tmp_path) if r != ended)
    assert "parex: picky failed" in failed.stderr

    got = parex("review", ended, "retry", "write", "--feedback", FEEDBACK, cwd=tmp_path)
    assert got.returncode == 0, got.stdout + got.stderr
    [retry_run] = [r for r in runs(tmp_path) if r not in (ended, picky_run)]
    assert f"retrying write of run {ended} in a new run, continuing its branch parex/{ended}/write" in got.stdout
    assert "[write] started" in got.stdout and "[write] ready" in got.stdout  # the usual progress and summary
    assert f"parex run {retry_run}: ready" in got.stdout
    assert f"write is ready for review again: parex-lsp review {retry_run}" in got.stderr
    assert (f"not started yet: after; once write has landed, run them: parex-lsp run "
            f"{tmp_path / 'parex.toml'} --resume {retry_run} --only after") in got.stderr

    # the new run's own branch starts at the kept one and adds the retry's commit on top
    branch = f"parex/{retry_run}/write"
    assert is_ancestor(tmp_path, kept, branch)
    assert int(git(tmp_path, "rev-list", "--count", f"{kept}..{branch}")) >= 1
    assert git(tmp_path, "show", f"{branch}:notes.txt") == f"feedback=none\nfeedback={FEEDBACK}"
    assert git(tmp_path, "rev-parse", f"parex/{ended}/write") == kept  # the kept branch is left as it was

    # the ended run's journal records the decision, the new run says whom it resumed
    retried = [e for e in journal(tmp_path, ended) if e["kind"] == "queued" and (e.get("data") or {}).get("retriedIn")]
    assert [(e["taskId"], e["data"]["retriedIn"]) for e in retried] == [("picky", picky_run), ("write", retry_run)]
    assert retried[1]["data"]["feedback"] == FEEDBACK and retried[1]["data"]["branch"] == f"parex/{ended}/write"
    started = journal(tmp_path, retry_run)[0]
    assert started["kind"] == "runStarted" and started["data"]["resumedFrom"] == ended
    assert [t["id"] for t in started["data"]["tasks"]] == ["write"]
    listed = parex("review", ended, "--json", cwd=tmp_path)
    assert [r["taskId"] for r in json.loads(listed.stdout)["ready"]] == ["gone"]  # write and picky were taken over
    shown = json.loads(parex("status", ended, "--json", cwd=tmp_path).stdout)
    assert {t["id"]: (t["status"], t["reason"]) for t in shown["tasks"]}["write"] == (
        "queued", f"retried in run {retry_run}")
    again = parex("review", ended, "retry", "write", "--feedback", "once more", cwd=tmp_path)
    assert again.returncode == 2 and f"(retried in run {retry_run})" in again.stderr

    # reviewed in the retry's run, then the waiting dependent runs with the command given
    accepted = parex("review", retry_run, "accept", "write", cwd=tmp_path)
    assert accepted.returncode == 0, accepted.stderr
    assert (tmp_path / "notes.txt").read_text() == f"feedback=none\nfeedback={FEEDBACK}\n"
    follow = parex("run", "parex.toml", "--resume", retry_run, "--only", "after", cwd=tmp_path)
    assert follow.returncode == 3, follow.stdout + follow.stderr  # after is held for review too
    last = runs(tmp_path)[-1]
    assert parex("review", last, "accept", "after", cwd=tmp_path).returncode == 0
    assert (tmp_path / "seen.txt").read_text() == f"feedback=none\nfeedback={FEEDBACK}\n"


SCRIBE_PLAN = """
    [run]
    isolation = "worktree"

    [agents.scribe]
    command = ["sh", "-c", "printf '%s' \\"$1\\" > prompt.txt; printf '%s' \\"${PAREX_FEEDBACK:-}\\" > feedback.txt", "scribe", "{prompt}"]

    [[task]]
    id = "draft"
    agent = "scribe"
    prompt = "write the draft"

    [[task]]
    id = "publish"
    prompt = "cp prompt.txt published.txt"
    depends_on = ["draft"]
    """


def test_retry_with_dependents_lands_per_the_plan_and_runs_what_waited(tmp_path: Path):
    init_repo(tmp_path)
    write_plan(tmp_path, SCRIBE_PLAN)
    first = parex("run", "parex.toml", "--review", cwd=tmp_path)  # this run held it; the plan merges at once
    assert first.returncode == 3, first.stdout + first.stderr
    [ended] = runs(tmp_path)
    kept = git(tmp_path, "rev-parse", f"parex/{ended}/draft")
    assert git(tmp_path, "show", f"{kept}:prompt.txt") == "write the draft"

    got = parex("review", ended, "retry", "draft", "--feedback", "shorter please", "--dependents", "--json",
                cwd=tmp_path)
    assert got.returncode == 0, got.stdout + got.stderr
    result = json.loads(got.stdout.splitlines()[-1])
    assert {t["id"]: t["status"] for t in result["tasks"]} == {"draft": "succeeded", "publish": "succeeded"}
    assert "draft succeeded and landed" in got.stderr

    # a command agent gets the feedback in its prompt as a live retry gives it, and $PAREX_FEEDBACK too
    prompt = f"write the draft\n\n{CHECKOUT_NOTE}\nshorter please"
    assert (tmp_path / "prompt.txt").read_text() == prompt
    assert (tmp_path / "feedback.txt").read_text() == "shorter please"
    assert (tmp_path / "published.txt").read_text() == prompt
    assert is_ancestor(tmp_path, kept, "main")  # the landed work builds on the kept branch
    retried = [e for e in journal(tmp_path, ended) if e["kind"] == "queued" and (e.get("data") or {}).get("retriedIn")]
    assert [e["data"]["retriedIn"] for e in retried] == [result["runId"]]
