"""Plans in their three forms become one Plan; problems are all reported, each at its place."""

from __future__ import annotations

from pathlib import Path

import pytest

from parex_lsp.plan import PlanError, load_plan, plan_from_calls, plan_from_inline, plan_from_text
from parex_lsp.plan.durations import parse_duration


def problems_of(call) -> list[str]:
    with pytest.raises(PlanError) as e:
        call()
    return [p.format() for p in e.value.problems]


def test_call_lines_become_tasks_with_multi_line_prompts_and_their_lines(workspace: Path):
    text = ("# notes\n"
            "call1: write unit tests for parser.py\n"
            "  cover the error paths too\n"
            "\n"
            "- call2: add type hints to cli.py\n"
            "// call10: update the README\n")
    plan = plan_from_calls(text, "notes.md", workspace, call_agent="shell")
    assert [(t.id, t.prompt, t.range.start_line) for t in plan.tasks] == [
        ("call1", "write unit tests for parser.py\n  cover the error paths too", 1),
        ("call2", "add type hints to cli.py", 4),
        ("call10", "update the README", 5),
    ]
    assert all(not t.depends_on for t in plan.tasks) and plan.kind == "calls"


def test_a_range_takes_only_its_calls(workspace: Path):
    text = "call1: one\ncall2: two\ncall3: three\n"
    assert [t.id for t in plan_from_calls(text, "n.md", workspace, (1, 1), "shell").tasks] == ["call2"]


def test_a_range_without_calls_is_a_problem_at_the_range(workspace: Path):
    found = problems_of(lambda: plan_from_calls("just prose\nmore prose\n", "n.md", workspace, (1, 1)))
    assert len(found) == 1 and found[0].startswith("n.md:2:1:") and "call1:" in found[0]


def test_call_plans_use_the_workspace_plan_agents_and_settings(workspace: Path):
    (workspace / "parex.toml").write_text('[run]\nmax_concurrency = 7\ndefault_agent = "mine"\n'
                                          '[agents.mine]\ncommand = ["echo", "{prompt}"]\n')
    plan = plan_from_calls("call1: hi\n", "n.md", workspace)
    assert plan.run.max_concurrency == 7 and plan.agent_for(plan.tasks[0]).command == ["echo", "{prompt}"]


def test_call_prompts_go_to_a_model_agent_unless_the_plan_names_another(workspace: Path):
    base = workspace / "parex.toml"
    base.write_text('[agents.local]\nkind = "openai"\nbase_url = "http://127.0.0.1:9/v1"\nmodel = "m"\n')
    assert plan_from_calls("call1: explain this\n", "n.md", workspace).tasks[0].agent == "local"
    base.write_text(base.read_text() + '[run]\ndefault_agent = "claude"\n')
    assert plan_from_calls("call1: explain this\n", "n.md", workspace).tasks[0].agent == "claude"
    base.write_text(base.read_text().replace('default_agent = "claude"', 'call_agent = "shell"'))
    assert plan_from_calls("call1: ls\n", "n.md", workspace).tasks[0].agent == "shell"
    base.unlink()  # no agent chosen for prose: nothing runs, and the problem says how to choose one
    found = problems_of(lambda: plan_from_calls("call1: ls\n", "n.md", workspace))
    assert len(found) == 1 and found[0].startswith("n.md:1:1:") and 'call_agent = "shell"' in found[0]
    assert plan_from_calls("call1: ls\n", "n.md", workspace, call_agent="shell").tasks[0].agent == "shell"


def test_inline_tasks_are_checked_field_by_field(workspace: Path):
    plan = plan_from_inline([{"id": "a", "prompt": "true", "dependsOn": [], "timeout": 90},
                             {"id": "b", "prompt": "true", "dependsOn": ["a"], "retries": 2}], workspace)
    assert [(t.id, t.depends_on, t.timeout, t.retries) for t in plan.tasks] == [
        ("a", [], 90.0, None), ("b", ["a"], None, 2)]  # None: the plan's `[run] retries`
    found = problems_of(lambda: plan_from_inline(
        [{"id": 3, "prompt": "x"}, {"id": "b", "dependsOn": "a", "colour": 1, "prompt": "x"}, "nope"], workspace))
    text = "\n".join(found)
    for expected in ("tasks[0]: `id` must be a string", "tasks[1]: `dependsOn` must be an array",
                     "unknown field `colour`", "tasks[2] must be an object"):
        assert expected in text, text


def test_a_preset_table_overrides_only_what_it_names(workspace: Path):
    plan = plan_from_text('[agents.claude]\nmax_concurrency = 2\n[[task]]\nid = "t"\nprompt = "p"\nagent = "claude"\n',
                          str(workspace / "parex.toml"), workspace)
    claude = plan.agents["claude"]
    assert claude.max_concurrency == 2 and claude.command[0] == "claude" and "{prompt}" in claude.command


def test_wrong_types_are_named_with_their_line(workspace: Path):
    text = '[run]\nmax_concurrency = "four"\n[[task]]\nid = "t"\nprompt = "p"\nretries = true\n'
    found = problems_of(lambda: plan_from_text(text, "parex.toml", workspace))
    assert any(f.startswith("parex.toml:2:1:") and "max_concurrency" in f for f in found), found
    assert any(f.startswith("parex.toml:6:1:") and "retries" in f for f in found), found


def test_a_symlink_out_of_the_workspace_is_an_escape(workspace: Path, tmp_path: Path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (workspace / "link").symlink_to(outside)
    text = '[[task]]\nid = "t"\nprompt = "p"\nfiles = ["link/*.py"]\n'
    found = problems_of(lambda: plan_from_text(text, "parex.toml", workspace))
    assert len(found) == 1 and "symlink" in found[0] and found[0].startswith("parex.toml:4:")


def test_an_unreadable_plan_says_so(workspace: Path):
    (workspace / "latin1.parex.toml").write_bytes(b'[[task]]\nid = "caf\xe9"\n')
    found = problems_of(lambda: load_plan(workspace / "latin1.parex.toml"))
    assert len(found) == 1 and "cannot read plan" in found[0] and "utf-8" in found[0], found


@pytest.mark.parametrize("text,seconds", [("90s", 90), ("10m", 600), ("1h30m", 5400), ("250ms", 0.25), (12, 12),
                                          ("2.5", 2.5)])
def test_durations(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("bad", ["soon", "-5s", 0, True, "10 parsecs", ""])
def test_bad_durations_say_how_to_write_one(bad):
    with pytest.raises(ValueError):
        parse_duration(bad)


def test_positions_skip_multi_line_strings_and_comments(workspace: Path):
    text = ('# a plan\n'
            '[[task]]\n'
            'id = "a"\n'
            'prompt = """\n'
            'id = "not a key"\n'
            '[[task]]\n'
            '"""\n'
            '\n'
            '  [[task]]   # the second task\n'
            'id = "b"\n'
            'prompt = "p"\n'
            'agent = "robot"\n')
    found = problems_of(lambda: plan_from_text(text, "parex.toml", workspace))
    assert len(found) == 1 and found[0].startswith("parex.toml:12:1:") and "robot" in found[0], found
    plan = plan_from_text(text.replace('agent = "robot"\n', ""), "parex.toml", workspace)
    assert [(t.id, t.range.start_line) for t in plan.tasks] == [("a", 2), ("b", 9)]
    assert plan.tasks[0].prompt == 'id = "not a key"\n[[task]]\n'
