"""Problems are reported once each, in document order, at their real line, with a hint for near misses;
no text given as a plan ever raises."""

from __future__ import annotations

from pathlib import Path

import pytest

from parex_lsp.plan import resolve, resolve_inline
from tests.support.plan_helpers import problems


def test_a_missing_prompt_is_reported_once(workspace: Path):
    path = workspace / "parex.toml"
    found = problems(path, '[[task]]\nid = "a"\n')
    assert found == [f"{path}:2:1: task `a` has no `prompt`"]


def test_a_list_valued_prompt_is_reported_once(workspace: Path):
    path = workspace / "parex.toml"
    found = problems(path, '[[task]]\nid = "a"\nprompt = ["echo", "hi"]\n')
    assert len(found) == 1 and found[0].startswith(f"{path}:3:1:") and "`prompt` must be a string" in found[0], found


def test_a_task_with_neither_id_nor_prompt_gets_one_problem_for_each(workspace: Path):
    path = workspace / "parex.toml"
    found = problems(path, '[run]\nretries = 0\n[[task]]\nagent = "shell"\n')
    assert [f.split(": ", 1)[1] for f in found] == ["task #1 has no `id`", "task `#1` has no `prompt`"], found
    assert all(f.startswith(f"{path}:3:") for f in found), found


def test_problems_come_sorted_by_position(workspace: Path):
    path = workspace / "parex.toml"
    text = ('[[task]]\nid = "b"\nprompt = "true"\ndepends_on = ["nope"]\n'
            '[[task]]\nid = "a"\nprompt = ""\nagent = "robot"\n'
            '[run]\nmax_concurrency = 0\n')
    lines = [int(f.split(":")[1]) for f in problems(path, text)]
    assert lines == sorted(lines) and len(lines) == 4, lines


def test_an_unknown_table_is_reported_at_its_header_with_a_suggestion(workspace: Path):
    path = workspace / "parex.toml"
    found = problems(path, '# a plan\n[run]\nretries = 0\n[[tasks]]\nid = "a"\nprompt = "true"\n')
    assert found == [f"{path}:4:1: unknown top-level field `tasks` (did you mean `task`?)"]


@pytest.mark.parametrize("text,line,suggestion", [
    ('[run]\nmax_concurency = 2\n', 2, "max_concurrency"),
    ('[run]\n\n[agents.m]\ncommand = ["m", "{prompt}"]\nretry_onn = ["x"]\n', 5, "retry_on"),
    ('[[task]]\nid = "a"\nprompt = "true"\ndepend_on = ["b"]\n', 4, "depends_on"),
    ('run.max_concurrenc = 2\n', 1, "max_concurrency"),
])
def test_near_miss_keys_get_did_you_mean_at_their_line(workspace: Path, text: str, line: int, suggestion: str):
    path = workspace / "parex.toml"
    found = problems(path, text, running=False)
    assert len(found) == 1 and found[0].startswith(f"{path}:{line}:"), found
    assert f"did you mean `{suggestion}`?" in found[0]


def test_inline_near_misses_get_did_you_mean(workspace: Path):
    got = resolve_inline([{"id": "a", "prompt": "true", "depends_on": []}], workspace)
    assert len(got.problems) == 1 and "did you mean `dependsOn`?" in got.problems[0].message


@pytest.mark.parametrize("bomb", ["a = " + "[" * 5000 + "]" * 5000, "a = " + "{b = " * 3000 + "1" + "}" * 3000,
                                  "x = 1\n\n[run]\nretries = " + "[" * 1000])
def test_nesting_bombs_are_a_problem_with_a_position(workspace: Path, bomb: str):
    path = workspace / "parex.toml"
    got = resolve(path, text=bomb)
    assert got.plan is None and len(got.problems) == 1 and "nested" in got.problems[0].message
    assert got.problems[0].range is not None and got.problems[0].range.start_line == bomb.count("\n")


def test_an_integer_too_long_to_convert_is_a_problem_at_its_line(workspace: Path):
    path = workspace / "parex.toml"
    got = resolve(path, text="[run]\n\nretries = " + "9" * 5000 + "\n")
    assert got.plan is None and [p.format()[:len(str(path)) + 4] for p in got.problems] == [f"{path}:3:1"]


def test_a_missing_plan_names_the_plans_that_are_there(workspace: Path):
    (workspace / "nightly.parex.toml").write_text('[[task]]\nid = "a"\nprompt = "true"\n')
    (workspace / "sub").mkdir()
    (workspace / "sub" / "parex.toml").write_text("[run]\n")
    got = resolve(workspace / "nighty.parex.toml")
    assert [p.code for p in got.problems] == ["no-plan"]
    assert got.problems[0].message.startswith(f"no plan at {workspace / 'nighty.parex.toml'}; plans in {workspace}:")
    assert "nightly.parex.toml, sub/parex.toml" in got.problems[0].message
    folder = resolve(workspace)  # a folder stands for its parex.toml
    assert folder.problems[0].message.startswith(f"no plan at {workspace / 'parex.toml'}")
    (workspace / "empty").mkdir()
    empty = resolve(workspace / "empty" / "x.parex.toml")
    assert "(no parex.toml or *.parex.toml in" in empty.problems[0].message


def test_explicit_retries_that_can_never_apply_are_a_warning(workspace: Path):
    path = workspace / "parex.toml"
    path.write_text('[agents.flaky]\ncommand = ["x", "{prompt}"]\nretry_on = ["429"]\n'
                    '[[task]]\nid = "a"\nprompt = "true"\nretries = 3\n'
                    '[[task]]\nid = "b"\nprompt = "true"\nagent = "flaky"\nretries = 3\n'
                    '[[task]]\nid = "c"\nprompt = "true"\nretries = 0\n')
    got = resolve(path)
    assert got.plan is not None and [p.severity for p in got.problems] == ["warning"], got.problems
    assert got.problems[0].format().startswith(f"{path}:7:1: warning: task `a`: `retries = 3` never applies")


def test_a_usd_budget_warns_of_agents_that_report_no_cost(workspace: Path):
    """A dollar budget that a model agent without `prices` (or a text CLI agent) can never fill is a warning at
    the budget's line; priced and json-lines agents, and shell commands, are fine."""
    path = workspace / "parex.toml"
    body = ('[run]\nbudget = { usd = 2 }\n'
            '[agents.cheap]\nkind = "openai"\nbase_url = "http://127.0.0.1:9/v1"\nmodel = "m"\n'
            '[agents.priced]\nkind = "openai"\nbase_url = "http://127.0.0.1:9/v1"\nmodel = "m"\n'
            'prices = { input = 1, output = 2 }\n'
            '[agents.cli]\ncommand = ["tool", "{prompt}"]\n'
            '[agents.streamed]\ncommand = ["tool", "{prompt}"]\noutput_format = "json-lines"\n'
            '[[task]]\nid = "a"\nagent = "cheap"\nprompt = "x"\n'
            '[[task]]\nid = "b"\nagents = ["priced", "cli", "streamed"]\nprompt = "x"\n'
            '[[task]]\nid = "c"\nprompt = "echo c"\n')
    found = problems(path, body)
    assert found == [f"{path}:2:1: warning: [run] budget usd: `cheap`, `cli` report(s) no cost, so their spend "
                     "never counts toward it (give a model agent `prices = { input = …, output = … }` in USD per "
                     "million tokens; of command agents only `output_format = \"json-lines\"` ones report a cost)"], found
    assert problems(path, body.replace("budget = { usd = 2 }", "budget = { tokens = 100 }")) == []
