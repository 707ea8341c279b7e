"""`python -m parex_lsp.executors.ray.watchdog WORKER_PID RUN_ID TASK_ID ATTEMPT`: started on the node for each
attempt, in a session of its own. When the Ray worker running the attempt disappears (a force cancel, a
crash), it ends the attempt's processes: the agent leads a session of its own and would outlive the worker.
They are found by the PAREX_RUN_ID, PAREX_TASK_ID and PAREX_ATTEMPT they inherit (isolation/containment.py),
grandchildren that left the agent's session included. The worker kills the watchdog when the attempt ends."""

from __future__ import annotations

import sys
import time

from parex_lsp.isolation import containment
from parex_lsp.isolation.processes import pid_alive, process_start

POLL = 0.1  # seconds between looks at the worker


def attempt_processes(run_id: str, task_id: str, attempt: str) -> list[int]:
    return [pid for pid, (_, task) in containment.tagged_processes({run_id}).items()
            if task == task_id and containment.environ_values(pid, "PAREX_ATTEMPT").get("PAREX_ATTEMPT") == attempt]


def end_attempt(run_id: str, task_id: str, attempt: str) -> int:
    """SIGKILL the attempt's processes until none is left; how many were killed."""
    return len(containment.kill_until_gone(lambda: attempt_processes(run_id, task_id, attempt)))


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
