"""Review over the real server: a review-mode run stays live until its ready tasks are decided; parex/diff shows
a task's change; predicted conflicts are warnings on both tasks; a run that ended is reviewed from its journal."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest
from pygls.exceptions import JsonRpcException
from pytest_lsp import LanguageClient

from tests.support.lsp_helpers import events, first_run_id, initialize, request, wait_until, write_plan
from tests.support.review_plans import (
    BEST_OF_RANKS,
    BEST_OF_TASK,
    CONFLICT_TASKS,
    REVIEW_PLAN,
    add_ranked_scripts,
    git,
    init_repo,
    ranks,
)

PLAN = REVIEW_PLAN + CONFLICT_TASKS


def ready(client: LanguageClient, run_id: str, task_id: str) -> list[dict]:
    return events(client, run_id, task_id, "ready")


async def test_review_mode_run_over_the_server(client: LanguageClient, tmp_path: Path):
    init_repo(tmp_path)
    plan = write_plan(tmp_path, PLAN)
    await initialize(client, tmp_path)
    pending = asyncio.ensure_future(request(client, "parex/run", {"plan": {"uri": plan.as_uri()}}))
    run_id = await first_run_id(client)
    for tid in ("good", "bad", "again", "left", "right"):
        await wait_until(lambda tid=tid: ready(client, run_id, tid), f"{tid} ready")
    assert ready(client, run_id, "good")[0]["data"]["changes"] == {"files": 1, "added": 1, "removed": 0,
                                                                   "commits": 1}

    # the conflict between left and right is known before either merges, with a warning on both tasks
    predicted = events(client, run_id, kind="conflictPredicted")
    assert {(e["taskId"], e["data"]["other"]) for e in predicted} >= {("left", "right"), ("right", "left")}
    def warnings() -> set[str]:  # diagnostics are published in batches, a moment after the events
        return {d.data["taskId"] for d in client.diagnostics.get(plan.as_uri(), []) if d.code == "conflict-predicted"}

    await wait_until(lambda: warnings() == {"left", "right"}, "conflict warnings on both tasks")

    diff = await request(client, "parex/diff", {"runId": run_id, "taskId": "good"})
    assert diff["files"] == [{"path": "good.txt", "status": "added", "baseBlob": None,
                              "resultBlob": diff["files"][0]["resultBlob"], "base": None, "result": "good\n"}]
    assert "+good" in diff["diff"]

    with pytest.raises(JsonRpcException, match="feedback"):
        await request(client, "parex/review", {"runId": run_id, "taskId": "again", "action": "retry"})
    got = await request(client, "parex/review", {"runId": run_id, "taskId": "good", "action": "accept"})
    assert got["status"] == "succeeded"
    await request(client, "parex/review", {"runId": run_id, "taskId": "bad", "action": "reject"})
    await request(client, "parex/review", {"runId": run_id, "taskId": "again", "action": "retry",
                                           "feedback": "also greet the reviewer"})
    await wait_until(lambda: len(ready(client, run_id, "again")) == 2, "again ready after its retry")
    await request(client, "parex/review", {"runId": run_id, "taskId": "again", "action": "accept"})
    await request(client, "parex/review", {"runId": run_id, "taskId": "left", "action": "accept"})
    assert not pending.done()  # right is still waiting for a reviewer
    await request(client, "parex/review", {"runId": run_id, "taskId": "right", "action": "reject"})

    result = await pending
    by_id = {t["id"]: t for t in result["tasks"]}
    assert by_id["good"]["status"] == "succeeded" and by_id["after-good"]["status"] == "succeeded"
    assert (tmp_path / "seen-by-dependent.txt").read_text() == "good\n"  # the dependent ran from the merged state
    assert by_id["bad"]["status"] == "rejected" and by_id["after-bad"]["status"] == "skipped"
    assert git(tmp_path, "rev-parse", "--verify", f"refs/heads/parex/{run_id}/bad")
    assert {"taskId": "bad", "branch": f"parex/{run_id}/bad"} in result["keptBranches"]
    assert (tmp_path / "again.txt").read_text() == "attempt 1 feedback: none\nattempt 2 feedback: also greet the reviewer\n"
    assert result["status"] == "failed"  # rejected counts like skipped


async def test_a_run_that_ended_is_reviewed_from_its_journal(client: LanguageClient, tmp_path: Path):
    init_repo(tmp_path)
    write_plan(tmp_path, """
        [run]
        isolation = "worktree"
        merge = "review"

        [[task]]
        id = "one"
        prompt = "echo 1 > one.txt"
        """)
    subprocess.run([sys.executable, "-m", "parex_lsp", "run", "parex.toml", "--quiet"], cwd=tmp_path, check=False,
                   capture_output=True, timeout=60)
    run_id = git(tmp_path, "for-each-ref", "--format=%(refname:short)", "refs/heads/parex/").split("/")[1]
    await initialize(client, tmp_path)
    diff = await request(client, "parex/diff", {"runId": run_id, "taskId": "one"})
    assert [f["path"] for f in diff["files"]] == ["one.txt"]
    got = await request(client, "parex/review", {"runId": run_id, "taskId": "one", "action": "accept"})
    assert got["status"] == "succeeded"
    assert (tmp_path / "one.txt").read_text() == "1\n"
    with pytest.raises(JsonRpcException, match="not ready"):
        await request(client, "parex/review", {"runId": run_id, "taskId": "one", "action": "reject"})


async def test_best_of_three_and_a_verify_failure_over_the_server(client: LanguageClient, tmp_path: Path):
    init_repo(tmp_path)
    add_ranked_scripts(tmp_path)
    plan = write_plan(tmp_path, """
        [run]
        isolation = "worktree"
        max_concurrency = 3
        verify = "test ! -f broken.txt"
        """ + BEST_OF_TASK + """
        [[task]]
        id = "breaks"
        prompt = "echo x > broken.txt"
        depends_on = ["best"]
        """)
    await initialize(client, tmp_path)
    result = await request(client, "parex/run", {"plan": {"uri": plan.as_uri()}})
    best, breaks = result["tasks"]
    assert best["status"] == "succeeded"
    assert ranks(best["candidates"]) == BEST_OF_RANKS
    assert (tmp_path / "result").read_text() == "5\n"  # the better candidate is the one merged
    merged = git(tmp_path, "rev-parse", "HEAD")
    assert breaks["status"] == "failed" and breaks["code"] == "verify-failed"
    assert git(tmp_path, "rev-parse", "HEAD") == merged  # exactly its pre-merge commit
    assert git(tmp_path, "status", "--porcelain") == ""
    kept = {k["branch"] for k in result["keptBranches"]}
    run_id = result["runId"]
    assert kept == {f"parex/{run_id}/best@1", f"parex/{run_id}/best@2", f"parex/{run_id}/breaks"}
    diag = [d for d in client.diagnostics.get(plan.as_uri(), []) if d.code == "verify-failed"]
    assert diag and "the merge was undone" in diag[0].message


async def test_run_params_merge_review_and_bad_review_params(client: LanguageClient, tmp_path: Path):
    init_repo(tmp_path)
    plan = write_plan(tmp_path, """
        [run]
        isolation = "worktree"

        [[task]]
        id = "solo"
        prompt = "echo solo > solo.txt"
        """)
    await initialize(client, tmp_path)
    with pytest.raises(JsonRpcException, match="`merge` must be one of 'auto', 'review'"):
        await request(client, "parex/run", {"plan": {"uri": plan.as_uri()}, "merge": "later"})
    pending = asyncio.ensure_future(request(client, "parex/run", {"plan": {"uri": plan.as_uri()},
                                                                  "merge": "review"}))
    run_id = await first_run_id(client)
    await wait_until(lambda: ready(client, run_id, "solo"), "solo ready")
    assert not (tmp_path / "solo.txt").exists()
    with pytest.raises(JsonRpcException, match="`action` must be one of"):
        await request(client, "parex/review", {"runId": run_id, "taskId": "solo", "action": "merge"})
    with pytest.raises(JsonRpcException, match="has no task nope"):
        await request(client, "parex/review", {"runId": run_id, "taskId": "nope", "action": "accept"})
    await request(client, "parex/cancel", {"runId": run_id})
    result = await pending
    assert result["status"] == "cancelled"
    assert {t["id"]: t["status"] for t in result["tasks"]} == {"solo": "ready"}  # nothing lost: still ready
