"""`parex/review` retry of a ready task of a run that has ended (a headless run of the command line): the real
server starts a new run resuming it, answers that run's id at once, and the run streams progress like any run;
the task continues its kept branch with the feedback, and the ended run's journal names the new run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from pygls.exceptions import JsonRpcException
from pytest_lsp import LanguageClient

from tests.support.lsp_helpers import events, initialize, request, wait_until, write_plan
from tests.support.review_plans import git, init_repo, journal

FEEDBACK = "say it twice"


PLAN = """
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
    merge = "auto"

    [[task]]
    id = "solo"
    prompt = 'echo "solo ${PAREX_FEEDBACK:-none}" > solo.txt'

    [[task]]
    id = "solo-after"
    prompt = "cat solo.txt"
    depends_on = ["solo"]
    """


async def test_retry_of_an_ended_run_starts_a_run_over_the_server(client: LanguageClient, tmp_path: Path):
    init_repo(tmp_path)
    write_plan(tmp_path, PLAN)
    headless = subprocess.run([sys.executable, "-m", "parex_lsp", "run", "parex.toml", "--quiet"], cwd=tmp_path,
                              capture_output=True, text=True, timeout=120)
    assert headless.returncode == 3, headless.stdout + headless.stderr
    [ended] = [p.name for p in (tmp_path / ".parex" / "runs").iterdir()]
    kept = git(tmp_path, "rev-parse", f"parex/{ended}/write")
    await initialize(client, tmp_path)

    # refusals: RequestFailed naming what is wrong; nothing starts
    for task_id, says in (("nope", f"run {ended} has no task nope"),
                          ("after", f"task after of run {ended} is queued, not ready for review")):
        with pytest.raises(JsonRpcException, match=says):
            await request(client, "parex/review", {"runId": ended, "taskId": task_id, "action": "retry",
                                                   "feedback": "x"})
    with pytest.raises(JsonRpcException, match="`feedback` is required for retry"):
        await request(client, "parex/review", {"runId": ended, "taskId": "write", "action": "retry"})
    with pytest.raises(JsonRpcException, match="`dependents` must be true or false"):
        await request(client, "parex/review", {"runId": ended, "taskId": "write", "action": "retry",
                                               "feedback": "x", "dependents": "yes"})
    assert not client.events

    # with its dependents: the answer is the new run, at once; the task is ready again in it
    got = await request(client, "parex/review", {"runId": ended, "taskId": "write", "action": "retry",
                                                 "feedback": FEEDBACK, "dependents": True})
    new = got["runId"]
    assert new != ended
    assert got == {"runId": new, "taskId": "write", "status": "queued", "resumedFrom": ended,
                   "branch": f"parex/{ended}/write", "dependents": ["after"]}
    ready = await wait_until(lambda: events(client, new, "write", "ready"), "write ready in the new run")
    branch = ready[0]["data"]["branch"]
    assert branch == f"parex/{new}/write"
    assert subprocess.run(["git", "merge-base", "--is-ancestor", kept, branch], cwd=tmp_path).returncode == 0
    assert git(tmp_path, "rev-list", "--count", f"{kept}..{branch}") == "1"
    assert git(tmp_path, "show", f"{branch}:notes.txt") == f"feedback=none\nfeedback={FEEDBACK}"
    # progress like any run: the run's and the task's own token
    assert any(str(token) == f"parex/{new}/write" for token in client.progress_reports)
    started = journal(tmp_path, ended)
    assert [(e["taskId"], e["data"]["retriedIn"], e["data"]["feedback"]) for e in started
            if e["kind"] == "queued" and (e.get("data") or {}).get("retriedIn")] == [("write", new, FEEDBACK)]

    # the new run is live here: accepting the task in it starts the dependent that waited
    accepted = await request(client, "parex/review", {"runId": new, "taskId": "write", "action": "accept"})
    assert accepted["status"] == "succeeded"
    finished = await wait_until(lambda: events(client, new, kind="runFinished"), "the retry's run to end")
    assert {t["id"]: t["status"] for t in finished[0]["data"]["tasks"]} == {"write": "succeeded",
                                                                             "after": "succeeded"}
    assert (tmp_path / "seen.txt").read_text() == f"feedback=none\nfeedback={FEEDBACK}\n"

    # without dependents, the answer says what still waits; a second retry of a task taken over is refused
    solo = await request(client, "parex/review", {"runId": ended, "taskId": "solo", "action": "retry",
                                                  "feedback": "again"})
    assert solo["dependents"] == [] and solo["waiting"] == ["solo-after"]
    assert solo["next"] == f"parex-lsp run {tmp_path / 'parex.toml'} --resume {solo['runId']} --only solo-after"
    await wait_until(lambda: events(client, solo["runId"], "solo", "ready"), "solo ready in its run")
    with pytest.raises(JsonRpcException, match=f"retried in run {new}"):
        await request(client, "parex/review", {"runId": ended, "taskId": "write", "action": "retry",
                                               "feedback": "x"})
    rejected = await request(client, "parex/review", {"runId": solo["runId"], "taskId": "solo", "action": "reject"})
    assert rejected["status"] == "rejected"
    assert git(tmp_path, "show", f"parex/{solo['runId']}/solo:solo.txt") == "solo again"
