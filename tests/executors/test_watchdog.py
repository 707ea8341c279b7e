"""The node's watchdog: when the worker running an attempt disappears, it ends that attempt's processes
(found by PAREX_RUN_ID, PAREX_TASK_ID and PAREX_ATTEMPT, whatever session they are in) and nothing else; it
survives what a Ray worker does to its children when it exits; and it leaves when stood down.

The worker here is a real process standing in for a Ray worker: a subreaper (as parex's process runner makes
it), it spawns the watchdog, then the agent (in a session of its own, with a setsid grandchild and a child
of that), and it is ended the way Ray ends a worker whose job finished: its direct children killed, then it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from parex_lsp.executors.ray import watchdog
from tests.support.processes import alive

WORKER = textwrap.dedent("""
    import os, subprocess, sys, time
    from parex_lsp.executors.ray import watchdog
    from parex_lsp.isolation import containment
    assert containment.become_subreaper()
    out, stand_down = sys.argv[1], sys.argv[2] == "stand-down"
    signal_out = watchdog.spawn("run-w", "t", "1")
    env = {**os.environ, "PAREX_RUN_ID": "run-w", "PAREX_TASK_ID": "t", "PAREX_ATTEMPT": "1"}
    agent = subprocess.Popen(["sh", "-c", "(setsid sh -c 'sleep 300; true' &); sleep 300; true"], env=env,
                             start_new_session=True)
    time.sleep(0.5)  # the grandchild has left the agent's session and been adopted
    if stand_down:
        watchdog.stand_down(signal_out)
    with open(out + ".tmp", "w") as f:
        f.write(str(agent.pid))
    os.rename(out + ".tmp", out)
    time.sleep(300)
""")


def _tagged(attempt: str) -> set[int]:
    """The live processes of run-w's task t, attempt `attempt` (found as the watchdog finds them)."""
    return {p for p in watchdog.attempt_processes("run-w", "t", attempt) if alive(p)}


def _watchdogs() -> list[tuple[int, int]]:
    """(pid, parent) of the watchdogs of run-w."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmd = (entry / "cmdline").read_bytes().split(b"\0")
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            if b"parex_lsp.executors.ray.watchdog" in cmd and b"run-w" in cmd and alive(int(entry.name)):
                found.append((int(entry.name), ppid))
    return found


def _children(pid: int) -> list[int]:
    out: list[int] = []
    for tid in os.listdir(f"/proc/{pid}/task"):
        out.extend(int(c) for c in Path(f"/proc/{pid}/task/{tid}/children").read_text().split())
    return out


def _until(check, within: float = 10.0) -> bool:
    deadline = time.monotonic() + within
    while not check() and time.monotonic() < deadline:
        time.sleep(0.05)
    return bool(check())


def _start_worker(tmp_path: Path, how: str) -> tuple[subprocess.Popen[bytes], Path]:
    ready = tmp_path / f"{how}.agent"
    worker = subprocess.Popen([sys.executable, "-c", WORKER, str(ready), how])
    assert _until(ready.exists), "the stand-in worker did not start its agent"
    return worker, ready


def _cleanup(*procs: subprocess.Popen[bytes]) -> None:
    for pid in _tagged("1") | _tagged("2") | {p for p, _ in _watchdogs()}:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def test_a_worker_ended_as_ray_ends_it_leaves_none_of_its_attempt_running(tmp_path: Path):
    env = {**os.environ, "PAREX_RUN_ID": "run-w", "PAREX_TASK_ID": "t", "PAREX_ATTEMPT": "2"}
    # a later attempt of the same task on this node: not this watchdog's business
    other = subprocess.Popen(["sleep", "300"], env=env, start_new_session=True)
    worker, _ = _start_worker(tmp_path, "die")
    try:
        doomed = _tagged("1")
        assert len(doomed) == 4, doomed  # the agent, its sleep, the setsid sh and its sleep
        [(dog, parent)] = _watchdogs()
        assert parent != worker.pid, "the watchdog is the worker's child: the worker's exit would kill it"
        time.sleep(0.3)
        assert _tagged("1") == doomed, "nothing is ended while the worker lives"
        for child in _children(worker.pid):  # what Ray does when a worker exits: its direct children first
            os.kill(child, signal.SIGKILL)
        worker.kill()
        worker.wait()
        assert _until(lambda: not _tagged("1")), f"left running: {_tagged('1')}"
        assert _until(lambda: not alive(dog)), "the watchdog stayed after its work"
        assert alive(other.pid)
    finally:
        _cleanup(worker, other)


def test_a_stood_down_watchdog_leaves_and_ends_nothing(tmp_path: Path):
    worker, _ = _start_worker(tmp_path, "stand-down")
    try:
        assert _until(lambda: not _watchdogs()), "the watchdog did not leave when stood down"
        doomed = _tagged("1")
        assert len(doomed) == 4, doomed
        worker.kill()
        worker.wait()
        time.sleep(0.5)
        assert _tagged("1") == doomed  # ending them was the worker's own business once it stood the watchdog down
    finally:
        _cleanup(worker)
