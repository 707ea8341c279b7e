"""Cancelling: parex/cancel (a task, then the run), $/cancelRequest on a pending parex/run, progress cancel."""

from __future__ import annotations

import asyncio
import json

import pytest
from lsprotocol import types
from pygls.exceptions import JsonRpcRequestCancelled
from pytest_lsp import LanguageClient

from tests.support.lsp_helpers import events, first_run_id, initialize, request, wait_until, write_plan

SLOW = """
[run]
max_concurrency = 4

[[task]]
id = "a"
prompt = "echo started a; sleep 30"

[[task]]
id = "b"
prompt = "echo started b; sleep 30"

[[task]]
id = "c"
prompt = "echo c"
depends_on = ["a"]
"""


def statuses(result_or_data) -> dict[str, str]:
    return {t["id"]: t["status"] for t in result_or_data["tasks"]}


async def both_started(client: LanguageClient, run_id: str) -> None:
    await wait_until(lambda: len(events(client, run_id, kind="started")) == 2, "a and b to start")


async def test_parex_cancel_a_task_then_the_run(client: LanguageClient, tmp_path):
    plan = write_plan(tmp_path, SLOW)
    await initialize(client, tmp_path)
    pending = asyncio.ensure_future(request(client, "parex/run", {"plan": {"uri": plan.as_uri()}}))
    run_id = await first_run_id(client)
    await both_started(client, run_id)

    assert await request(client, "parex/cancel", {"runId": run_id, "taskId": "a"}) == {"cancelled": ["a"]}
    await wait_until(lambda: events(client, run_id, "a", "cancelled"), "a cancelled")
    await wait_until(lambda: events(client, run_id, "c", "skipped"), "its dependent skipped")
    assert not events(client, run_id, "b", "cancelled")  # the rest goes on

    assert await request(client, "parex/cancel", {"runId": run_id}) == {"cancelled": ["b"]}
    result = await pending
    assert result["status"] == "cancelled"
    assert statuses(result) == {"a": "cancelled", "b": "cancelled", "c": "skipped"}
    assert client.progress_reports[f"parex/{run_id}/a"][-1].message == "cancelled"
    assert client.progress_reports[f"parex/{run_id}/c"][-1].message == "skipped"
    assert client.progress_reports[f"parex/{run_id}"][-1].message.startswith("cancelled")
    # a run that has ended cancels nothing
    assert await request(client, "parex/cancel", {"runId": run_id}) == {"cancelled": []}


async def test_cancel_request_cancels_the_run(client: LanguageClient, tmp_path):
    plan = write_plan(tmp_path, SLOW)
    await initialize(client, tmp_path)
    pending = asyncio.ensure_future(
        client.protocol.send_request_async("parex/run", {"plan": {"uri": plan.as_uri()}}, msg_id="run-1"))
    run_id = await first_run_id(client)
    await both_started(client, run_id)

    client.protocol.notify(types.CANCEL_REQUEST, types.CancelParams(id="run-1"))

    with pytest.raises(JsonRpcRequestCancelled):
        await asyncio.wait_for(pending, 30)
    # the run ended cleanly before the request was answered
    [finished] = events(client, run_id, kind="runFinished")
    assert finished["data"]["status"] == "cancelled"
    assert statuses(finished["data"]) == {"a": "cancelled", "b": "cancelled", "c": "cancelled"}
    status = await request(client, "parex/status", {})
    assert status == {"runs": []}


async def test_progress_cancel_on_task_token_and_run_token(client: LanguageClient, tmp_path):
    plan = write_plan(tmp_path, SLOW)
    await initialize(client, tmp_path)
    pending = asyncio.ensure_future(request(client, "parex/run", {"plan": {"uri": plan.as_uri()}}))
    run_id = await first_run_id(client)
    await wait_until(lambda: all(client.progress_reports.get(f"parex/{run_id}/{t}") for t in "ab"), "task progress")

    client.protocol.notify(types.WINDOW_WORK_DONE_PROGRESS_CANCEL,
                           types.WorkDoneProgressCancelParams(token=f"parex/{run_id}/b"))
    await wait_until(lambda: events(client, run_id, "b", "cancelled"), "b cancelled")
    assert not events(client, run_id, "a", "cancelled")

    client.protocol.notify(types.WINDOW_WORK_DONE_PROGRESS_CANCEL,
                           types.WorkDoneProgressCancelParams(token=f"parex/{run_id}"))
    result = await pending
    assert result["status"] == "cancelled"
    assert statuses(result) == {"a": "cancelled", "b": "cancelled", "c": "cancelled"}
    assert client.progress_reports[f"parex/{run_id}/b"][-1].message == "cancelled"


async def test_shutdown_ends_running_runs_cleanly(client: LanguageClient, tmp_path):
    plan = write_plan(tmp_path, SLOW)
    await initialize(client, tmp_path)
    answer = await request(client, "parex/run", {"plan": {"uri": plan.as_uri()}, "detach": True})
    await both_started(client, answer["runId"])

    await asyncio.wait_for(client.shutdown_session(), 30)
    client.capabilities = None  # the session is over: the fixture must not shut it down again

    journal = (tmp_path / ".parex" / "runs" / answer["runId"] / "journal.jsonl").read_text().splitlines()
    last = json.loads(journal[-1])
    assert last["kind"] == "runFinished" and last["data"]["status"] == "cancelled"
    assert {t["id"]: t["status"] for t in last["data"]["tasks"]} == {"a": "cancelled", "b": "cancelled",
                                                                     "c": "cancelled"}
