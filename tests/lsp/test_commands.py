"""workspace/executeCommand: parex.run, parex.cancel, parex.showLog (parex.retryTask is in test_diagnostics)."""

from __future__ import annotations

import asyncio

import pytest
from lsprotocol import types
from pygls.exceptions import JsonRpcRequestCancelled
from pytest_lsp import LanguageClient

from tests.support.lsp_helpers import events, first_run_id, initialize, request, wait_until, write_plan

PLAN = """
[[task]]
id = "hello"
prompt = "echo hello from parex"
"""

SLOW = """
[[task]]
id = "slow"
prompt = "sleep 30"
"""


def command(name: str, arg: dict) -> types.ExecuteCommandParams:
    return types.ExecuteCommandParams(command=name, arguments=[arg])


async def test_commands_are_advertised(client: LanguageClient, tmp_path):
    result = await initialize(client, tmp_path)
    assert sorted(result.capabilities.execute_command_provider.commands) == [
        "parex.cancel", "parex.retryTask", "parex.run", "parex.showLog"]
    assert result.capabilities.code_action_provider


async def test_run_and_show_log_commands(client: LanguageClient, tmp_path):
    plan = write_plan(tmp_path, PLAN)
    await initialize(client, tmp_path)

    result = await request(client, "workspace/executeCommand", command("parex.run", {"plan": {"uri": plan.as_uri()}}))
    assert result["status"] == "succeeded"
    run_id = result["runId"]

    shown = await request(client, "workspace/executeCommand",
                          command("parex.showLog", {"runId": run_id, "taskId": "hello"}))
    log = tmp_path / ".parex" / "runs" / run_id / "hello.log"
    assert shown == {"uri": log.as_uri()}
    assert "hello from parex" in log.read_text()
    assert [d.uri for d in client.shown_documents] == [log.as_uri()]


async def test_cancel_command_on_a_detached_run(client: LanguageClient, tmp_path):
    plan = write_plan(tmp_path, SLOW)
    await initialize(client, tmp_path)

    answer = await request(client, "workspace/executeCommand",
                           command("parex.run", {"plan": {"uri": plan.as_uri()}, "detach": True}))
    run_id = answer["runId"]
    assert await first_run_id(client) == run_id
    await wait_until(lambda: events(client, run_id, "slow", "started"), "slow to start")

    cancelled = await request(client, "workspace/executeCommand", command("parex.cancel", {"runId": run_id}))
    assert cancelled == {"cancelled": ["slow"]}
    finished = await wait_until(lambda: events(client, run_id, kind="runFinished"), "runFinished")
    assert finished[0]["data"]["status"] == "cancelled"


async def test_cancel_request_on_the_run_command_cancels_the_run(client: LanguageClient, tmp_path):
    plan = write_plan(tmp_path, SLOW)
    await initialize(client, tmp_path)
    pending = asyncio.ensure_future(client.protocol.send_request_async(
        "workspace/executeCommand", command("parex.run", {"plan": {"uri": plan.as_uri()}}), msg_id="cmd-1"))
    run_id = await first_run_id(client)
    await wait_until(lambda: events(client, run_id, "slow", "started"), "slow to start")

    client.protocol.notify(types.CANCEL_REQUEST, types.CancelParams(id="cmd-1"))

    with pytest.raises(JsonRpcRequestCancelled):
        await asyncio.wait_for(pending, 30)
    finished = await wait_until(lambda: events(client, run_id, kind="runFinished"), "runFinished")
    assert finished[0]["data"]["status"] == "cancelled"
