"""Model agents through the whole engine, against a local OpenAI-compatible server on 127.0.0.1:
per-agent limits, Retry-After honoured by the engine's retries, and `callN:` fan-out answers."""

from __future__ import annotations

import json
from pathlib import Path

from parex_lsp.engine import Run
from parex_lsp.plan import plan_from_calls, plan_from_text
from tests.support.engine_helpers import Recorder
from tests.support.fake_openai import FakeOpenAI, by_prompt, rate_limited, text


def model_plan(workspace: Path, base_url: str, tasks: str, run: str = "", agent: str = "") -> str:
    toml = (f'[run]\nretry_backoff = 0.05\ndefault_agent = "local"\n{run}\n'
            f'[agents.local]\nkind = "openai"\nbase_url = "{base_url}"\nmodel = "fake"\n{agent}\n'
            f'prices = {{ input = 1.0, output = 2.0 }}\n{tasks}')
    (workspace / "parex.toml").write_text(toml)
    return toml


async def test_per_agent_limit_caps_requests_in_flight(workspace: Path):
    with FakeOpenAI(lambda req: text(["Answer ", "to ", req.prompt], delay=0.05)) as srv:
        tasks = "".join(f'[[task]]\nid = "q{i}"\nprompt = "question {i}"\n' for i in range(6))
        toml = model_plan(workspace, srv.base_url, tasks, run="max_concurrency = 6", agent="max_concurrency = 2")
        run = await Run.prepare(plan_from_text(toml, str(workspace / "parex.toml"), workspace))
        result = await run.execute()
    assert result.status == "succeeded"
    assert srv.max_in_flight == 2
    answers = {t.id: t.answer for t in result.tasks}
    assert answers == {f"q{i}": f"Answer to question {i}" for i in range(6)}
    assert result.usage["promptTokens"] == 60 and result.usage["completionTokens"] == 30
    assert result.to_wire()["usage"]["costUsd"] > 0


async def test_rate_limit_is_waited_out_in_the_agents_cooldown_without_spending_an_attempt(workspace: Path):
    with FakeOpenAI([rate_limited(retry_after=0.4), text("done")]) as srv:
        toml = model_plan(workspace, srv.base_url, '[[task]]\nid = "t"\nprompt = "go"\nretries = 0\n')
        rec = Recorder()
        run = await Run.prepare(plan_from_text(toml, str(workspace / "parex.toml"), workspace), sinks=[rec])
        result = await run.execute()
    t = result.tasks[0]
    assert (t.status, t.attempts, t.answer) == ("succeeded", 1, "done")
    assert not rec.of("retrying")
    cooldown = rec.of("cooldown")[0]
    assert cooldown.task_id is None and cooldown.data.agent == "local"
    assert cooldown.data.until - cooldown.ts >= 0.39 and "429" in cooldown.data.reason
    assert srv.received[1].at - srv.received[0].at >= 0.39  # the request was sent again once it had passed


async def test_without_the_cooldown_a_rate_limit_is_retried_after_the_time_the_server_asked(workspace: Path):
    with FakeOpenAI([rate_limited(retry_after=0.4), text("done")]) as srv:
        toml = model_plan(workspace, srv.base_url, '[[task]]\nid = "t"\nprompt = "go"\nretries = 2\n',
                          run="rate_limit_wait_max = 0")
        rec = Recorder()
        run = await Run.prepare(plan_from_text(toml, str(workspace / "parex.toml"), workspace), sinks=[rec])
        result = await run.execute()
    t = result.tasks[0]
    assert (t.status, t.attempts, t.answer) == ("succeeded", 2, "done")
    retry = rec.of("retrying")[0]
    assert retry.data.code == "api-error" and retry.data.delay >= 0.4
    assert not rec.of("cooldown")


async def test_a_bad_request_is_not_retried(workspace: Path):
    from tests.support.fake_openai import error

    with FakeOpenAI([error(400, "model 'fake' does not support tools")]) as srv:
        toml = model_plan(workspace, srv.base_url, '[[task]]\nid = "t"\nprompt = "go"\nretries = 3\n')
        result = await (await Run.prepare(plan_from_text(toml, str(workspace / "parex.toml"), workspace))).execute()
    t = result.tasks[0]
    assert (t.status, t.attempts, t.code) == ("failed", 1, "api-error")
    assert "does not support tools" in t.error
    assert len(srv.requests) == 1


async def test_call_fan_out_runs_every_call_concurrently_and_returns_each_answer(workspace: Path):
    calls = {"write unit tests for parser.py": [text(["tests ", "written"], delay=0.1)],
             "add type hints to cli.py": [text(["hints ", "added"], delay=0.1)],
             "update the README usage section": [text(["README ", "updated"], delay=0.1)]}
    with FakeOpenAI(by_prompt(calls)) as srv:
        model_plan(workspace, srv.base_url, "", run="max_concurrency = 4")
        notes = workspace / "notes.md"
        notes.write_text("# todo\ncall1: write unit tests for parser.py\ncall2: add type hints to cli.py\n"
                         "call3: update the README usage section\n")
        plan = plan_from_calls(notes.read_text(), str(notes), workspace, (0, 3))
        rec = Recorder()
        result = await (await Run.prepare(plan, sinks=[rec])).execute()
    assert [t.id for t in result.tasks] == ["call1", "call2", "call3"]
    assert {t.id: t.answer for t in result.tasks} == {
        "call1": "tests written", "call2": "hints added", "call3": "README updated"}
    assert srv.max_in_flight == 3
    # every streamed chunk is tagged with its call
    streamed = {}
    for e in rec.of("output"):
        streamed[e.task_id] = streamed.get(e.task_id, "") + e.data.text
    assert "hints added" in streamed["call2"] and "hints added" not in streamed["call1"]
    assert json.dumps(result.to_wire())  # answers travel in the wire result


def test_the_terminal_summary_shows_each_answer_and_the_tokens(workspace: Path):
    import subprocess
    import sys

    calls = {"name a colour": [text("teal")], "name a fruit": [text("quince")]}
    with FakeOpenAI(by_prompt(calls)) as srv:
        model_plan(workspace, srv.base_url, "")
        (workspace / "ask.md").write_text("call1: name a colour\ncall2: name a fruit\n")
        p = subprocess.run([sys.executable, "-m", "parex_lsp", "run", "ask.md"], cwd=workspace,
                           capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stdout + p.stderr
    summary = p.stdout[p.stdout.index("call1 answered:"):]  # after the streamed lines
    assert summary.index("teal") < summary.index("call2 answered:") < summary.index("quince")
    out = p.stdout
    assert "20+10 tokens" in out and "($" in out


async def test_a_resumed_run_keeps_the_answers_of_the_calls_it_does_not_rerun(workspace: Path):
    from parex_lsp.engine import RunOptions
    from tests.support.fake_openai import error

    calls = {"first question": [text("first answer")], "second question": [error(400, "refused")]}
    with FakeOpenAI(by_prompt(calls)) as srv:
        model_plan(workspace, srv.base_url, "", run="max_concurrency = 2")
        notes = workspace / "q.md"
        notes.write_text("call1: first question\ncall2: second question\n")
        first = await (await Run.prepare(plan_from_calls(notes.read_text(), str(notes), workspace))).execute()
        assert [t.status for t in first.tasks] == ["succeeded", "failed"]
        again = await (await Run.prepare(plan_from_calls(notes.read_text(), str(notes), workspace),
                                         RunOptions(resume="last"))).execute()
    assert {t.id: (t.answer, t.reused_from) for t in again.tasks} == {
        "call1": ("first answer", first.run_id), "call2": (None, None)}  # call2 ran again (and failed again)
    assert sum(1 for r in srv.requests if "first question" in json.dumps(r)) == 1
