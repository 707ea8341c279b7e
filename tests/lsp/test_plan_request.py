"""`parex/plan` over the real server: the same drafting as `parex-lsp plan`, against the local stand-in."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from pygls.exceptions import JsonRpcException
from pytest_lsp import LanguageClient

from parex_lsp.plan import lint
from tests.planner.planner_helpers import BAD_PLAN, GOOD_PLAN, planning_workspace
from tests.support.fake_openai import FakeOpenAI, text
from tests.support.lsp_helpers import initialize, request


@pytest.mark.asyncio
async def test_parex_plan_drafts_a_valid_plan_in_two_rounds(client: LanguageClient, workspace: Path) -> None:
    with FakeOpenAI([text(BAD_PLAN), text(GOOD_PLAN)]) as srv:
        planning_workspace(workspace, srv.base_url)
        await initialize(client, workspace)
        target = workspace / "limit.parex.toml"
        got = await request(client, "parex/plan", {"request": "add rate limiting to the API",
                                                   "files": ["docs/architecture.md"], "uri": target.as_uri()})
        received = srv.received
    assert got["valid"] is True and got["rounds"] == 2 and got["problems"] == []
    assert [t["id"] for t in tomllib.loads(got["text"])["task"]] == ["limiter", "wire"]
    assert lint(got["text"], str(target), workspace) == []
    assert not target.exists()  # the editor saves it, after the person's edits
    assert "The API lives in api/." in received[0].messages[1]["content"]
    feedback = received[1].messages[3]["content"]
    assert "dependency cycle: limiter -> wire -> limiter" in feedback and "unknown agent `wizard`" in feedback


@pytest.mark.asyncio
async def test_parex_plan_returns_the_problems_left_as_diagnostics(client: LanguageClient, workspace: Path) -> None:
    with FakeOpenAI([text(BAD_PLAN)] * 3) as srv:
        planning_workspace(workspace, srv.base_url)
        await initialize(client, workspace)
        got = await request(client, "parex/plan", {"request": "add rate limiting"})
        assert len(srv.received) == 3
    assert got["valid"] is False and got["rounds"] == 3
    wizard = next(n for n, line in enumerate(got["text"].splitlines()) if 'agent = "wizard"' in line)
    unknown = next(p for p in got["problems"] if p["code"] == "unknown-agent")
    assert unknown["range"]["start"] == {"line": wizard, "character": 0}
    assert unknown["severity"] == 1 and unknown["source"] == "parex"
    assert any(p["code"] == "dependency-cycle" for p in got["problems"])


@pytest.mark.asyncio
async def test_parex_plan_refuses_bad_params_and_a_workspace_without_a_planner(client: LanguageClient,
                                                                               workspace: Path) -> None:
    (workspace / "parex.toml").write_text('[agents.coder]\ncommand = ["echo", "{prompt}"]\n')
    await initialize(client, workspace)
    with pytest.raises(JsonRpcException, match="`request` must be a non-empty string"):
        await request(client, "parex/plan", {"request": " ", "files": "x"})
    with pytest.raises(JsonRpcException, match="no planning agent"):
        await request(client, "parex/plan", {"request": "add tests"})
