"""Model agents against servers that differ from OpenAI: keys with stray whitespace, redirects, plain JSON
answers, repeated tool names, object arguments, malformed chunks, truncation, limits, strict schemas."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from parex_lsp.agents.base import API_ERROR, SETUP_FAILED
from parex_lsp.agents.http_pool import open_clients
from parex_lsp.agents.openai_agent import OpenAIAgent, go_duration, retry_after_seconds
from tests.support.agent_helpers import Recorder, make_ctx, model, run
from tests.support.fake_openai import (
    FakeOpenAI,
    Received,
    Reply,
    by_prompt,
    chunk,
    completion,
    cut,
    error,
    text,
    tool_calls,
)

KEY = "sk-proj-Zq81LmX0aBcDeFgH"


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    d = tmp_path / "ws"
    (d / "src").mkdir(parents=True)
    return d


# -- keys ---------------------------------------------------------------------------------------------

async def test_a_key_with_windows_line_end_is_stripped_and_sent(tmp_path: Path, ws: Path):
    with FakeOpenAI([text("hi")]) as srv:
        agent = model(srv, api_key_env="PAREX_TEST_KEY")
        outcome = await run(make_ctx(tmp_path, ws, agent, Recorder(), env={"PAREX_TEST_KEY": f" {KEY}\r\n"}))
    assert outcome.ok, outcome.reason
    assert srv.received[0].headers["authorization"] == f"Bearer {KEY}"


@pytest.mark.parametrize("value", [f"{KEY}\x00x", f"sk-one\rtwo-{KEY}", f"{KEY}é", "   \r\n"])
async def test_an_unusable_key_fails_setup_naming_the_variable_never_the_value(tmp_path: Path, ws: Path, value: str):
    with FakeOpenAI([text("unused")]) as srv:
        agent = model(srv, api_key_env="PAREX_TEST_KEY")
        outcome = await run(make_ctx(tmp_path, ws, agent, Recorder(), env={"PAREX_TEST_KEY": value}))
    assert (outcome.ok, outcome.code, outcome.transient) == (False, SETUP_FAILED, False)
    assert "PAREX_TEST_KEY" in outcome.reason
    assert KEY not in outcome.reason and (not value.strip() or value.strip() not in outcome.reason)
    assert srv.requests == []


async def test_the_agent_env_table_holds_the_key_and_reaches_run_command(tmp_path: Path, ws: Path,
                                                                         monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("PAREX_TEST_KEY", raising=False)
    script = [tool_calls(("run_command", {"command": "printf %s \"$GREETING\""})), text("ok")]
    with FakeOpenAI(script) as srv:
        agent = model(srv, api_key_env="PAREX_TEST_KEY", allow_commands=True,
                      env={"PAREX_TEST_KEY": KEY, "GREETING": "from the agent env"})
        outcome = await run(make_ctx(tmp_path, ws, agent, Recorder()))
    assert outcome.ok, outcome.reason
    assert srv.received[0].headers["authorization"] == f"Bearer {KEY}"
    assert Received(srv.requests[1], {}).tool_results[0] == "exit code 0\nfrom the agent env"


async def test_error_bodies_and_urls_never_carry_secrets_into_the_reason(tmp_path: Path, ws: Path):
    echo = Reply(status=401, body={"error": {"message": f"Incorrect API key provided: {KEY}"}})
    with FakeOpenAI([echo]) as srv:
        agent = model(srv, api_key_env="PAREX_TEST_KEY")
        agent.base_url = srv.base_url.replace("http://", "http://admin:hunter2pw@")
        outcome = await run(make_ctx(tmp_path, ws, agent, Recorder(), env={"PAREX_TEST_KEY": KEY}))
    assert (outcome.ok, outcome.code) == (False, API_ERROR)
    assert KEY not in outcome.reason and outcome.reason.startswith("HTTP 401: Incorrect API key provided: ***")
    refused = model(srv)
    refused.base_url = "http://admin:hunter2pw@127.0.0.1:9/v1"  # port 9: nothing listens
    outcome = await run(make_ctx(tmp_path, ws, refused, Recorder(), task_id="t2"))
    assert outcome.transient and "hunter2pw" not in outcome.reason and "admin:***@127.0.0.1:9" in outcome.reason


# -- answers of other shapes -----------------------------------------------------------------------

async def test_a_redirect_is_a_configuration_error_naming_the_new_location(tmp_path: Path, ws: Path):
    moved = Reply(status=308, headers={"Location": "https://new.example/v1/chat/completions"}, body={})
    with FakeOpenAI([moved]) as srv:
        outcome = await run(make_ctx(tmp_path, ws, model(srv), Recorder()))
    assert (outcome.ok, outcome.code, outcome.transient) == (False, SETUP_FAILED, False)
    assert "https://new.example/v1/chat/completions" in outcome.reason and "base_url" in outcome.reason
    assert len(srv.requests) == 1


async def test_a_plain_json_answer_to_a_streaming_request_is_read_as_one(tmp_path: Path, ws: Path):
    call = {"id": "c1", "type": "function", "function": {"name": "write_file",
                                                         "arguments": {"path": "a.txt", "content": "A\n"}}}
    script = [completion(None, tool_calls=[call], finish="tool_calls"), completion("All done.", usage=(7, 3))]
    rec = Recorder()
    with FakeOpenAI(script) as srv:
        outcome = await run(make_ctx(tmp_path, ws, model(srv), rec))
    assert outcome.ok and outcome.answer == "All done."
    assert (ws / "a.txt").read_text() == "A\n"
    assert outcome.usage == {"promptTokens": 17, "completionTokens": 8}
    assert rec.output_lines("t1")[-1] == "All done."


def _tool_stream(fragments: list[dict[str, Any]]) -> Reply:
    events: list[dict[str, Any] | str] = [chunk({"role": "assistant"})]
    events += [chunk({"tool_calls": [f]}) for f in fragments]
    events += [chunk({}, "tool_calls"), "[DONE]"]
    return Reply(events=events, delay=0)


async def test_repeated_tool_names_and_object_arguments_are_read_correctly(tmp_path: Path, ws: Path):
    (ws / "f.txt").write_text("x\n")
    repeated = _tool_stream([
        {"index": 0, "id": "a", "function": {"name": "read_file", "arguments": '{"pa'}},
        {"index": 0, "function": {"name": "read_file", "arguments": 'th": "f.txt"}'}},
        {"index": 1, "id": "b", "function": {"name": "list_files", "arguments": {}}},
        {"index": 1, "function": {"name": "list_files"}},
    ])
    with FakeOpenAI([repeated, text("seen")]) as srv:
        outcome = await run(make_ctx(tmp_path, ws, model(srv), Recorder()))
    assert outcome.ok
    follow = Received(srv.requests[1], {})
    calls = next(m for m in follow.messages if m["role"] == "assistant")["tool_calls"]
    assert [c["function"] for c in calls] == [{"name": "read_file", "arguments": '{"path": "f.txt"}'},
                                              {"name": "list_files", "arguments": "{}"}]
    assert follow.tool_results == ["x\n", "f.txt"]


@pytest.mark.parametrize(("event", "field"), [
    ([1, 2], "a stream chunk is a list"),
    ({"choices": "oops"}, "`choices` is a string"),
    ({"choices": [{"delta": {"content": 42}}]}, "`choices[].delta.content` is a number"),
    ({"choices": [{"delta": {"tool_calls": {"index": 0}}}]}, "`delta.tool_calls` is an object"),
    ({"choices": [], "usage": {"prompt_tokens": "many"}}, "`usage.prompt_tokens` is a string"),
])
async def test_wrong_shaped_chunks_are_a_protocol_error_naming_the_field(tmp_path: Path, ws: Path, event: Any,
                                                                         field: str):
    with FakeOpenAI([Reply(events=[event, "[DONE]"], delay=0)]) as srv:
        outcome = await run(make_ctx(tmp_path, ws, model(srv), Recorder()))
    assert (outcome.ok, outcome.code, outcome.transient) == (False, API_ERROR, False)
    assert outcome.reason.startswith("protocol error: ") and field in outcome.reason


async def test_a_truncated_answer_warns_or_fails_as_configured(tmp_path: Path, ws: Path):
    def cut_short() -> Reply:
        return Reply(events=[chunk({"content": "half an ans"}), chunk({}, "length"), "[DONE]"], delay=0)

    rec = Recorder()
    with FakeOpenAI([cut_short()]) as srv:
        outcome = await run(make_ctx(tmp_path, ws, model(srv), rec))
    assert outcome.ok and outcome.answer == "half an ans"
    assert outcome.warnings == [w for w in rec.of_kind("t1", "warning")] and outcome.warnings[0]["reason"] == "truncated"
    assert any("warning: the model's answer was cut" in ln for ln in rec.output_lines("t1"))
    with FakeOpenAI([cut_short()]) as srv:
        agent = model(srv)
        agent.extra["on_truncated"] = "fail"
        outcome = await run(make_ctx(tmp_path, ws, agent, Recorder(), task_id="t2"))
    assert (outcome.ok, outcome.code, outcome.transient) == (False, API_ERROR, False)
    assert "length limit" in outcome.reason
    agent.extra["on_truncated"] = "ignore"
    outcome = await run(make_ctx(tmp_path, ws, agent, Recorder(), task_id="t3"))
    assert outcome.code == SETUP_FAILED and "`on_truncated` must be" in outcome.reason


# -- limits ----------------------------------------------------------------------------------------

async def test_endless_keepalive_comments_do_not_defeat_request_timeout(tmp_path: Path, ws: Path):
    with FakeOpenAI([Reply(events=[], keepalive_for=5.0)]) as srv:
        agent = model(srv)
        agent.extra["request_timeout"] = 0.5
        started = time.monotonic()
        outcome = await run(make_ctx(tmp_path, ws, agent, Recorder()))
    assert time.monotonic() - started < 3
    assert (outcome.ok, outcome.transient) == (False, True)
    assert "request_timeout=0.5s" in outcome.reason


async def test_response_size_and_line_length_are_capped(tmp_path: Path, ws: Path):
    big = text(["x" * 1000] * 50, usage=None)
    big.delay = 0
    with FakeOpenAI([big]) as srv:
        agent = model(srv)
        agent.extra["max_response_bytes"] = 20_000
        outcome = await run(make_ctx(tmp_path, ws, agent, Recorder()))
    assert (outcome.ok, outcome.transient) == (False, False) and "max_response_bytes" in outcome.reason
    with FakeOpenAI([text(["y" * 5000], usage=None)]) as srv:
        agent = model(srv)
        agent.extra["max_line_bytes"] = 4096
        outcome = await run(make_ctx(tmp_path, ws, agent, Recorder(), task_id="t2"))
    assert (outcome.ok, outcome.transient) == (False, False) and "max_line_bytes" in outcome.reason


# -- requests for stricter servers -------------------------------------------------------------------

@pytest.mark.parametrize(("option", "expected"), [(None, ""), ("empty", ""), ("null", None), ("omit", "absent")])
async def test_assistant_tool_call_messages_send_content_as_configured(tmp_path: Path, ws: Path,
                                                                       option: str | None, expected: Any):
    with FakeOpenAI([tool_calls(("list_files", {})), text("ok")]) as srv:
        agent = model(srv)
        if option:
            agent.extra["tool_call_content"] = option
        assert (await run(make_ctx(tmp_path, ws, agent, Recorder()))).ok
    assistant = next(m for m in srv.requests[1]["messages"] if m["role"] == "assistant")
    assert assistant.get("content", "absent") == expected


async def test_tool_schemas_are_draft04_valid_and_strict_on_request(tmp_path: Path, ws: Path):
    with FakeOpenAI([text("ok"), tool_calls(("list_files", {"path": None})), text("ok")]) as srv:
        assert (await run(make_ctx(tmp_path, ws, model(srv, allow_commands=True), Recorder()))).ok
        agent = model(srv, allow_commands=True)
        agent.extra["strict_tools"] = True
        assert (await run(make_ctx(tmp_path, ws, agent, Recorder(), task_id="t2"))).ok
    for tool in srv.requests[0]["tools"]:
        params = tool["function"]["parameters"]
        assert params.get("required", ["x"]) != []  # draft-04: `required` is absent or non-empty
        assert "strict" not in tool["function"]
    for tool in srv.requests[1]["tools"]:
        fn, params = tool["function"], tool["function"]["parameters"]
        assert fn["strict"] is True and params["additionalProperties"] is False
        assert sorted(params["required"]) == sorted(params["properties"])
    assert Received(srv.requests[2], {}).tool_results == ["(no files)"]  # null path: the default "."


# -- the HTTP client -----------------------------------------------------------------------------

async def test_one_client_per_agent_keeps_connections_alive_across_calls_and_tasks(tmp_path: Path, ws: Path):
    conversations = {"task A": [tool_calls(("list_files", {})), text("a")],
                     "task B": [tool_calls(("list_files", {})), text("b")]}
    with FakeOpenAI(by_prompt(conversations)) as srv:
        ctxs = [make_ctx(tmp_path, ws, model(srv), Recorder(), tid, prompt=f"task {tid.upper()}") for tid in "ab"]
        async with anyio.create_task_group() as tg:
            for ctx in ctxs:
                tg.start_soon(run, ctx)
            await anyio.sleep(0)
    assert open_clients() == 0  # closed by its last user
    ports = {r.peer[1] for r in srv.received}
    assert len(srv.received) == 4 and len(ports) <= 2  # the second call of each task reused a connection


# -- usage over attempts and Retry-After -------------------------------------------------------------

async def test_each_attempt_reports_its_own_usage_even_when_it_fails(tmp_path: Path, ws: Path):
    # the engine sums a task's attempts (see test_usage_of_failed_attempts_is_summed_per_task_per_agent_and_per_run)
    script = [tool_calls(("list_files", {}), usage=(100, 10)), cut(["partial"], after=1),
              text("done", usage=(5, 5))]
    with FakeOpenAI(script) as srv:
        agent = OpenAIAgent()
        first = await agent.run(make_ctx(tmp_path, ws, model(srv), Recorder()))
        second = await agent.run(make_ctx(tmp_path, ws, model(srv), Recorder(), task_id="t1b"))
    assert not first.ok and first.transient and first.usage == {"promptTokens": 100, "completionTokens": 10}
    assert second.ok and second.usage == {"promptTokens": 5, "completionTokens": 5}


def test_retry_after_from_proxies_and_openai_reset_durations():
    assert retry_after_seconds(httpx.Headers({"llm_provider-retry-after": "3"})) == 3.0
    assert retry_after_seconds(httpx.Headers({"x-ratelimit-reset-requests": "6m0s",
                                              "x-ratelimit-remaining-requests": "0",
                                              "x-ratelimit-reset-tokens": "20ms",
                                              "x-ratelimit-remaining-tokens": "12000"})) == 360.0
    assert retry_after_seconds(httpx.Headers({"x-ratelimit-reset-tokens": "1s",
                                              "x-ratelimit-reset-requests": "20ms"})) == 1.0
    assert retry_after_seconds(httpx.Headers({"retry-after": "2", "x-ratelimit-reset-tokens": "9s"})) == 2.0
    assert [go_duration(v) for v in ("1s", "6m0s", "20ms", "1h2m3.5s", "1.5", "soon", "5x")] == [
        1.0, 360.0, 0.02, 3723.5, 1.5, None, None]


async def test_a_rate_limit_with_reset_headers_is_transient_with_that_wait(tmp_path: Path, ws: Path):
    limited = error(429, "Rate limit", headers={"x-ratelimit-reset-tokens": "1.5s", "x-ratelimit-remaining-tokens": "0"})
    with FakeOpenAI([limited]) as srv:
        outcome = await run(make_ctx(tmp_path, ws, model(srv), Recorder()))
    assert (outcome.transient, outcome.retry_after) == (True, 1.5)


def test_plain_json_in_the_fake_server_is_json():
    assert json.loads(json.dumps(completion("x").body))["choices"][0]["message"]["content"] == "x"


def test_the_new_agent_options_are_read_from_a_plan(tmp_path: Path):
    from parex_lsp.plan import plan_from_text

    toml = ('[agents.m]\nbase_url = "http://127.0.0.1:1/v1"\nmodel = "x"\non_truncated = "fail"\n'
            'tool_call_content = "omit"\nstrict_tools = true\nmax_response_bytes = 1000\nmax_line_bytes = 100\n'
            '[[task]]\nid = "t"\nagent = "m"\nprompt = "p"\n')
    extra = plan_from_text(toml, str(tmp_path / "parex.toml"), tmp_path).agents["m"].extra
    assert extra == {"on_truncated": "fail", "tool_call_content": "omit", "strict_tools": True,
                     "max_response_bytes": 1000, "max_line_bytes": 100}


async def test_usage_of_failed_attempts_is_summed_per_task_per_agent_and_per_run(workspace: Path):
    from parex_lsp.engine import Run
    from parex_lsp.plan import plan_from_text

    conversations = {"first": [tool_calls(("list_files", {}), usage=(100, 10)), error(500, "server error"),
                               text("one", usage=(1, 1))],
                     "second": [text("two", usage=(20, 2))], "third": [text("three", usage=(300, 30))]}

    def route(req: Received) -> Reply:
        # the retried attempt of "first" starts its conversation again: count its requests, not its turns
        key = next(k for k in conversations if k in req.prompt)
        done = sum(1 for r in srv.received if key in r.prompt) - 1
        return conversations[key][min(done, len(conversations[key]) - 1)]

    with FakeOpenAI(route) as srv:
        toml = (f'[run]\nretry_backoff = 0.01\n[agents.a]\nbase_url = "{srv.base_url}"\nmodel = "m"\n'
                f'[agents.b]\nbase_url = "{srv.base_url}"\nmodel = "m"\n'
                '[[task]]\nid = "t1"\nagent = "a"\nprompt = "first"\nretries = 1\n'
                '[[task]]\nid = "t2"\nagent = "a"\nprompt = "second"\n'
                '[[task]]\nid = "t3"\nagent = "b"\nprompt = "third"\n')
        result = await (await Run.prepare(plan_from_text(toml, str(workspace / "parex.toml"), workspace))).execute()
    t1 = result.tasks[0]
    assert (t1.status, t1.attempts, t1.answer) == ("succeeded", 2, "one")
    assert t1.usage == {"promptTokens": 101, "completionTokens": 11}  # the failed attempt's call counts
    wire = result.to_wire()
    assert wire["usage"] == {"promptTokens": 421, "completionTokens": 43}
    assert wire["usageByAgent"] == {"a": {"promptTokens": 121, "completionTokens": 13},
                                    "b": {"promptTokens": 300, "completionTokens": 30}}


def test_an_answer_is_collected_in_linear_time():
    from parex_lsp.agents.openai_stream import Completion

    reply, piece = Completion(), "x" * 63 + "\n"
    started = time.monotonic()
    for _ in range(64_000):  # 4 MB in 64-character deltas: copying the whole text per delta takes many seconds
        reply.add_text(piece)
    assert time.monotonic() - started < 1.5 and len(reply.content) == 64 * 64_000


async def test_a_long_answer_streamed_in_tiny_deltas_arrives_whole(tmp_path: Path, ws: Path):
    from tests.bench.bench_models import long_answer

    body, raw = long_answer(1_000_000)
    with FakeOpenAI([Reply(raw=raw)]) as srv:
        outcome = await run(make_ctx(tmp_path, ws, model(srv), Recorder()))
    assert outcome.ok and outcome.answer == body
    assert (tmp_path / "logs" / "t1.log").read_text() == body + ("" if body.endswith("\n") else "\n")
