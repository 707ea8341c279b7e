"""Whatever text is given as a plan (TOML, a `callN:` document, an inline task list), the answer is a plan
or problems with positions: never an exception."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from parex_lsp.plan import Resolved, id_problem, resolve, resolve_inline
from parex_lsp.plan.fields import AGENT_FIELDS, RUN_FIELDS, TASK_FIELDS, WIRE_TASK_NAMES

# Small budgets: CI runs on 2 cores; most of the time goes into generating examples, not into parsing them.
FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
STRUCTURED = settings(FAST, max_examples=75)


@pytest.fixture(scope="module")
def ws(tmp_path_factory: pytest.TempPathFactory) -> Path:
    ws = tmp_path_factory.mktemp("ws")
    (ws / ".git").mkdir()
    return ws


def toml_string(s: str) -> str:
    return json.dumps(s, ensure_ascii=False).replace("\x7f", "\\u007f")


def toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf") if math.isinf(v) else repr(v)
    if isinstance(v, int):
        return str(v)
    if isinstance(v, str):
        return toml_string(v)
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    return "{ " + ", ".join(f"{toml_string(k)} = {toml_value(x)}" for k, x in v.items()) + " }"


scalars = st.one_of(st.booleans(), st.integers(min_value=-10**20, max_value=10**20), st.floats(), st.text(max_size=20),
                    st.sampled_from(["90s", "10m", "-5s", "1h30m", "0", "", "shell", "openai", "worktree", "../x",
                                     "/etc/hosts", "a\0b", ".", "..", "-rf", "x" * 120]))
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                       st.dictionaries(st.text(max_size=8), inner, max_size=3)),
                      max_leaves=4)


def table(keys) -> st.SearchStrategy[dict]:
    return st.dictionaries(st.one_of(st.sampled_from(sorted(keys)), st.text(min_size=1, max_size=10)), values,
                           max_size=6)


plans = st.fixed_dictionaries({}, optional={
    "run": table(RUN_FIELDS),
    "agents": st.dictionaries(st.sampled_from(["shell", "claude", "local", "m-1"]), table(AGENT_FIELDS), max_size=2),
    "task": st.lists(table(TASK_FIELDS), max_size=4),
})


def render(plan: dict) -> str:
    lines: list[str] = []
    for key, value in plan.get("run", {}).items():
        lines.append(f"run.{toml_string(key)} = {toml_value(value)}")
    for name, fields in plan.get("agents", {}).items():
        lines.append(f"[agents.{toml_string(name)}]")
        lines += [f"{toml_string(k)} = {toml_value(v)}" for k, v in fields.items()]
    for fields in plan.get("task", []):
        lines.append("[[task]]")
        lines += [f"{toml_string(k)} = {toml_value(v)}" for k, v in fields.items()]
    return "\n".join(lines) + "\n"


def assert_plan_or_placed_problems(got: Resolved, text: str | None, document: bool = True) -> None:
    assert (got.plan is None) == bool(got.errors)
    assert got.plan is not None or got.problems
    n_lines = len(re.split(r"\r\n|\r|\n", text)) if text is not None else None
    for p in got.problems:
        assert p.message and p.code
        if document:
            assert p.range is not None, p
            if n_lines is not None and p.path is not None and not p.path.endswith("parex.toml"):
                assert 0 <= p.range.start_line < n_lines, p
    if got.plan is not None:
        for t in got.plan.tasks:
            assert id_problem(t.id) is None and t.prompt.strip()
            for seconds in (t.timeout, t.lock_timeout):
                assert seconds is None or (math.isfinite(seconds) and seconds > 0)
        run = got.plan.run
        assert run.max_concurrency >= 1 and run.retries >= 0
        assert all(math.isfinite(s) and s >= 0 for s in (run.kill_grace, run.retry_backoff, run.retry_backoff_max))


@FAST
@given(st.one_of(st.text(), st.text(alphabet='[]{}="\'#.,\n \tabcdeiknrstu0123456789_-')))
def test_any_text_as_a_toml_plan(ws: Path, text: str):
    got = resolve(ws / "parex.toml", text=text)
    assert_plan_or_placed_problems(got, text)


@STRUCTURED
@given(plans)
def test_any_structured_toml_plan(ws: Path, plan: dict):
    text = render(plan)
    got = resolve(ws / "parex.toml", text=text)
    assert_plan_or_placed_problems(got, text)


@FAST
@given(st.lists(st.one_of(st.text(max_size=30), st.builds(lambda n, p: f"call{n}: {p}", st.integers(0, 10**120),
                                                          st.text(max_size=20))), max_size=8),
       st.one_of(st.none(), st.tuples(st.integers(-3, 10), st.integers(-3, 10))),
       st.sampled_from([None, "shell", "local", "nope"]))
def test_any_call_document(ws: Path, lines: list[str], line_range, agent):
    text = "\n".join(lines)
    got = resolve(ws / "notes.md", line_range, text=text, call_agent=agent)
    assert_plan_or_placed_problems(got, text)


inline_tasks = st.one_of(values, st.lists(st.one_of(values, st.dictionaries(
    st.one_of(st.sampled_from(sorted(WIRE_TASK_NAMES)), st.text(max_size=8)), values, max_size=6)), max_size=4))


@FAST
@given(inline_tasks)
def test_any_inline_task_list(ws: Path, tasks):
    assert_plan_or_placed_problems(resolve_inline(tasks, ws), None, document=False)
