"""Agents that daemonize (setsid -f, a double fork with setsid, nohup &) are contained: whatever they do to
their session or process group, nothing they started outlives the task, on success, timeout, cancel or a
runner killed by SIGKILL (the next run ends them). Real processes throughout."""

from __future__ import annotations

import ctypes
import ctypes.util
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import anyio
import pytest

from parex_lsp.isolation import cgroups, containment
from parex_lsp.isolation.processes import process_start
from tests.support.engine_helpers import make_run, running, until

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="containment needs Linux /proc")

# Three daemons, each leaving the agent's process group or not, two holding the output pipe open; each writes
# its pid, and the script returns once all three are up.
DAEMONS = f"""
setsid -f sh -c 'echo $$ > d-setsid.pid; exec sleep 300'
{sys.executable} -c '
import os, time
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        open("d-fork.pid", "w").write(str(os.getpid()))
        time.sleep(300)
    os._exit(0)
'
nohup sh -c 'echo $$ > d-nohup.pid; exec sleep 300' >/dev/null 2>&1 &
until [ -s d-setsid.pid ] && [ -s d-fork.pid ] && [ -s d-nohup.pid ]; do sleep 0.02; done
"""
NAMES = ("d-setsid.pid", "d-fork.pid", "d-nohup.pid")
PAREX = [sys.executable, "-m", "parex_lsp"]


def _pids(workspace: Path) -> list[int]:
    return [int((workspace / n).read_text()) for n in NAMES]


def _all_up(workspace: Path) -> bool:
    return all((workspace / n).exists() and (workspace / n).read_text().strip() for n in NAMES)


def _wait_for(predicate, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


def _assert_all_ended(pids: list[int], within: float = 3.0) -> None:
    deadline = time.monotonic() + within
    while any(process_start(p) is not None for p in pids) and time.monotonic() < deadline:
        time.sleep(0.02)
    alive = [p for p in pids if process_start(p) is not None]
    assert not alive, f"daemons still alive: {alive}"


@pytest.fixture(params=["cgroup", "subreaper", "scan"])
def mode(request, monkeypatch):
    """`cgroup`: a cgroup per agent (where the runner may make them). `subreaper`: no cgroups; the runner adopts
    orphans. `scan`: neither, as where prctl is unavailable (a full /proc scan for the task's environment and
    process group)."""
    if request.param == "cgroup":
        if cgroups.base() is None:
            pytest.skip("cgroup v2 is not writable here (not root, and no delegated cgroup)")
        yield request.param
        return
    monkeypatch.setattr(cgroups, "_probed", True)
    monkeypatch.setattr(cgroups, "_base", None)
    if request.param == "scan":
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(containment.PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0)
        monkeypatch.setattr(containment, "_subreaper", False)
        yield request.param
        monkeypatch.setattr(containment, "_subreaper", None)
        containment.become_subreaper()
    else:
        yield request.param


def _plan(workspace: Path, prompt: str, timeout: float | None = None) -> str:
    (workspace / "daemons.sh").write_text(DAEMONS)
    extra = f"timeout = {timeout}\n" if timeout else ""
    return f'[run]\nkill_grace = 1\n[[task]]\nid = "d"\nprompt = {json.dumps(prompt)}\n{extra}'


async def test_a_task_that_leaves_daemons_succeeds_promptly_and_leaves_none(workspace: Path, mode: str):
    run, _ = await make_run(workspace, _plan(workspace, "sh daemons.sh; echo done"))
    started = time.monotonic()
    with anyio.fail_after(20):
        result = await run.execute()
    elapsed = time.monotonic() - started
    assert result.status == "succeeded", result.to_wire()
    assert elapsed < 5, f"took {elapsed:.1f}s: the daemons' hold on stdout was waited for"
    assert "done" in (workspace / ".parex" / "runs" / run.run_id / "d.log").read_text()
    _assert_all_ended(_pids(workspace))


async def test_a_timed_out_task_leaves_no_daemon(workspace: Path, mode: str):
    run, _ = await make_run(workspace, _plan(workspace, "sh daemons.sh; sleep 60", timeout=1.5))
    started = time.monotonic()
    with anyio.fail_after(20):
        result = await run.execute()
    assert result.tasks[0].code == "timeout", result.to_wire()
    assert time.monotonic() - started < 6
    _assert_all_ended(_pids(workspace))


async def test_a_cancelled_task_leaves_no_daemon(workspace: Path, mode: str):
    run, _ = await make_run(workspace, _plan(workspace, "sh daemons.sh; sleep 60"))
    async with running(run) as done:
        await until(lambda: _all_up(workspace), within=20, poll=0.02)
        run.cancel()
    assert done[0].status == "cancelled"
    _assert_all_ended(_pids(workspace))


def test_daemons_of_a_runner_killed_by_sigkill_are_ended_by_the_next_run(workspace: Path):
    (workspace / "parex.toml").write_text(_plan(workspace, "sh daemons.sh; sleep 300"))
    (workspace / "other.parex.toml").write_text('[[task]]\nid = "x"\nprompt = "true"\n')
    runner = subprocess.Popen([*PAREX, "run", "parex.toml"], cwd=workspace, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        _wait_for(lambda: _all_up(workspace))
        agent = int(json.loads(next(line for line in next((workspace / ".parex" / "runs").glob("*/journal.jsonl"))
                                    .read_text().splitlines() if '"spawned"' in line))["data"]["pid"])
    finally:
        os.kill(runner.pid, signal.SIGKILL)
        runner.wait()
    pids = _pids(workspace)
    time.sleep(0.2)
    assert all(process_start(p) is not None for p in pids), "the attack needs the daemons alive"
    p = subprocess.run([*PAREX, "run", "other.parex.toml", "--json"], cwd=workspace, capture_output=True,
                       text=True, timeout=60)
    assert p.returncode == 0, p.stdout + p.stderr
    _assert_all_ended([*pids, agent])
    journal = max((workspace / ".parex" / "runs").glob("*/journal.jsonl"))
    ended = [json.loads(line) for line in journal.read_text().splitlines() if '"orphansEnded"' in line]
    listed = {e["pid"] for e in ended[0]["data"]["processes"]}
    assert agent in listed and set(pids[:2]) <= listed, (agent, pids, listed)  # nohup's ended with the group


async def test_in_a_cgroup_even_a_daemon_that_cleared_its_environment_is_ended(workspace: Path):
    # Without a cgroup such a daemon cannot be told apart once orphaned: the stated limit.
    if cgroups.base() is None:
        pytest.skip("cgroup v2 is not writable here (not root, and no delegated cgroup)")
    (workspace / "bare.sh").write_text("env -i setsid -f /bin/sh -c 'echo $$ > d-bare.pid; exec sleep 300'\n"
                                       "until [ -s d-bare.pid ]; do sleep 0.02; done\n")
    run, _ = await make_run(workspace, '[[task]]\nid = "bare"\nprompt = "sh bare.sh"\n')
    with anyio.fail_after(20):
        assert (await run.execute()).status == "succeeded"
    pid = int((workspace / "d-bare.pid").read_text())
    _assert_all_ended([pid])
    ours = list(cgroups.base().glob(f"parex-{os.getpid()}-*"))
    assert ours and not [c for c in ours if (c / "cgroup.procs").read_text().strip()], "emptied, kept for reuse"


def test_adopted_orphans_are_reaped_not_left_as_zombies():
    assert containment.become_subreaper()
    child = subprocess.Popen([sys.executable, "-c", "import os, time\npid = os.fork()\n"
                              "if pid: print(pid, flush=True)\nelse: time.sleep(0.05)"],
                             start_new_session=True, stdout=subprocess.PIPE, text=True)
    grandchild = int(child.stdout.readline())
    child.wait()
    deadline = time.monotonic() + 5  # the grandchild, adopted by us, exits: our zombie now
    while (containment._stat(grandchild) or ("R",))[0] != "Z":
        assert time.monotonic() < deadline, "the attack needs an adopted zombie"
        time.sleep(0.01)
    assert containment._stat(grandchild)[1] == os.getpid()
    assert containment.reap_adopted() >= 1
    assert containment._stat(grandchild) is None
