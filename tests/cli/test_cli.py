"""`parex-lsp run` / `status` as a user runs them: a real process, exit codes, output, signals, resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.cli.cli_helpers import PAREX, parex, write_plan
from tests.cli.cli_helpers import ended as _ended
from tests.cli.cli_helpers import wait_for as _wait_for
from tests.support.engine_helpers import intervals, max_overlap, stamped


def test_success_exits_0_and_json_is_the_last_stdout_line(workspace: Path):
    write_plan(workspace, """
        [[task]]
        id = "hello"
        prompt = "echo hello"
    """)
    p = parex("run", "parex.toml", "--json", cwd=workspace)
    assert p.returncode == 0, p.stderr
    result = json.loads(p.stdout.strip().splitlines()[-1])
    assert result["status"] == "succeeded"
    assert set(result) >= {"runId", "status", "tasks", "wallMs", "workMs", "speedup"}
    assert result["tasks"][0]["logUri"].startswith("file://")
    assert "[hello] hello" in p.stderr  # progress went to stderr, stdout holds only the result


def test_a_failure_exits_1_with_its_reason_and_log_in_the_summary(workspace: Path):
    write_plan(workspace, """
        [[task]]
        id = "broken"
        prompt = "echo 'src/app.py:3:5: undefined name'; exit 7"
    """)
    p = parex("run", ".", cwd=workspace)
    assert p.returncode == 1
    assert "exited with code 7" in p.stdout
    assert "src/app.py:3:5: undefined name" in p.stdout
    assert "broken.log" in p.stdout
    assert "--resume" in p.stdout


INVALID = [
    ("unknown field", '[[task]]\nid = "a"\nprompt = "true"\ncolour = "red"\n', 4, "colour"),
    ("duplicate id", '[[task]]\nid = "a"\nprompt = "true"\n[[task]]\nid = "a"\nprompt = "true"\n', 5, "duplicate"),
    ("unknown dependency", '[[task]]\nid = "a"\nprompt = "true"\ndepends_on = ["nope"]\n', 4, "nope"),
    ("cycle", '[[task]]\nid = "a"\nprompt = "true"\ndepends_on = ["b"]\n'
              '[[task]]\nid = "b"\nprompt = "true"\ndepends_on = ["a"]\n', None, "cycle"),
    ("unknown agent", '[[task]]\nid = "a"\nprompt = "true"\nagent = "robot"\n', 4, "robot"),
    ("bad timeout", '[[task]]\nid = "a"\nprompt = "true"\ntimeout = "soon"\n', 4, "timeout"),
    ("escaping files", '[[task]]\nid = "a"\nprompt = "true"\nfiles = ["../outside.txt"]\n', 4, "outside"),
    ("toml syntax", '[[task]\nid = "a"\n', 1, ""),
]


@pytest.mark.parametrize("name,toml,line,word", INVALID, ids=[c[0] for c in INVALID])
def test_an_invalid_plan_exits_2_naming_the_problem_at_its_place(workspace: Path, name, toml, line, word):
    write_plan(workspace, toml)
    (workspace / "marker").write_text("untouched")
    p = parex("run", "parex.toml", cwd=workspace)
    assert p.returncode == 2, (p.stdout, p.stderr)
    first = p.stderr.splitlines()[0]
    path, lineno, col, message = first.split(":", 3)
    assert path.endswith("parex.toml") and int(col) >= 1
    if line is not None:
        assert int(lineno) == line, first
    assert word.lower() in message.lower(), first
    assert not (workspace / ".parex" / "runs").exists()  # nothing ran


def test_every_problem_is_reported_at_once(workspace: Path):
    write_plan(workspace, '[[task]]\nid = "a"\nprompt = "true"\nagent = "robot"\ndepends_on = ["ghost"]\n'
                          'timeout = "later"\n')
    p = parex("run", "parex.toml", cwd=workspace)
    assert p.returncode == 2
    located = [ln for ln in p.stderr.splitlines() if ln.startswith(str(workspace / "parex.toml") + ":")
               or ln.startswith("parex.toml:")]
    assert len(located) == 3, p.stderr


def test_a_cycle_is_named(workspace: Path):
    write_plan(workspace, INVALID[3][1])
    p = parex("run", "parex.toml", cwd=workspace)
    assert "a → b → a" in p.stderr or "a -> b -> a" in p.stderr or "b → a → b" in p.stderr, p.stderr


def test_ctrl_c_cancels_cleanly_with_exit_130(workspace: Path):
    write_plan(workspace, """
        [[task]]
        id = "long"
        prompt = "sh -c 'echo $$ > child.pid; exec sleep 60' & wait"
    """)
    proc = subprocess.Popen([*PAREX, "run", "parex.toml"], cwd=workspace, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    _wait_for(lambda: (workspace / "child.pid").exists() and (workspace / "child.pid").read_text().strip())
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, (out, err)
    assert "cancelled" in out
    pid = int((workspace / "child.pid").read_text())
    _wait_for(lambda: _ended(pid), 5)
    journal = next((workspace / ".parex" / "runs").glob("*/journal.jsonl"))
    last = json.loads(journal.read_text().splitlines()[-1])
    assert last["kind"] == "runFinished" and last["data"]["status"] == "cancelled"


def test_resume_after_the_runner_was_sigkilled(workspace: Path):
    # Three quick tasks succeed, one hangs; the runner dies by SIGKILL; resume finishes without rerunning them.
    write_plan(workspace, """
        [run]
        max_concurrency = 4
        [[task]]
        id = "one"
        prompt = "echo one >> ran"
        [[task]]
        id = "two"
        prompt = "echo two >> ran"
        [[task]]
        id = "three"
        prompt = "echo three >> ran"
        depends_on = ["one"]
        [[task]]
        id = "slow"
        prompt = "echo slow >> ran; test -e go || { echo $$ > slow.pid; exec sleep 60; }"
    """)
    proc = subprocess.Popen([*PAREX, "run", "parex.toml"], cwd=workspace, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    _wait_for(lambda: (workspace / "ran").exists() and len((workspace / "ran").read_text().split()) == 4
              and (workspace / "slow.pid").exists() and (workspace / "slow.pid").read_text().strip())
    time.sleep(0.3)  # the three quick ones have ended and been journaled
    os.kill(proc.pid, signal.SIGKILL)  # the runner dies, as in a crash; its agent lives on in its own group
    proc.wait()
    orphan = int((workspace / "slow.pid").read_text())
    assert not _ended(orphan)
    (workspace / "go").touch()
    status = parex("status", "last", "--json", cwd=workspace)
    assert json.loads(status.stdout)["status"] == "interrupted"
    p = parex("run", "parex.toml", "--resume", "last", "--json", cwd=workspace)
    assert p.returncode == 0, p.stdout + p.stderr
    ran = (workspace / "ran").read_text().split()
    assert sorted(ran) == ["one", "slow", "slow", "three", "two"]  # only the interrupted task ran again
    result = json.loads(p.stdout.splitlines()[-1])
    assert {t["id"]: t.get("reusedFrom") is not None for t in result["tasks"]} == {
        "one": True, "two": True, "three": True, "slow": False}
    _wait_for(lambda: _ended(orphan), 5)  # the next run ended the dead runner's agent
    again = json.loads(parex("status", "--json", cwd=workspace).stdout)["runs"]
    assert [r["status"] for r in again] == ["interrupted", "succeeded"]


def test_two_runners_on_one_workspace_never_overlap_on_shared_files(workspace: Path):
    tasks = "".join(f'[[task]]\nid = "{p}{i}"\nprompt = "{stamped(p + str(i), "sleep 0.3")}"\nfiles = ["data/*.csv"]\n'
                    for p in ("x",) for i in range(3))
    write_plan(workspace, "[run]\nmax_concurrency = 3\n" + tasks, "x.parex.toml")
    write_plan(workspace, "[run]\nmax_concurrency = 3\n" + tasks.replace('"x', '"y').replace("t/x", "t/y"),
               "y.parex.toml")
    a = subprocess.Popen([*PAREX, "run", "x.parex.toml"], cwd=workspace, stdout=subprocess.PIPE, text=True)
    b = subprocess.Popen([*PAREX, "run", "y.parex.toml"], cwd=workspace, stdout=subprocess.PIPE, text=True)
    out_a, _ = a.communicate(timeout=60)
    out_b, _ = b.communicate(timeout=60)
    assert a.returncode == 0 and b.returncode == 0, out_a + out_b
    spans = intervals(workspace / "t")
    assert len(spans) == 6
    assert max_overlap(spans.values()) == 1
    assert "waiting for data/*.csv" in out_a + out_b


def test_status_lists_runs(workspace: Path):
    write_plan(workspace, '[[task]]\nid = "a"\nprompt = "true"\n')
    parex("run", "parex.toml", cwd=workspace)
    p = parex("status", "--json", cwd=workspace)
    runs = json.loads(p.stdout)["runs"]
    assert len(runs) == 1 and runs[0]["status"] == "succeeded" and runs[0]["tasks"] == {"a": "succeeded"}
    assert parex("status", "no-such-run", cwd=workspace).returncode == 2


def test_a_run_that_cannot_start_exits_2_and_says_why(workspace: Path):
    write_plan(workspace, '[[task]]\nid = "a"\nprompt = "echo ran > ran"\n')
    unknown = parex("run", "parex.toml", "--only", "ghost", cwd=workspace)
    assert unknown.returncode == 2 and "ghost" in unknown.stderr
    no_history = parex("run", "parex.toml", "--resume", "last", cwd=workspace)
    assert no_history.returncode == 2 and "no run to resume" in no_history.stderr
    assert not (workspace / "ran").exists()


def test_a_document_with_call_lines_runs_them(workspace: Path):
    (workspace / "parex.toml").write_text('[run]\nmax_concurrency = 2\ncall_agent = "shell"\n')
    (workspace / "docs").mkdir()
    notes = workspace / "docs" / "todo.md"
    notes.write_text("# todo\ncall1: echo first > one.txt\ncall2: echo second > two.txt\n")
    p = parex("run", "docs/todo.md", "--json", cwd=workspace)
    assert p.returncode == 0, p.stderr
    assert [t["id"] for t in json.loads(p.stdout.splitlines()[-1])["tasks"]] == ["call1", "call2"]
    assert (workspace / "one.txt").exists() and (workspace / "two.txt").exists()  # run in the workspace
    empty = workspace / "empty.md"
    empty.write_text("nothing to run\n")
    p = parex("run", "empty.md", cwd=workspace)
    assert p.returncode == 2 and "empty.md:1:1:" in p.stderr and "call1:" in p.stderr


def test_plain_progress_says_when_and_why_a_task_is_retried(workspace: Path):
    write_plan(workspace, """
        [run]
        retry_backoff = 0.01
        [agents.shell]
        retry_on = ["rate limit"]
        [[task]]
        id = "flaky"
        prompt = "test -e once && echo fine || { touch once; echo 'rate limit hit'; exit 1; }"
    """)
    p = parex("run", "parex.toml", cwd=workspace)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "[flaky] attempt 1 failed (exited with code 1 after `rate limit hit`); retrying in" in p.stdout
