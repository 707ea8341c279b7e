"""Budgets, one cooldown per rate-limited agent, and adaptive concurrency, through the whole engine: model
agents against the local OpenAI-compatible stand-in with a requests-per-window limit, and a CLI agent (a real
subprocess) that reports a usage limit with its reset time."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from parex_lsp.engine import Run, RunOptions
from parex_lsp.plan import plan_from_text
from tests.support.engine_helpers import Recorder
from tests.support.fake_openai import FakeOpenAI, RateLimit, by_prompt, text, tool_calls

FAKE_CLI = Path(__file__).resolve().parents[1] / "support" / "fake_cli_agent.py"


def model_toml(base_url: str, tasks: str, run: str = "", agent: str = "") -> str:
    return (f'[run]\nretry_backoff = 0.05\ndefault_agent = "local"\n{run}\n'
            f'[agents.local]\nbase_url = "{base_url}"\nmodel = "fake"\n{agent}\n{tasks}')


async def start(workspace: Path, toml: str, options: RunOptions | None = None) -> tuple[Run, Recorder]:
    (workspace / "parex.toml").write_text(toml)
    rec = Recorder()
    return await Run.prepare(plan_from_text(toml, str(workspace / "parex.toml"), workspace), options, [rec]), rec


async def test_a_fan_out_under_a_request_limit_completes_and_waits_together(workspace: Path):
    limit = RateLimit(requests=10, window=1.0)
    with FakeOpenAI(lambda req: text(f"Answer to {req.prompt}", delay=0.02), limit=limit) as srv:
        tasks = "".join(f'[[task]]\nid = "c{i}"\nprompt = "call {i}"\n' for i in range(30))
        run, rec = await start(workspace, model_toml(srv.base_url, tasks, run="max_concurrency = 30\nretries = 0"))
        result = await run.execute()
    assert result.status == "succeeded", [(t.id, t.error) for t in result.tasks if t.status != "succeeded"]
    assert {t.attempts for t in result.tasks} == {1}  # quota waits spend no attempt
    assert len(srv.received) == 30 + srv.refused
    cooldowns = rec.of("cooldown")
    assert cooldowns and all(c.data.agent == "local" for c in cooldowns)
    # one shared cooldown: however many requests of a burst were refused, it is announced once
    assert len(cooldowns) < srv.refused
    levels = [e.data.level for e in rec.of("concurrency")]
    assert levels and levels[0] == 15 and min(levels) >= 1  # halved once for the first burst
    accepted = sorted(r.at for r in srv.received)
    for c in cooldowns:  # nothing was sent to the agent while it cooled down (beyond the server's refusals)
        inside = [t for t in accepted if c.ts + 0.05 < t < c.data.until - 0.05]
        assert not inside, (c.data, inside)
    assert run.status()["agents"]["local"]["max"] == 30


async def test_a_token_budget_stops_the_run_at_most_one_request_beyond_it(workspace: Path):
    steps = [tool_calls(("list_files", {"path": "."}), usage=(100, 20)) for _ in range(3)]
    conversations = {f"job {i}:": [*steps, text(f"done {i}", usage=(100, 20))] for i in range(6)}
    with FakeOpenAI(by_prompt(conversations)) as srv:
        tasks = "".join(f'[[task]]\nid = "j{i}"\nprompt = "job {i}: list"\n' for i in range(6))
        tasks += '[[task]]\nid = "after"\nprompt = "job 0: again"\ndepends_on = ["j5"]\n'
        run, rec = await start(workspace, model_toml(srv.base_url, tasks, run="max_concurrency = 3"),
                               RunOptions(budget_tokens=1000))
        result = await run.execute()
    one_request = 120
    spent = result.budget["spent"]["tokens"]
    assert 1000 <= spent <= 1000 + one_request
    assert spent == 120 * len(srv.received)  # every request served was counted
    assert result.status == "failed" and result.budget["exceeded"] is True
    by_id = {t.id: t for t in result.tasks}
    ended = [t for t in result.tasks if t.status != "succeeded"]
    assert ended and all(t.code == "budget-exceeded" for t in ended), [(t.id, t.code, t.error) for t in ended if t.code != "budget-exceeded"]
    assert {t.status for t in ended} <= {"failed", "skipped"}
    assert by_id["after"].status == "skipped" and by_id["after"].code == "budget-exceeded"
    for t in result.tasks:
        if t.status == "succeeded":
            assert t.answer and t.answer.startswith("done")  # a call that completed keeps its result
    stop = rec.of("budgetExceeded")
    assert len(stop) == 1 and stop[0].data.budget == {"tokens": 1000}
    usage = rec.of("usage")[-1].data.to_wire()
    assert usage["budget"] == {"tokens": 1000} and usage["run"]["promptTokens"] > 0


async def test_a_task_stops_at_its_max_cost(workspace: Path):
    replies = [tool_calls(("list_files", {"path": "."}), usage=(1000, 0)) for _ in range(5)] + [text("done")]
    with FakeOpenAI(replies) as srv:
        tasks = '[[task]]\nid = "t"\nprompt = "go"\nmax_cost = 0.0025\n'
        run, _ = await start(workspace, model_toml(srv.base_url, tasks, agent="prices = { input = 1.0, output = 1.0 }"))
        result = await run.execute()
    t = result.tasks[0]
    assert (t.status, t.code) == ("failed", "budget-exceeded")
    assert "max_cost" in t.error and len(srv.received) == 3  # $0.001 a request: the third reaches $0.0025


def cli_toml(until: float, tasks: int, run: str = "") -> str:
    command = json.dumps([sys.executable, str(FAKE_CLI), "claude", "--usage-limit-until", f"{until}", "{prompt}"])
    body = "".join(f'[[task]]\nid = "t{i}"\nprompt = "task {i}"\nagent = "claude"\n' for i in range(tasks))
    return f'[run]\nmax_concurrency = 4\nretries = 0\n{run}\n[agents.claude]\ncommand = {command}\n{body}'


async def test_a_cli_usage_limit_pauses_every_task_of_the_agent_until_its_reset(workspace: Path):
    reset = time.time() + 1.5
    run, rec = await start(workspace, cli_toml(reset, 3))
    result = await run.execute()
    assert result.status == "succeeded", [(t.id, t.error) for t in result.tasks]
    assert all(t.answer == f"Done: task {t.id[1:]}" for t in result.tasks)
    cooldowns = rec.of("cooldown")
    assert len(cooldowns) == 1  # one shared cooldown for the three tasks that met the limit
    assert abs(cooldowns[0].data.until - round(reset + 0.5)) <= 1.0
    second = [e for e in rec.of("output") if "attempt 2" in e.data.text]
    starts = [e.ts for e in rec.events if e.kind == "output" and e.attempt == 2]
    assert starts and min(starts) >= reset - 0.05
    assert not rec.of("retrying") and second is not None


async def test_a_usage_limit_beyond_rate_limit_wait_max_fails_the_task_rate_limited(workspace: Path):
    run, _ = await start(workspace, cli_toml(time.time() + 3600, 2, run='rate_limit_wait_max = "30s"'))
    result = await run.execute()
    assert [(t.status, t.code) for t in result.tasks] == [("failed", "rate-limited")] * 2
    assert "rate_limit_wait_max" in result.tasks[0].error
