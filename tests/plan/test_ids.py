"""Task ids are safe as file names and git ref components, by one rule, in every plan form."""

from __future__ import annotations

from pathlib import Path

import pytest

from parex_lsp.plan import MAX_ID_LENGTH, id_problem, resolve, resolve_inline
from tests.support.plan_helpers import problems

BAD = [".", "..", "-rf", ".hidden", "a..b", "trailing.", "branch.lock", "a/b", "a b", "", "x" * (MAX_ID_LENGTH + 1),
       "naïve"]
GOOD = ["a", "api-v2", "step_1.sub", "A9", "x" * MAX_ID_LENGTH]


@pytest.mark.parametrize("task_id", BAD)
def test_unsafe_ids_are_refused_in_a_toml_plan_at_their_line(workspace: Path, task_id: str):
    found = problems(workspace / "parex.toml", f'[run]\nretries = 0\n\n[[task]]\nid = "{task_id}"\nprompt = "true"\n')
    assert len(found) == 1 and found[0].startswith(f"{workspace / 'parex.toml'}:5:1:") and "task id" in found[0], found


@pytest.mark.parametrize("task_id", BAD)
def test_unsafe_ids_are_refused_in_an_inline_plan(workspace: Path, task_id: str):
    got = resolve_inline([{"id": task_id, "prompt": "true"}], workspace)
    assert got.plan is None and [p.code for p in got.problems] == ["bad-id"], got.problems


@pytest.mark.parametrize("task_id", GOOD)
def test_safe_ids_pass(task_id: str):
    assert id_problem(task_id) is None


def test_a_call_number_too_long_for_an_id_is_refused_on_its_line(workspace: Path):
    doc = workspace / "notes.md"
    doc.write_text("intro\n\ncall" + "1" * MAX_ID_LENGTH + ": echo hi\n")
    got = resolve(doc, call_agent="shell")
    assert got.plan is None and [p.format().split(": ")[0] for p in got.problems] == [f"{doc}:3:1"], got.problems
    assert f"the limit is {MAX_ID_LENGTH}" in got.problems[0].message
