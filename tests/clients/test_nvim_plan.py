"""`:checkhealth parex` (the doctor's checks), the executor options of setup() and `:ParexPlan` in a real
headless Neovim against the real parex-lsp, on both Neovims. The planning agent is the local OpenAI-compatible
stand-in (tests/support/fake_openai.py): a plan with a dependency cycle and an unknown agent first, then a valid
one; or the invalid one every round. The tests themselves are Lua (tests/clients/nvim/lua/parex_plan_test.lua)."""

from __future__ import annotations

import shutil
from pathlib import Path

import git
import pytest

from tests.clients.test_nvim import HERE, NEOVIMS, _server_cmd
from tests.planner.planner_helpers import BAD_PLAN, GOOD_PLAN, planning_workspace
from tests.support.fake_openai import FakeOpenAI, by_prompt, text
from tests.support.nvim_helpers import assert_passed, run_headless

pytestmark = pytest.mark.nvim

FAILING_PLAN = """\
[agents.ghost]
command = ["no-such-agent-parex", "{prompt}"]

[[task]]
id = "haunt"
agent = "ghost"
prompt = "boo"

[[task]]
id = "echo"
agent = "shell"
prompt = "echo hi"
"""


def _healthy(ws: Path) -> Path:
    """A committed git workspace whose plan uses the shell agent only."""
    ws.mkdir()
    (ws / "parex.toml").write_text('[[task]]\nid = "hello"\nprompt = "echo hello"\n')
    (ws / ".gitignore").write_text(".parex/\n")
    repo = git.Repo.init(ws)
    repo.index.add(["parex.toml", ".gitignore"])
    who = git.Actor("d", "d@example.com")
    repo.index.commit("base", author=who, committer=who)
    return ws


def _failing(ws: Path) -> Path:
    """No git; an agent whose executable is nowhere; an invalid plan beside it."""
    ws.mkdir()
    (ws / "parex.toml").write_text(FAILING_PLAN)
    shutil.copy(HERE / "workspace" / "broken.parex.toml", ws / "broken.parex.toml")
    return ws


@pytest.mark.parametrize("which", sorted(NEOVIMS))
def test_checkhealth_runs_the_doctor(tmp_path: Path, which: str) -> None:
    nvim = NEOVIMS[which]()
    healthy, failing = _healthy(tmp_path / "healthy"), _failing(tmp_path / "failing")
    proc = run_headless(nvim, tmp_path, "require('parex_plan_test').run('health')", healthy, {
        "PAREX_LSP_CMD": _server_cmd(), "PAREX_TEST_HEALTHY": str(healthy), "PAREX_TEST_FAILING": str(failing)})
    assert_passed(proc, [
        "ok - checkhealth: the doctor's checks of a healthy workspace, each OK (6)",
        "ok - checkhealth: a missing agent executable is an error with the doctor's advice, no git a warning",
        "ok - checkhealth: an invalid plan's problems, one error each",
        "ok - checkhealth: a doctor that cannot start, or answers no JSON, is an error saying so",
        "ok - setup() executor and ray_address are sent in parex/run as executor and rayAddress; a bad one is told",
    ])


@pytest.mark.parametrize("which", sorted(NEOVIMS))
def test_parex_plan_opens_the_valid_draft(tmp_path: Path, which: str) -> None:
    nvim = NEOVIMS[which]()
    ws = tmp_path / "ws"
    ws.mkdir()
    with FakeOpenAI([text(BAD_PLAN), text(GOOD_PLAN)]) as model:
        planning_workspace(ws, model.base_url)
        (ws / "plan.parex.toml").write_text("# an earlier draft, saved: never overwritten\n")
        proc = run_headless(nvim, tmp_path, "require('parex_plan_test').run('plan_valid')", ws, {
            "PAREX_LSP_CMD": _server_cmd(), "PAREX_TEST_WORKSPACE": str(ws)})
        received = model.received
    assert_passed(proc, [
        "ok - :ParexPlan: drafting a plan… told, and in the statusline",
        "ok - :ParexPlan opened the valid plan after 2 rounds in plan-2.parex.toml, unsaved, filetype toml",
        "ok - the saved draft is attached to the server",
    ])
    assert len(received) == 2
    assert "add rate limiting to the API" in received[0].prompt
    # The current buffer's file went with the request.
    assert "The API lives in api/." in received[0].messages[1]["content"]
    assert "unknown agent `wizard`" in received[1].messages[3]["content"]
    assert (ws / "plan.parex.toml").read_text() == "# an earlier draft, saved: never overwritten\n"
    assert 'id = "limiter"' in (ws / "plan-2.parex.toml").read_text()


@pytest.mark.parametrize("which", sorted(NEOVIMS))
def test_parex_plan_shows_an_invalid_drafts_problems(tmp_path: Path, which: str) -> None:
    nvim = NEOVIMS[which]()
    ws = tmp_path / "ws"
    ws.mkdir()
    slow = text(GOOD_PLAN)
    slow.latency = 3.0  # cancelled before it comes
    script = by_prompt({"draft slowly": [slow], "add rate limiting": [text(BAD_PLAN)] * 3})
    with FakeOpenAI(script) as model:
        planning_workspace(ws, model.base_url)
        proc = run_headless(nvim, tmp_path, "require('parex_plan_test').run('plan_invalid')", ws, {
            "PAREX_LSP_CMD": _server_cmd(), "PAREX_TEST_WORKSPACE": str(ws)})
        prompts = [r.prompt for r in model.received]
    assert_passed(proc, [
        "ok - :ParexPlanCancel stopped the draft in progress",
        "ok - the invalid draft holds its 2 problems as diagnostics (unknown agent at line ",
        "ok - the cancelled draft's answer was ignored",
    ])
    assert sum("add rate limiting" in p for p in prompts) == 3, prompts
    assert sum("draft slowly" in p for p in prompts) == 1, prompts
    assert not (ws / "plan.parex.toml").exists()
