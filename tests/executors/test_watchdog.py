"""The node's watchdog: when the worker running an attempt disappears, it ends that attempt's processes
(found by PAREX_RUN_ID, PAREX_TASK_ID and PAREX_ATTEMPT, whatever session they are in) and nothing else."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.support.processes import alive as _alive


def _agent(tmp_path: Path, attempt: str) -> tuple[subprocess.Popen[bytes], Path]:
    """An agent in a session of its own with a setsid grandchild, as the node's process runner starts one."""
    pids = tmp_path / f"attempt-{attempt}.pids"
    env = {**os.environ, "PAREX_RUN_ID": "run-w", "PAREX_TASK_ID": "t", "PAREX_ATTEMPT": attempt}
    proc = subprocess.Popen(["sh", "-c", f"(setsid sleep 300 & echo $$ $! > {pids}.tmp; mv {pids}.tmp {pids}); "
                             "sleep 300"], env=env, start_new_session=True)
    deadline = time.monotonic() + 10
    while not pids.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    return proc, pids


def test_the_watchdog_ends_its_attempt_when_the_worker_disappears(tmp_path: Path):
    worker = subprocess.Popen(["sleep", "300"])
    first, first_pids = _agent(tmp_path, "1")
    other, other_pids = _agent(tmp_path, "2")  # a later attempt of the same task on this node: not its business
    watchdog = subprocess.Popen([sys.executable, "-m", "parex_lsp.executors.ray.watchdog", str(worker.pid),
                                 "run-w", "t", "1"], start_new_session=True)
    try:
        time.sleep(0.5)
        doomed = [int(p) for p in first_pids.read_text().split()]
        assert all(_alive(p) for p in doomed), "nothing is ended while the worker lives"
        worker.kill()
        worker.wait()
        assert watchdog.wait(timeout=10) == 0
        assert not any(_alive(p) for p in doomed)
        assert all(_alive(int(p)) for p in other_pids.read_text().split())
    finally:
        for proc in (worker, watchdog, first, other):
            if proc.poll() is None:
                proc.kill()
        for pids in (first_pids, other_pids):
            for p in pids.read_text().split() if pids.exists() else ():
                try:
                    os.kill(int(p), signal.SIGKILL)
                except ProcessLookupError:
                    pass
        first.wait()
        other.wait()
