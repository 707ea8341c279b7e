"""`python -m parex_lsp.executors.ray.watchdog WORKER_PID RUN_ID TASK_ID ATTEMPT`: started on the node for each
attempt, in a session of its own. When the Ray worker running the attempt disappears (a force cancel, a
crash), it ends the attempt's processes: the agent leads a session of its own and would outlive the worker.
They are found by the PAREX_RUN_ID, PAREX_TASK_ID and PAREX_ATTEMPT they inherit (isolation/containment.py),
grandchildren that left the agent's session included. The worker kills the watchdog when the attempt ends."""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

from parex_lsp.isolation import containment
from parex_lsp.isolation.processes import pid_alive, process_start

POLL = 0.1  # seconds between looks at the worker
ROUNDS = 100  # kill passes: a process may fork while the others are being killed


def attempt_of(pid: int) -> str | None:
    try:
        raw = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return None
    for entry in raw.split(b"\0"):
        if entry.startswith(b"PAREX_ATTEMPT="):
            return entry[len(b"PAREX_ATTEMPT="):].decode(errors="replace")
    return None


def attempt_processes(run_id: str, task_id: str, attempt: str) -> list[int]:
    return [pid for pid, (_, task) in containment.tagged_processes({run_id}).items()
            if task == task_id and attempt_of(pid) == attempt]


def end_attempt(run_id: str, task_id: str, attempt: str) -> int:
    """SIGKILL the attempt's processes until none is left; how many were killed."""
    killed: set[int] = set()
    for _ in range(ROUNDS):
        found = attempt_processes(run_id, task_id, attempt)
        if not found:
            break
        for pid in found:
            try:
                os.kill(pid, signal.SIGKILL)
                killed.add(pid)
            except (ProcessLookupError, PermissionError):
                pass
        time.sleep(0.005)
    return len(killed)


def watch(worker: int, run_id: str, task_id: str, attempt: str) -> int:
    started = process_start(worker)
    while pid_alive(worker, started):
        time.sleep(POLL)
    return end_attempt(run_id, task_id, attempt)


def main(argv: list[str]) -> int:
    worker, run_id, task_id, attempt = int(argv[0]), argv[1], argv[2], argv[3]
    watch(worker, run_id, task_id, attempt)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
