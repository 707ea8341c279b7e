"""The model agent against a real local HTTP server speaking the chat-completions streaming format."""

from __future__ import annotations

import email.utils
import json
import socket
import threading
import time
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from parex_lsp.agents.base import API_ERROR, LOCK_TIMEOUT, SETUP_FAILED, AgentContext, Outcome
from parex_lsp.agents.openai_agent import retry_after_seconds
from parex_lsp.agents.sse import sse_data
from parex_lsp.isolation.registry import LockOwner
from parex_lsp.isolation.table import WorkspaceLocks
from parex_lsp.plan.model import AgentSpec
from tests.support.agent_helpers import RUN_ID, Recorder, RecordingOutput, make_ctx, model, run  # noqa: F401
from tests.support.fake_openai import FakeOpenAI, Received, Reply, by_prompt, cut, error, rate_limited, text, tool_calls


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    d = tmp_path / "ws"
    (d / "src").mkdir(parents=True)
    return d


def both_in_flight(replies: dict[str, list[Reply]]) -> Any:
    """A handler that holds each first request until the other task's first request arrived too, so the
    two calls provably overlap."""
    barrier = threading.Barrier(len(replies), timeout=10)
    route = by_prompt(replies)

    def handle(req: Received) -> Reply:
        if req.assistant_turns == 0:
            barrier.wait()
        return route(req)

    return handle


# -- streaming -------------------------------------------------------------------------------------

async def test_concurrent_streams_arrive_in_order_each_attributed_to_its_own_task(tmp_path: Path, ws: Path):
    alpha = [f"alpha line {i}\n" for i in range(5)]
    beta = [f"beta line {i}\n" for i in range(5)]
    rec = Recorder()
    # Deltas further apart than the screen's coalescing interval are each written as they come.
    with FakeOpenAI(both_in_flight({"task A": [text(alpha, delay=0.08)], "task B": [text(beta, delay=0.08)]})) as srv:
        ctx_a = make_ctx(tmp_path, ws, model(srv), rec, "a", prompt="task A")
        ctx_b = make_ctx(tmp_path, ws, model(srv), rec, "b", prompt="task B")
        results: dict[str, Outcome] = {}

        async def go(ctx: AgentContext) -> None:
            results[ctx.task.id] = await run(ctx)

        async with anyio.create_task_group() as tg:
            tg.start_soon(go, ctx_a)
            tg.start_soon(go, ctx_b)

    assert srv.max_in_flight == 2
    assert results["a"].ok and results["b"].ok
    assert rec.output_lines("a") == [ln.rstrip("\n") for ln in alpha]
    assert rec.output_lines("b") == [ln.rstrip("\n") for ln in beta]
    assert ctx_a.output.writes == alpha  # each delta written as it came, not buffered into one piece
    assert results["a"].answer == "".join(alpha)
    assert (tmp_path / "logs" / "b.log").read_text() == "".join(beta)


async def test_fast_deltas_are_written_together_and_none_is_lost(tmp_path: Path, ws: Path):
    pieces = [f"piece {i} " for i in range(200)]
    rec = Recorder()
    with FakeOpenAI([text(pieces, delay=0.001)]) as srv:
        ctx = make_ctx(tmp_path, ws, model(srv), rec)
        outcome = await run(ctx)
    assert outcome.answer == "".join(pieces)
    assert "".join(ctx.output.writes) == "".join(pieces) + "\n"
    assert 2 <= len(ctx.output.writes) < 50  # shown while streaming, but not one write per delta


async def test_request_is_a_streaming_chat_completion_with_file_tools(tmp_path: Path, ws: Path):
    rec = Recorder()
    with FakeOpenAI([text("Nothing to do.")]) as srv:
        outcome = await run(make_ctx(tmp_path, ws, model(srv), rec, prompt="tidy up"))
    body = srv.requests[0]
    assert outcome.ok and outcome.answer == "Nothing to do."
    assert body["model"] == "fake-coder" and body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}
    assert [m["role"] for m in body["messages"]] == ["system", "user"]
    assert body["messages"][1]["content"] == "tidy up"
    names = [t["function"]["name"] for t in body["tools"]]
    assert names == ["read_file", "write_file", "edit_file", "list_files"]  # no run_command unless allowed


# -- tools -----------------------------------------------------------------------------------------

async def test_tool_conversation_reads_then_edits_a_file(tmp_path: Path, ws: Path):
    (ws / "src" / "a.py").write_text("def old_name():\n    return 1\n")
    script = [
        tool_calls(("read_file", {"path": "src/a.py"}), content="Let me look."),
        tool_calls(("edit_file", {"path": "src/a.py", "search": "def old_name", "replace": "def new_name"})),
        text("Renamed old_name to new_name."),
    ]
    rec = Recorder()
    with FakeOpenAI(script) as srv:
        outcome = await run(make_ctx(tmp_path, ws, model(srv), rec))

    assert outcome.ok, outcome.reason
    assert outcome.answer == "Renamed old_name to new_name."
    assert (ws / "src" / "a.py").read_text() == "def new_name():\n    return 1\n"
    second = Received(srv.requests[1], {})
    assert second.tool_results == ["def old_name():\n    return 1\n"]
    assistant = next(m for m in second.messages if m["role"] == "assistant")
    assert assistant["tool_calls"][0]["function"] == {"name": "read_file", "arguments": '{"path": "src/a.py"}'}
    assert second.messages[-1]["tool_call_id"] == assistant["tool_calls"][0]["id"]
    assert Received(srv.requests[2], {}).tool_results[-1] == "edited src/a.py"
    lines = rec.output_lines("t1")
    assert lines == ["Let me look.", "→ read_file src/a.py", "→ edit_file src/a.py", "Renamed old_name to new_name."]


async def test_edit_with_absent_or_ambiguous_search_text_is_a_tool_error(tmp_path: Path, ws: Path):
    original = "x = 1\nx = 1\n"
    (ws / "b.py").write_text(original)
    script = [
        tool_calls(("edit_file", {"path": "b.py", "search": "y = 2", "replace": "y = 3"})),
        tool_calls(("edit_file", {"path": "b.py", "search": "x = 1", "replace": "x = 2"})),
        tool_calls(("write_file", {"path": "new/dir/c.py", "content": "c = 3\n"}), ("list_files", {})),
        text("done"),
    ]
    rec = Recorder()
    with FakeOpenAI(script) as srv:
        outcome = await run(make_ctx(tmp_path, ws, model(srv), rec))

    assert outcome.ok
    assert (ws / "b.py").read_text() == original
    absent = Received(srv.requests[1], {}).tool_results[-1]
    ambiguous = Received(srv.requests[2], {}).tool_results[-1]
    assert absent.startswith("error:") and "not found" in absent
    assert ambiguous.startswith("error:") and "2 times" in ambiguous
    wrote, listing = Received(srv.requests[3], {}).tool_results[-2:]
    assert (ws / "new" / "dir" / "c.py").read_text() == "c = 3\n"
    assert wrote == "wrote new/dir/c.py (6 characters)"
    assert listing.splitlines() == ["b.py", "new/dir/c.py"]
    assert "  error: the search text was not found in `b.py`; read the file and copy it exactly" in rec.output_lines("t1")


async def test_paths_outside_the_workdir_are_refused_and_the_task_goes_on(tmp_path: Path, ws: Path):
    outside = tmp_path / "outside"
    outside.mkdir()
    secret = outside / "secret.txt"
    secret.write_text("keep me\n")
    (ws / "link").symlink_to(outside, target_is_directory=True)
    script = [
        tool_calls(("write_file", {"path": "../outside/secret.txt", "content": "pwned"})),
        tool_calls(("edit_file", {"path": str(secret), "search": "keep", "replace": "lose"})),
        tool_calls(("write_file", {"path": "link/secret.txt", "content": "pwned"})),
        tool_calls(("read_file", {"path": "link/secret.txt"})),
        text("I stayed inside."),
    ]
    rec = Recorder()
    with FakeOpenAI(script) as srv:
        outcome = await run(make_ctx(tmp_path, ws, model(srv), rec))

    assert outcome.ok and outcome.answer == "I stayed inside."
    assert secret.read_text() == "keep me\n"
    results = [Received(srv.requests[i], {}).tool_results[-1] for i in range(1, 5)]
    for result in results:
        assert result.startswith("error:") and "outside the working directory" in result
    assert sorted(p.name for p in ws.iterdir()) == ["link", "src"]


async def test_run_command_is_offered_only_when_allowed(tmp_path: Path, ws: Path):
    script = [tool_calls(("run_command", {"command": "echo hi > made.txt"})), text("ok")]
    rec = Recorder()
    with FakeOpenAI(script) as srv:
        await run(make_ctx(tmp_path, ws, model(srv), rec))
    assert not (ws / "made.txt").exists()
    assert Received(srv.requests[1], {}).tool_results[0].startswith("error: unknown tool `run_command`")

    script = [tool_calls(("run_command", {"command": "echo hi > made.txt; echo to-out; echo to-err >&2; exit 3"})),
              text("ok")]
    with FakeOpenAI(script) as srv:
        outcome = await run(make_ctx(tmp_path, ws, model(srv, allow_commands=True), rec, task_id="t2"))
    assert outcome.ok
    assert "run_command" in [t["function"]["name"] for t in srv.requests[0]["tools"]]
    assert (ws / "made.txt").read_text() == "hi\n"
    assert Received(srv.requests[1], {}).tool_results[0] == "exit code 3\nto-out\nto-err\n"
    assert "→ run_command echo hi > made.txt; echo to-out; echo to-err >&2; exit 3" in rec.output_lines("t2")


async def test_run_command_timeout_ends_the_command(tmp_path: Path, ws: Path):
    script = [tool_calls(("run_command", {"command": "sleep 30 & wait"})), text("gave up")]
    rec = Recorder()
    with FakeOpenAI(script) as srv:
        agent_spec = model(srv, allow_commands=True)
        agent_spec.extra["command_timeout"] = 0.3
        outcome = await run(make_ctx(tmp_path, ws, agent_spec, rec))
    assert outcome.ok
    assert Received(srv.requests[1], {}).tool_results[0].startswith("timed out after 0.3s")


# -- locks -----------------------------------------------------------------------------------------

async def test_a_write_waits_for_the_files_lock_held_by_another_task(tmp_path: Path, ws: Path):
    shared = ws / "src" / "shared.py"
    shared.write_text("a = 1\nb = 1\n")
    locks = WorkspaceLocks(ws)
    rec = Recorder()
    lock_wait = anyio.Event()
    script = [tool_calls(("edit_file", {"path": "src/shared.py", "search": "b = 1", "replace": "b = 2"})), text("ok")]
    with FakeOpenAI(script) as srv:
        ctx = make_ctx(tmp_path, ws, model(srv), rec, locks=locks)
        report = ctx.on_lock_wait
        assert report is not None

        def watch(key: str, owner: LockOwner) -> None:
            report(key, owner)
            lock_wait.set()

        ctx.on_lock_wait = watch
        result: list[Outcome] = []
        async with anyio.create_task_group() as tg:
            async with locks.hold(RUN_ID, "other", ["src/shared.py"]):
                tg.start_soon(lambda: _append(result, run(ctx)))
                with anyio.fail_after(10):  # a write that does not wait for the lock never reports a wait
                    await lock_wait.wait()
                assert shared.read_text() == "a = 1\nb = 1\n"  # the agent is waiting, not writing
                shared.write_text("a = 2\nb = 1\n")  # the holder's own edit
    assert result[0].ok, result[0].reason
    assert shared.read_text() == "a = 2\nb = 2\n"
    waits = rec.of_kind("t1", "lockWait")
    assert waits[0]["path"] == "src/shared.py" and waits[0]["holder"]["taskId"] == "other"
    assert locks.holders() == {}


async def _append(into: list[Outcome], coro: Any) -> None:
    into.append(await coro)


async def test_two_tasks_editing_one_file_concurrently_keep_both_edits(tmp_path: Path, ws: Path):
    shared = ws / "src" / "shared.py"
    lines = [f"value_{i} = 0\n" for i in range(6)]
    shared.write_text("".join(lines))

    def edits(task: str, rows: range) -> list[Reply]:
        steps = [tool_calls(("edit_file", {"path": "src/shared.py", "search": f"value_{i} = 0",
                                           "replace": f"value_{i} = '{task}'"})) for i in rows]
        return steps + [text(f"{task} done")]

    locks = WorkspaceLocks(ws)
    rec = Recorder()
    with FakeOpenAI(both_in_flight({"task A": edits("A", range(0, 3)), "task B": edits("B", range(3, 6))})) as srv:
        ctx_a = make_ctx(tmp_path, ws, model(srv), rec, "a", prompt="task A", locks=locks)
        ctx_b = make_ctx(tmp_path, ws, model(srv), rec, "b", prompt="task B", locks=locks)
        results: list[Outcome] = []
        async with anyio.create_task_group() as tg:
            tg.start_soon(_append, results, run(ctx_a))
            tg.start_soon(_append, results, run(ctx_b))

    assert all(r.ok for r in results), [r.reason for r in results]
    assert shared.read_text() == "".join(f"value_{i} = '{'A' if i < 3 else 'B'}'\n" for i in range(6))
    assert locks.holders() == {}


async def test_a_lock_not_granted_in_time_fails_the_task_with_lock_timeout(tmp_path: Path, ws: Path):
    (ws / "f.txt").write_text("x")
    locks = WorkspaceLocks(ws)
    rec = Recorder()
    with FakeOpenAI([tool_calls(("write_file", {"path": "f.txt", "content": "y"})), text("ok")]) as srv:
        ctx = make_ctx(tmp_path, ws, model(srv), rec, locks=locks)
        ctx.task.lock_timeout = 0.2
        async with locks.hold(RUN_ID, "other", ["f.txt"]):
            outcome = await run(ctx)
    assert not outcome.ok and outcome.code == LOCK_TIMEOUT
    assert "f.txt is locked by task other" in outcome.reason
    assert (ws / "f.txt").read_text() == "x"


# -- API errors ------------------------------------------------------------------------------------

async def test_rate_limit_is_transient_with_retry_after(tmp_path: Path, ws: Path):
    with FakeOpenAI([rate_limited(retry_after=7, message="Rate limit reached for gpt-x")]) as srv:
        outcome = await run(make_ctx(tmp_path, ws, model(srv), Recorder()))
    assert (outcome.ok, outcome.transient, outcome.code, outcome.retry_after) == (False, True, API_ERROR, 7.0)
    assert outcome.reason == "HTTP 429: Rate limit reached for gpt-x"


async def test_server_error_is_transient(tmp_path: Path, ws: Path):
    with FakeOpenAI([error(503, "The server is overloaded", type="server_error")]) as srv:
        outcome = await run(make_ctx(tmp_path, ws, model(srv), Recorder()))
    assert (outcome.ok, outcome.transient, outcome.retry_after) == (False, True, None)
    assert outcome.reason == "HTTP 503: The server is overloaded"


async def test_bad_request_is_permanent_with_the_apis_own_message(tmp_path: Path, ws: Path):
    message = "Unsupported value: 'tools' is not supported with this model."
    with FakeOpenAI([error(400, message)]) as srv:
        outcome = await run(make_ctx(tmp_path, ws, model(srv), Recorder()))
    assert (outcome.ok, outcome.transient, outcome.code) == (False, False, API_ERROR)
    assert outcome.reason == f"HTTP 400: {message}"


async def test_a_stream_cut_midway_is_transient_and_keeps_what_was_shown(tmp_path: Path, ws: Path):
    rec = Recorder()
    with FakeOpenAI([cut(["first line\n", "second line\n", "never sent\n"], after=3)]) as srv:
        outcome = await run(make_ctx(tmp_path, ws, model(srv), rec))
    assert (outcome.ok, outcome.transient, outcome.code) == (False, True, API_ERROR)
    assert rec.output_lines("t1") == ["first line", "second line"]


async def test_a_refused_connection_is_transient(tmp_path: Path, ws: Path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    agent = AgentSpec(name="local", kind="openai", base_url=f"http://127.0.0.1:{port}/v1", model="m")
    outcome = await run(make_ctx(tmp_path, ws, agent, Recorder()))
    assert (outcome.ok, outcome.transient, outcome.code) == (False, True, API_ERROR)
    assert "connection" in outcome.reason


async def test_a_missing_api_key_variable_is_a_permanent_failure_naming_it(tmp_path: Path, ws: Path,
                                                                         monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("PAREX_TEST_MODEL_KEY", raising=False)
    with FakeOpenAI([text("unused")]) as srv:
        outcome = await run(make_ctx(tmp_path, ws, model(srv, api_key_env="PAREX_TEST_MODEL_KEY"), Recorder()))
    assert (outcome.ok, outcome.transient, outcome.code) == (False, False, SETUP_FAILED)
    assert "PAREX_TEST_MODEL_KEY" in outcome.reason
    assert srv.requests == []


async def test_the_api_key_is_sent_as_a_bearer_token(tmp_path: Path, ws: Path):
    with FakeOpenAI([text("hi")]) as srv:
        agent = model(srv, api_key_env="PAREX_TEST_MODEL_KEY")
        outcome = await run(make_ctx(tmp_path, ws, agent, Recorder(), env={"PAREX_TEST_MODEL_KEY": "sk-test-123"}))
    assert outcome.ok
    assert srv.received[0].headers["authorization"] == "Bearer sk-test-123"


# -- limits and usage ------------------------------------------------------------------------------

async def test_max_steps_bounds_the_tool_loop(tmp_path: Path, ws: Path):
    with FakeOpenAI(lambda req: tool_calls(("list_files", {}))) as srv:
        outcome = await run(make_ctx(tmp_path, ws, model(srv, max_steps=3), Recorder()))
    assert not outcome.ok and not outcome.transient
    assert "max_steps=3" in outcome.reason
    assert len(srv.requests) == 3


async def test_usage_is_summed_over_the_tool_loop_with_cost(tmp_path: Path, ws: Path):
    script = [tool_calls(("list_files", {}), usage=(1000, 200)), text("done", usage=(1500, 300))]
    rec = Recorder()
    with FakeOpenAI(script) as srv:
        outcome = await run(make_ctx(tmp_path, ws, model(srv, prices={"input": 2.0, "output": 10.0}), rec))
    assert outcome.ok
    assert outcome.usage == {"promptTokens": 2500, "completionTokens": 500, "costUsd": 0.01}
    assert rec.of_kind("t1", "usage") == [{"promptTokens": 1000, "completionTokens": 200, "costUsd": 0.004},
                                          outcome.usage]


async def test_usage_has_no_cost_without_prices(tmp_path: Path, ws: Path):
    with FakeOpenAI([text("done", usage=(10, 4))]) as srv:
        outcome = await run(make_ctx(tmp_path, ws, model(srv), Recorder()))
    assert outcome.usage == {"promptTokens": 10, "completionTokens": 4}


async def test_the_fake_server_reports_an_unscripted_request(tmp_path: Path, ws: Path):
    with FakeOpenAI([tool_calls(("list_files", {}))]) as srv:
        outcome = await run(make_ctx(tmp_path, ws, model(srv), Recorder()))
    assert not outcome.ok and not outcome.transient
    assert "no reply scripted for request #2" in outcome.reason
    assert json.loads(json.dumps(srv.requests))  # bodies are plain JSON, reusable by other tests


# -- protocol details ------------------------------------------------------------------------------

async def test_sse_events_skip_comments_and_join_multi_line_data():
    async def lines():
        for line in [": keep-alive", "", "event: message", "data: {\"a\":", "data: 1}", "", "id: 7",
                     "data:[DONE]", ""]:
            yield line

    assert [d async for d in sse_data(lines())] == ['{"a":\n1}', "[DONE]"]


def test_retry_after_in_milliseconds_seconds_or_as_a_date():
    assert retry_after_seconds(httpx.Headers({"retry-after-ms": "1500", "retry-after": "9"})) == 1.5
    assert retry_after_seconds(httpx.Headers({"retry-after": "12"})) == 12.0
    later = email.utils.formatdate(time.time() + 120, usegmt=True)
    assert 100 < retry_after_seconds(httpx.Headers({"retry-after": later})) <= 120
    assert retry_after_seconds(httpx.Headers({"retry-after": "soon"})) is None
    assert retry_after_seconds(httpx.Headers({})) is None
