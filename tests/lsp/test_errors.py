"""Bad input never hurts the server: InvalidParams naming every problem, MethodNotFound, busy plans."""

from __future__ import annotations

import asyncio

import pytest
from lsprotocol import types
from pygls.exceptions import JsonRpcException, JsonRpcInvalidParams, JsonRpcMethodNotFound
from pytest_lsp import LanguageClient

from tests.support.lsp_helpers import events, first_run_id, initialize, line_of, request, wait_until, write_plan

INVALID = """
[run]
max_concurrency = 0

[[task]]
id = "a"
prompt = "echo a"
depends_on = ["nope"]

[[task]]
id = "b"
agent = "ghost"
prompt = "echo b"
"""

OK = """
[[task]]
id = "ok"
prompt = "echo ok"
"""


async def expect_error(client: LanguageClient, error: type, method: str, params) -> str:
    with pytest.raises(error) as info:
        await request(client, method, params)
    return info.value.message


async def test_invalid_plan_names_every_problem_and_marks_the_document(client: LanguageClient, tmp_path):
    plan = write_plan(tmp_path, INVALID)
    await initialize(client, tmp_path)

    message = await expect_error(client, JsonRpcInvalidParams, "parex/run", {"plan": {"uri": plan.as_uri()}})

    assert f"{plan}:{line_of(plan, 'max_concurrency') + 1}:" in message
    assert f"{plan}:{line_of(plan, 'depends_on') + 1}:" in message and "nope" in message
    assert f"{plan}:{line_of(plan, 'ghost') + 1}:" in message and "ghost" in message
    diags = client.diagnostics[plan.as_uri()]
    assert sorted(d.range.start.line for d in diags) == sorted(
        line_of(plan, s) for s in ("max_concurrency", "depends_on", "ghost"))
    assert not (tmp_path / ".parex" / "runs").exists()  # nothing ran


async def test_wrong_types_unknown_uris_and_methods(client: LanguageClient, tmp_path):
    await initialize(client, tmp_path)

    message = await expect_error(client, JsonRpcInvalidParams, "parex/run", {
        "plan": 3, "maxConcurrency": "many", "isolation": "vm", "only": "a", "detach": "yes", "colour": 1})
    for field in ("`plan`", "maxConcurrency", "isolation", "only", "detach", "colour"):
        assert field in message

    message = await expect_error(client, JsonRpcInvalidParams, "parex/run",
                                 {"plan": {"uri": (tmp_path / "absent.parex.toml").as_uri()}})
    assert "unknown document" in message and "absent.parex.toml" in message

    message = await expect_error(client, JsonRpcInvalidParams, "parex/run", {"plan": {"tasks": [
        {"id": "x", "prompt": "echo"}, {"id": "x", "prompt": 5}]}})
    assert "duplicate" in message and "prompt" in message

    message = await expect_error(client, JsonRpcInvalidParams, "parex/run", {"plan": {"tasks": [
        {"id": "x", "prompt": "echo"}]}, "only": ["y"]})
    assert "y" in message

    await expect_error(client, JsonRpcInvalidParams, "parex/cancel", {"runId": "no-such-run"})
    await expect_error(client, JsonRpcInvalidParams, "parex/cancel", {"taskId": 7})
    await expect_error(client, JsonRpcInvalidParams, "parex/status", {"runId": "no-such-run"})
    await expect_error(client, JsonRpcInvalidParams, "workspace/executeCommand", types.ExecuteCommandParams(
        command="parex.showLog", arguments=[{"runId": "no-such-run", "taskId": "a"}]))
    await expect_error(client, JsonRpcInvalidParams, "workspace/executeCommand", types.ExecuteCommandParams(
        command="parex.retryTask", arguments=[{"runId": "no-such-run"}]))
    await expect_error(client, JsonRpcMethodNotFound, "parex/explode", {})

    # and the server still runs plans
    plan = write_plan(tmp_path, OK)
    result = await request(client, "parex/run", {"plan": {"uri": plan.as_uri()}})
    assert result["status"] == "succeeded"


async def test_a_plan_already_running_is_refused(client: LanguageClient, tmp_path):
    plan = write_plan(tmp_path, '[[task]]\nid = "slow"\nprompt = "sleep 30"\n')
    await initialize(client, tmp_path)
    answer = await request(client, "parex/run", {"plan": {"uri": plan.as_uri()}, "detach": True})

    with pytest.raises(JsonRpcException) as info:
        await request(client, "parex/run", {"plan": {"uri": plan.as_uri()}})
    assert info.value.code == -32803
    assert "already running" in info.value.message and answer["runId"] in info.value.message

    await request(client, "parex/cancel", {"runId": answer["runId"]})
    await wait_until(lambda: events(client, answer["runId"], kind="runFinished"), "runFinished")


async def test_two_runs_at_once_and_status(client: LanguageClient, tmp_path):
    one = write_plan(tmp_path, '[[task]]\nid = "one"\nprompt = "echo one; sleep 1"\n', "one.parex.toml")
    two = write_plan(tmp_path, '[[task]]\nid = "two"\nprompt = "echo two; sleep 1"\n', "two.parex.toml")
    await initialize(client, tmp_path)

    first = asyncio.ensure_future(request(client, "parex/run", {"plan": {"uri": one.as_uri()}}))
    id_one = await first_run_id(client)
    second = asyncio.ensure_future(request(client, "parex/run", {"plan": {"uri": two.as_uri()}}))
    id_two = await first_run_id(client, skip={id_one})
    await wait_until(lambda: len(events(client, kind="started")) == 2, "both tasks to start")

    status = await request(client, "parex/status", {})
    assert sorted((r["runId"], r["tasks"][0]["id"], r["tasks"][0]["status"]) for r in status["runs"]) == sorted(
        [(id_one, "one", "running"), (id_two, "two", "running")])
    assert (await request(client, "parex/status", {"runId": id_two}))["runs"][0]["plan"] == str(two)

    results = await asyncio.gather(first, second)
    assert [r["status"] for r in results] == ["succeeded", "succeeded"]
    assert {r["runId"] for r in results} == {id_one, id_two}


async def test_status_answers_while_fifty_tasks_run(client: LanguageClient, tmp_path):
    await initialize(client, tmp_path)
    tasks = [{"id": f"t{i}", "prompt": f"echo t{i}; sleep 30"} for i in range(50)]
    answer = await request(client, "parex/run", {"plan": {"tasks": tasks}, "maxConcurrency": 50, "detach": True})
    run_id = answer["runId"]
    await wait_until(lambda: len(events(client, run_id, kind="started")) == 50, "50 tasks to start")

    status = await request(client, "parex/status", {"runId": run_id})
    [run] = status["runs"]
    assert len(run["tasks"]) == 50 and {t["status"] for t in run["tasks"]} == {"running"}

    cancelled = await request(client, "parex/cancel", {"runId": run_id})
    assert len(cancelled["cancelled"]) == 50
    finished = await wait_until(lambda: events(client, run_id, kind="runFinished"), "runFinished")
    assert finished[0]["data"]["status"] == "cancelled"
