"""`status` and the live table say what is going on: whole run ids at any width, time so far of running tasks,
the file a task waits for, a back-off as a back-off; and every command finds the runs from the current folder."""

from __future__ import annotations

import json
import re
import signal
import subprocess
from pathlib import Path

from tests.cli.cli_helpers import PAREX, Pty, kill_if_alive, parex, read_pid, wait_for, write_plan


def test_status_never_cuts_run_ids_in_a_narrow_terminal(workspace: Path):
    write_plan(workspace, '[[task]]\nid = "a-task-with-a-long-name"\nprompt = "exit 1"\n')
    run_id = json.loads(parex("run", "parex.toml", "--json", cwd=workspace).stdout.splitlines()[-1])["runId"]
    narrow = {"COLUMNS": "40"}
    listing = parex("status", cwd=workspace, env=narrow)
    assert listing.returncode == 0, listing.stderr
    assert run_id in listing.stdout and str(workspace / "parex.toml") in listing.stdout, listing.stdout
    detail = parex("status", run_id, cwd=workspace, env=narrow)
    assert run_id in detail.stdout and "a-task-with-a-long-name" in detail.stdout, detail.stdout
    assert "exited with code 1" in detail.stdout


def test_status_shows_time_so_far_and_what_a_task_waits_for(workspace: Path):
    holder = write_plan(workspace, '[[task]]\nid = "hold"\nprompt = "echo $$ > hold.pid; exec sleep 60"\n'
                                   'files = ["data.txt"]\n', "hold.parex.toml")
    write_plan(workspace, '[[task]]\nid = "wants"\nprompt = "true"\nfiles = ["data.txt"]\n', "want.parex.toml")
    a = subprocess.Popen([*PAREX, "run", holder.name], cwd=workspace, stdout=subprocess.DEVNULL)
    b = None
    try:
        wait_for(lambda: read_pid(workspace / "hold.pid"))
        b = subprocess.Popen([*PAREX, "run", "want.parex.toml"], cwd=workspace, stdout=subprocess.DEVNULL)

        def waiting() -> bool:
            runs = json.loads(parex("status", "--json", cwd=workspace).stdout)["runs"]
            return len(runs) == 2 and runs[-1]["tasks"].get("wants") == "waiting"
        wait_for(waiting)
        runs = json.loads(parex("status", "--json", cwd=workspace).stdout)["runs"]
        hold_id, want_id = runs[0]["runId"], runs[1]["runId"]
        shown = parex("status", want_id, cwd=workspace).stdout
        assert re.search(r"wants\s+waiting\s+.*waiting for data\.txt", shown), shown
        elapsed = re.compile(r"hold\s+running\s+1\s+[1-9]\d*\.\ds")  # time so far, not 0.0s or blank
        wait_for(lambda: elapsed.search(parex("status", hold_id, cwd=workspace).stdout), 10)
        shown = parex("status", hold_id, cwd=workspace).stdout
        assert f"parex-lsp cancel {hold_id}" in shown
    finally:
        a.send_signal(signal.SIGINT)
        a.wait(30)
        kill_if_alive(read_pid(workspace / "hold.pid"))
        if b is not None:
            assert b.wait(30) == 0  # the lock was released: the waiting run went on


def test_the_live_table_shows_a_back_off_as_retrying_in(workspace: Path):
    write_plan(workspace, """
        [run]
        retry_backoff = 3
        [agents.shell]
        retry_on = ["busy"]
        [[task]]
        id = "flaky"
        prompt = "test -e once || { touch once; echo 'server busy'; exit 1; }; echo fine"
    """)
    term = Pty("run", "parex.toml", cwd=workspace)
    term.wait_for_text(re.compile(r"flaky\s+│\s+retrying in [2-6]s"))
    assert term.finish() == 0, term.text
    assert not re.search(r"flaky\s+│\s+running\s+│\s+1\s+│\s+[1-6]\.\ds", term.text), term.text


def test_status_finds_the_runs_of_a_plan_run_from_the_folder_above(tmp_path: Path):
    # As in the README: `parex-lsp run examples/demo` from the repository root, then `parex-lsp status`.
    demo = tmp_path / "examples" / "demo"
    demo.mkdir(parents=True)
    write_plan(demo, '[[task]]\nid = "a"\nprompt = "true"\n')
    (tmp_path / "examples" / "other").mkdir()
    write_plan(tmp_path / "examples" / "other", '[[task]]\nid = "b"\nprompt = "true"\n')  # never run
    run = parex("run", "examples/demo", "--json", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    run_id = json.loads(run.stdout.splitlines()[-1])["runId"]
    listing = parex("status", cwd=tmp_path)
    assert listing.returncode == 0 and run_id in listing.stdout, listing.stdout + listing.stderr
    assert "examples/demo" in listing.stderr  # it says which folder it read
    last = parex("status", "last", "--json", cwd=tmp_path)
    assert json.loads(last.stdout)["runId"] == run_id and json.loads(last.stdout)["workspace"] == str(demo)
    here = parex("status", cwd=demo)  # the folder itself: nothing to say about where
    assert run_id in here.stdout and here.stderr == ""
    empty = tmp_path / "empty"
    empty.mkdir()
    none = parex("status", cwd=empty)
    assert none.returncode == 0 and f"no runs in {empty}" in none.stdout
