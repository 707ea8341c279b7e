"""`parex-lsp plan`: a real process drafting against the local stand-in, which answers a broken plan first."""

from __future__ import annotations

from pathlib import Path

from parex_lsp.plan import load_plan
from tests.cli.cli_helpers import parex
from tests.planner.planner_helpers import BAD_PLAN, GOOD_PLAN, planning_workspace
from tests.support.fake_openai import FakeOpenAI, text


def test_plan_validates_after_the_second_round_with_round_one_problems_sent_back(workspace: Path) -> None:
    with FakeOpenAI([text(BAD_PLAN), text(GOOD_PLAN)]) as srv:
        planning_workspace(workspace, srv.base_url)
        done = parex("plan", "add rate limiting to the API", "-o", "limit.parex.toml",
                     "--file", "docs/architecture.md", cwd=workspace)
        received = srv.received
    assert done.returncode == 0, done.stderr
    assert "draft 1: 2 problems" in done.stderr
    assert len(received) == 2
    first = received[0].messages
    # the request carries the request, the workspace's file list, the named file and the agents
    assert "add rate limiting to the API" in first[1]["content"]
    assert "api/app.py" in first[1]["content"]
    assert "The API lives in api/." in first[1]["content"]
    assert "- coder:" in first[0]["content"] and "[[task]]" in first[0]["content"]
    # the second request is the first conversation, the model's answer and the problems found in it
    second = received[1].messages
    assert second[:2] == first and second[2] == {"role": "assistant", "content": BAD_PLAN}
    feedback = second[3]["content"]
    assert second[3]["role"] == "user"
    assert "dependency cycle: limiter -> wire -> limiter" in feedback
    assert "unknown agent `wizard`" in feedback
    assert "- line 11: task `wire`: unknown agent `wizard`" in feedback  # counted within the model's own block
    plan = load_plan(workspace / "limit.parex.toml", workspace)
    assert [t.id for t in plan.tasks] == ["limiter", "wire"]
    assert plan.task("wire").context == ["docs/architecture.md"]
    assert plan.agents["coder"].command == ["echo", "{prompt}"]  # the workspace's agents came along


def test_problems_left_after_the_last_round_are_printed_with_positions(workspace: Path) -> None:
    with FakeOpenAI([text(BAD_PLAN)] * 3) as srv:
        planning_workspace(workspace, srv.base_url)
        done = parex("plan", "add rate limiting", "-o", "limit.parex.toml", cwd=workspace)
        assert len(srv.received) == 3
    assert done.returncode == 1
    out = workspace / "limit.parex.toml"
    line = next(n for n, text in enumerate(out.read_text().splitlines(), 1) if 'agent = "wizard"' in text)
    assert f"{out}:{line}:1: task `wire`: unknown agent `wizard`" in done.stderr
    assert "dependency cycle" in done.stderr and "saved to" in done.stderr


def test_without_a_model_agent_nothing_is_asked(workspace: Path) -> None:
    (workspace / "parex.toml").write_text('[agents.coder]\ncommand = ["echo", "{prompt}"]\n')
    done = parex("plan", "anything", cwd=workspace)
    assert done.returncode == 2
    assert "no planning agent" in done.stderr


def test_a_named_file_outside_the_workspace_is_refused(workspace: Path) -> None:
    with FakeOpenAI([]) as srv:
        planning_workspace(workspace, srv.base_url)
        done = parex("plan", "anything", "--file", "../secret.txt", cwd=workspace)
        assert srv.received == []
    assert done.returncode == 2
    assert "leaves the workspace" in done.stderr
