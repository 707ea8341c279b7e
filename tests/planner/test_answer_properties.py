"""Properties of turning an answer into a plan document: the workspace's configuration survives without its
tasks, and a problem's line in the model's block is where the model wrote it."""

from __future__ import annotations

import tomllib
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from parex_lsp.planner.answer import check, compose, toml_block, without_tasks
from parex_lsp.planner.prompt import fix_message

names = st.text("abcdefgh", min_size=1, max_size=6)
values = st.text("abc xyz[]=#\"", max_size=12)


@st.composite
def configs(draw: st.DrawFn) -> str:
    """A parex.toml of [run], [agents.X] and [[task]] tables in any order, with strings that look like headers."""
    tables = draw(st.lists(st.one_of(
        st.tuples(st.just("agent"), names, values),
        st.tuples(st.just("task"), names, values)), max_size=6))
    parts = ['[run]\ndefault_agent = "shell"\n']
    seen = set()
    for kind, name, value in tables:
        if kind == "agent" and name not in seen:
            seen.add(name)
            parts.append(f'[agents.{name}]\ncommand = ["echo", {value!r}]\n'.replace("'", '"') if '"' not in value
                         else f'[agents.{name}]\ncommand = ["echo"]\n')
        elif kind == "task":
            quoted = value.replace('"', '\\"')  # three quotes in a row would end the string early
            parts.append(f'[[task]]\nid = "{name}"\nprompt = """\n{quoted}\n"""\n')
    return "\n".join(parts)


@settings(max_examples=60, deadline=None)
@given(configs())
def test_without_tasks_keeps_everything_but_the_tasks(config: str) -> None:
    data = tomllib.loads(config)
    data.pop("task", None)
    assert tomllib.loads(without_tasks(config)) == data


@settings(max_examples=40, deadline=None)
@given(st.lists(names, min_size=1, max_size=5, unique=True), st.data())
def test_the_line_sent_back_is_the_line_in_the_models_block(ids: list[str], data: st.DataObject) -> None:
    bad = data.draw(st.sampled_from(ids))
    block = "".join(f'[[task]]\nid = "{i}"\nprompt = "p"\nagent = "{"nobody" if i == bad else "shell"}"\n\n'
                    for i in ids)
    answer = f"Plan:\n```toml\n{block}```\n"
    extracted = toml_block(answer)
    assert extracted == block
    doc = compose('[run]\nretries = 1\n\n[[task]]\nid = "old"\nprompt = "x"\n', "a request", extracted)
    problems = [p for p in check(doc.text, "plan.parex.toml", Path.cwd()) if p.code == "unknown-agent"]
    assert len(problems) == 1
    expected = block.splitlines().index('agent = "nobody"') + 1
    assert f"- line {expected}: task `{bad}`: unknown agent `nobody`" in fix_message(problems, doc.offset)
