"""What the planner finds in a draft beyond the validator's own problems, and answers without a plan."""

from __future__ import annotations

from pathlib import Path

from parex_lsp.planner.answer import check, compose, toml_block
from tests.cli.cli_helpers import parex
from tests.planner.planner_helpers import GOOD_PLAN, planning_workspace
from tests.support.fake_openai import FakeOpenAI, text

CONFIG = '[agents.coder]\ncommand = ["echo", "{prompt}"]\n'


def _tasks(*files: str, depends: str = "") -> str:
    return "".join(f'[[task]]\nid = "t{i}"\nprompt = "p"\nagent = "coder"\nfiles = ["{f}"]\n'
                   + (f'depends_on = ["{depends}"]\n' if depends and i else "") + "\n" for i, f in enumerate(files))


def test_most_tasks_sharing_files_is_a_problem(workspace: Path) -> None:
    doc = compose(CONFIG, "r", _tasks("api/**", "api/app.py", "api/limit.py", "docs/a.md"))
    problems = check(doc.text, "p.parex.toml", workspace)
    assert [p.code for p in problems] == ["serialized-files"]
    assert "3 of 4 tasks (`t0`, `t1`, `t2`)" in problems[0].message
    assert problems[0].range is not None and problems[0].range.start_line == doc.text.splitlines().index(
        'files = ["api/**"]')


def test_shared_files_in_dependent_tasks_or_a_few_are_fine(workspace: Path) -> None:
    assert check(compose(CONFIG, "r", _tasks("api/**", "api/app.py", "api/x.py", depends="t0")).text,
                 "p.parex.toml", workspace) == []
    assert check(compose(CONFIG, "r", _tasks("api/**", "api/app.py", "docs/a.md", "web/b.js")).text,
                 "p.parex.toml", workspace) == []


def test_a_path_outside_the_workspace_is_a_problem(workspace: Path) -> None:
    problems = check(compose(CONFIG, "r", _tasks("/etc/passwd")).text, "p.parex.toml", workspace)
    assert [p.code for p in problems] == ["path-escape"]


def test_the_tagged_block_is_preferred() -> None:
    assert toml_block("```\nplain\n```\nthen\n```toml\n[[task]]\n```") == "[[task]]\n"
    assert toml_block("```\n[[task]]\n```") == "[[task]]\n"
    assert toml_block("no block here") is None


def test_an_answer_without_a_block_is_sent_back(workspace: Path) -> None:
    with FakeOpenAI([text("I would split this into two tasks."), text(GOOD_PLAN)]) as srv:
        planning_workspace(workspace, srv.base_url)
        done = parex("plan", "add rate limiting", cwd=workspace)
        feedback = srv.received[1].messages[-1]["content"]
    assert done.returncode == 0, done.stderr
    assert "the answer holds no ```toml block" in feedback
    assert 'id = "limiter"' in done.stdout  # without -o the plan is printed
