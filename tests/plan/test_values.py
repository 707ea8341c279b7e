"""Every number and path of a plan is checked against one table of ranges, with the key's position."""

from __future__ import annotations

from pathlib import Path

import pytest

from parex_lsp.plan import resolve, resolve_inline
from tests.support.plan_helpers import problems

TASK = '[[task]]\nid = "t"\nprompt = "true"\n'


def one_problem_at(path: Path, text: str, line: int) -> str:
    found = problems(path, text)
    assert len(found) == 1, found
    assert found[0].startswith(f"{path}:{line}:"), found
    return found[0]


@pytest.mark.parametrize("key", ["lock_timeout", "retry_backoff", "retry_backoff_max", "kill_grace"])
@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "-1", "-0.5", '"-5s"', "1e300", '"forever"'])
def test_run_durations_must_be_finite_and_not_negative(workspace: Path, key: str, value: str):
    msg = one_problem_at(workspace / "parex.toml", f"[run]\n{key} = {value}\n" + TASK, 2)
    assert key in msg


@pytest.mark.parametrize("key", ["timeout", "lock_timeout"])
@pytest.mark.parametrize("value", ["nan", "inf", "-1", "0", '"0s"', "1e400"])
def test_task_timeouts_must_be_positive_and_finite(workspace: Path, key: str, value: str):
    msg = one_problem_at(workspace / "parex.toml", TASK + f"{key} = {value}\n", 4)
    assert key in msg


@pytest.mark.parametrize("table,key,value", [
    ("run", "max_concurrency", "0"), ("run", "max_concurrency", "-3"), ("run", "retries", "-1"),
    ("run", "retries", "1" + "0" * 40), ("run", "max_concurrency", "9" * 500),
    ("agents.m", "max_steps", "0"), ("agents.m", "max_concurrency", "0"), ("agents.m", "temperature", "nan"),
    ("agents.m", "temperature", "-1"), ("agents.m", "request_timeout", "-inf"), ("agents.m", "command_timeout", "0"),
    ("agents.m", "prices", "{ input = -1.0 }"), ("agents.m", "prices", "{ input = nan }"),
    ("agents.m", "env", '{ "A=B" = "x" }'), ("run", "isolation", '"docker"'), ("agents.m", "output_format", '"xml"'),
])
def test_numbers_and_choices_out_of_range_are_named_at_their_key(workspace: Path, table: str, key: str, value: str):
    agent = '\nkind = "openai"\nbase_url = "http://127.0.0.1:9/v1"\nmodel = "m"' if table.startswith("agents") else ""
    text = f"[{table}]{agent}\n{key} = {value}\n" + TASK
    line = 2 + agent.count("\n")
    msg = one_problem_at(workspace / "parex.toml", text, line)
    assert key in msg


def test_durations_may_be_written_with_units_everywhere(workspace: Path):
    path = workspace / "parex.toml"
    path.write_text('[run]\nkill_grace = "2s"\nretry_backoff = 0\nretry_backoff_max = "1m"\n' + TASK)
    run = resolve(path).plan.run
    assert (run.kill_grace, run.retry_backoff, run.retry_backoff_max) == (2.0, 0.0, 60.0)


@pytest.mark.parametrize("pattern,why", [("../../etc/host*", "`..`"), ("/etc/hosts", "absolute"),
                                         ("~/.ssh/*", "absolute"), ("", "empty")])
def test_copy_files_may_not_leave_the_workspace(workspace: Path, pattern: str, why: str):
    msg = one_problem_at(workspace / "parex.toml", f'[run]\nisolation = "worktree"\ncopy_files = ["{pattern}"]\n'
                         + TASK, 3)
    assert "copy_files" in msg and why in msg


def test_a_nul_in_files_is_a_problem_at_its_line(workspace: Path):
    msg = one_problem_at(workspace / "parex.toml", TASK + 'files = ["src/\\u0000.py"]\n', 4)
    assert "NUL" in msg and "files" in msg


def test_inline_numbers_use_the_same_table(workspace: Path):
    got = resolve_inline([{"id": "a", "prompt": "true", "timeout": float("nan")},
                          {"id": "b", "prompt": "true", "retries": -1},
                          {"id": "c", "prompt": "true", "lockTimeout": float("inf")}], workspace)
    assert [p.code for p in got.problems] == ["bad-duration", "bad-value", "bad-duration"], got.problems
