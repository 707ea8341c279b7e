"""What the Neovim plugin shows of a model run's spend and warnings, in a real headless Neovim against the real
parex-lsp and a local OpenAI-compatible server (tests/support/fake_openai.py, real HTTP on 127.0.0.1).

parex.toml has a 20k token budget; its task's first model turn (a tool call) spends 9000 + 3300 tokens and its
second turn comes late, so the statusline is seen with the spend while the run goes on. truncated.parex.toml's
task gets an answer cut at its length limit (`finish_reason: "length"`): the server warns, the plugin tells it on
one line and lists it in :ParexStatus. limited.parex.toml's first request is answered 429 with `Retry-After: 3`:
the statusline counts the agent's cooldown down. over.parex.toml's budget of 1000 tokens is spent by its task's first
turn: the run stops, the plugin says so on one line and in the statusline. The test itself is Lua (tests/clients/nvim/lua/parex_spend_test.lua).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.clients.test_nvim import NEOVIMS, _server_cmd
from tests.support.fake_openai import FakeOpenAI, Received, Reply, by_prompt, chunk, rate_limited, text, tool_calls
from tests.support.nvim_helpers import assert_passed, run_headless

COOLDOWN = 3  # seconds of Retry-After on limited.parex.toml's first request

pytestmark = pytest.mark.nvim


def _agent(base_url: str) -> str:
    return f'[agents.local]\nkind = "openai"\nbase_url = "{base_url}"\nmodel = "fake"\n'


def _workspace(ws: Path, base_url: str) -> None:
    ws.mkdir()
    (ws / "notes.md").write_text("# Notes\nThe good task prints good-task-output.\n")
    (ws / "parex.toml").write_text(
        "[run]\nbudget = { tokens = 20000 }\nretry_backoff = 0.05\n\n" + _agent(base_url)
        + '\n[[task]]\nid = "ask"\nagent = "local"\nprompt = "read notes.md and summarise it"\n')
    (ws / "truncated.parex.toml").write_text(
        "[run]\nretry_backoff = 0.05\n\n" + _agent(base_url)
        + '\n[[task]]\nid = "long"\nagent = "local"\nprompt = "write a long essay about locks"\n')
    (ws / "limited.parex.toml").write_text(
        "[run]\nmax_concurrency = 4\nretry_backoff = 0.05\n\n" + _agent(base_url)
        + '\n[[task]]\nid = "busy"\nagent = "local"\nprompt = "answer when the quota allows"\n')
    (ws / "over.parex.toml").write_text(
        "[run]\nbudget = { tokens = 1000 }\nretry_backoff = 0.05\n\n" + _agent(base_url)
        + '\n[[task]]\nid = "spender"\nagent = "local"\nprompt = "spend beyond the budget"\n')


def _cut_answer() -> Reply:
    """A streamed answer the model stopped at its token limit."""
    usage = {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "model": "fake", "choices": [],
             "usage": {"prompt_tokens": 40, "completion_tokens": 64, "total_tokens": 104}}
    return Reply(events=[chunk({"role": "assistant", "content": ""}), chunk({"content": "Locks are, first of all,"}),
                         chunk({}, "length"), usage, "[DONE]"])


def _late_answer() -> Reply:
    reply = text("The notes say the good task prints good-task-output.", usage=None)
    reply.latency = 2.0  # the statusline is looked at meanwhile
    return reply


def _script():
    conversations = by_prompt({
        "read notes.md": [tool_calls(("read_file", {"path": "notes.md"}), usage=(9000, 3300)), _late_answer()],
        "long essay": [_cut_answer()],
        "beyond the budget": [tool_calls(("read_file", {"path": "notes.md"}), usage=(1200, 300)),
                              text("never asked for")],
    })
    limited = []  # the quota's requests so far: the first is refused

    def handle(req: Received) -> Reply:
        if "quota allows" in req.prompt:
            limited.append(req)
            return rate_limited(retry_after=COOLDOWN) if len(limited) == 1 else text("Answered after the cooldown.")
        return conversations(req)

    return handle


@pytest.mark.parametrize("which", sorted(NEOVIMS))
def test_spend_and_warnings_in_headless_neovim(tmp_path: Path, which: str) -> None:
    nvim = NEOVIMS[which]()
    script = _script()
    with FakeOpenAI(script) as model:
        ws = tmp_path / "ws"
        _workspace(ws, model.base_url)
        proc = run_headless(nvim, tmp_path, "require('parex_spend_test').run()", ws,
                            {"PAREX_LSP_CMD": _server_cmd(), "PAREX_TEST_WORKSPACE": str(ws)})
    assert_passed(proc, ["ok - statusline while the run goes on: parex: 0/1 (1 running) · 12.3k tok of 20k",
                         "ok - statusline after the run: parex: ok 1/1",
                         "ok - :ParexStatus shows the run's spend against its budget",
                         "ok - the truncated answer's warning was one notice: parex: long: ",
                         "ok - :ParexStatus lists the warning under its task",
                         "ok - statusline during the cooldown: parex: 0/1 (1 running) · local: rate limited ",
                         "ok - the cooldown counted down to ",
                         "ok - :ParexStatus showed the cooldown in full",
                         "ok - the budget reached: one notice: parex: budget reached: ",
                         "ok - statusline after the budget was reached: parex: failed 1/1 "])
    # The cooldown ends at now + Retry-After in epoch seconds, shown in whole seconds from os.time(): 3 or 4.
    shown = [ln for ln in proc.stdout.splitlines() if ln.startswith("ok - statusline during the cooldown")]
    assert shown[0].endswith((f" {COOLDOWN}s", f" {COOLDOWN + 1}s")), shown
    prompts = [r.prompt for r in model.received]
    assert sum("read notes.md" in p for p in prompts) == 2, prompts
    assert any("long essay" in p for p in prompts), prompts
    # The budget refused the task's second turn.
    assert sum("beyond the budget" in p for p in prompts) == 1, prompts
    limited = [r.at for r in model.received if "quota allows" in r.prompt]
    assert len(limited) == 2 and limited[1] - limited[0] >= COOLDOWN - 0.5, limited
