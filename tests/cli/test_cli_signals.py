"""Ctrl-C, SIGTERM and SIGHUP (the terminal closed) all stop a run the same clean way: agents' process groups
ended, locks released, journal closed, exit 128+signal; a second Ctrl-C kills at once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.cli.cli_helpers import PAREX, Pty, ended, kill_if_alive, read_pid, wait_for, write_plan

# The agent holds a lock on data.txt; its child sleeps in the same process group.
HOLDER = """
    [run]
    kill_grace = {grace}
    [[task]]
    id = "holder"
    prompt = "{trap}echo $$ > agent.pid; sh -c 'echo $$ > child.pid; exec sleep 60' & wait"
    files = ["data.txt"]
    [[task]]
    id = "after"
    prompt = "echo never > after.txt"
    depends_on = ["holder"]
"""


def _assert_stopped_cleanly(ws: Path) -> None:
    for name in ("agent.pid", "child.pid"):
        pid = read_pid(ws / name)
        assert pid is not None
        wait_for(lambda pid=pid: ended(pid), 10)
    owners = [p.name for p in (ws / ".parex" / "locks").glob("*.json")]  # lock owners; lock files stay
    assert owners == [], owners  # no lock left held
    journal = next((ws / ".parex" / "runs").glob("*/journal.jsonl"))
    events = [json.loads(line) for line in journal.read_text().splitlines()]
    assert events[-1]["kind"] == "runFinished" and events[-1]["data"]["status"] == "cancelled"
    ends = {e["taskId"]: e["kind"] for e in events if e["kind"] in ("cancelled", "skipped", "failed", "succeeded")}
    assert ends == {"holder": "cancelled", "after": "cancelled"}, ends
    assert not (ws / "after.txt").exists()


@pytest.mark.parametrize("signum,code", [(signal.SIGINT, 130), (signal.SIGTERM, 143), (signal.SIGHUP, 129)],
                         ids=["SIGINT", "SIGTERM", "SIGHUP"])
def test_a_stop_signal_ends_agents_releases_locks_and_closes_the_journal(workspace: Path, signum, code):
    write_plan(workspace, HOLDER.format(grace=5, trap=""))
    proc = subprocess.Popen([*PAREX, "run", "parex.toml"], cwd=workspace, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: read_pid(workspace / "child.pid"))
        proc.send_signal(signum)
        out, err = proc.communicate(timeout=30)
    finally:
        kill_if_alive(read_pid(workspace / "agent.pid"))
    assert proc.returncode == code, (out, err)
    assert "stopping 1 task" in out and "Ctrl-C again to force" in out, out
    assert "Traceback" not in err, err
    _assert_stopped_cleanly(workspace)


def test_the_terminal_closing_stops_the_run_cleanly(workspace: Path):
    # A real terminal goes away: writes to it fail from then on, and SIGHUP arrives.
    write_plan(workspace, HOLDER.format(grace=5, trap=""))
    term = Pty("run", "parex.toml", cwd=workspace)
    try:
        wait_for(lambda: read_pid(workspace / "child.pid"))
        term.wait_for_text("holder")
        os.close(term.master)
        term.signal(signal.SIGHUP)
        assert term.proc.wait(timeout=30) == 129
    finally:
        kill_if_alive(read_pid(workspace / "agent.pid"))
    _assert_stopped_cleanly(workspace)


def test_a_second_ctrl_c_kills_an_agent_that_ignores_sigterm(workspace: Path):
    write_plan(workspace, HOLDER.format(grace=60, trap="trap '' TERM; "))
    term = Pty("run", "parex.toml", cwd=workspace)
    try:
        wait_for(lambda: read_pid(workspace / "child.pid"))
        term.wait_for_text("holder")
        term.signal(signal.SIGINT)
        term.wait_for_text("Ctrl-C again to force")
        time.sleep(0.5)
        assert not ended(read_pid(workspace / "agent.pid"))  # it ignores TERM; the grace is a minute
        started = time.monotonic()
        term.signal(signal.SIGINT)
        assert term.finish(timeout=15) == 130, term.text
        assert time.monotonic() - started < 10
    finally:
        kill_if_alive(read_pid(workspace / "agent.pid"))
    assert "stopping 1 task" in term.text
    _assert_stopped_cleanly(workspace)


def test_a_second_ctrl_c_kills_every_candidate_of_a_best_of_task(workspace: Path):
    """A best-of task runs its candidates at once: the second Ctrl-C ends each one's tree, not only the one
    that started last."""
    subprocess.run(["git", "init", "-q", "-b", "main"], cwd=workspace, check=True)
    (workspace / ".gitignore").write_text("*.pid\n.parex/\nparex.toml\n")
    subprocess.run(["git", "add", "-A"], cwd=workspace, check=True)
    subprocess.run(["git", "-c", "user.name=dev", "-c", "user.email=d@x", "commit", "-qm", "base"], cwd=workspace,
                   check=True)
    write_plan(workspace, """
        [run]
        isolation = "worktree"
        kill_grace = 60
        max_concurrency = 2
        [[task]]
        id = "pick"
        best_of = 2
        prompt = "trap '' TERM; echo $$ > $PAREX_WORKSPACE/$PAREX_TASK_ID.pid; sleep 60 & wait"
    """)
    pids = [workspace / "pick@1.pid", workspace / "pick@2.pid"]
    term = Pty("run", "parex.toml", cwd=workspace)
    try:
        wait_for(lambda: all(read_pid(p) for p in pids))
        term.signal(signal.SIGINT)
        term.wait_for_text("Ctrl-C again to force")
        time.sleep(0.5)
        assert not any(ended(read_pid(p)) for p in pids)  # they ignore TERM; the grace is a minute
        term.signal(signal.SIGINT)
        assert term.finish(timeout=15) == 130, term.text
        for p in pids:
            pid = read_pid(p)
            wait_for(lambda pid=pid: ended(pid), 5)
    finally:
        for p in pids:
            kill_if_alive(read_pid(p))
