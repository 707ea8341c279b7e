"""`python -m parex_lsp.executors.ray.watchdog RUN_ID TASK_ID ATTEMPT`, its standard input a pipe whose write
end only the Ray worker running the attempt holds: started on the node for each attempt. When the worker
disappears (a force cancel, a crash, Ray ending the job of a driver that died) the pipe reaches its end, and the
watchdog ends the attempt's processes: the agent leads a session of its own and would outlive the worker.
They are found by the PAREX_RUN_ID, PAREX_TASK_ID and PAREX_ATTEMPT they inherit (isolation/containment.py),
grandchildren that left the agent's session included. When the attempt ends well, the worker writes
`STAND_DOWN` before it closes the pipe, and the watchdog leaves.

It must not be the worker's child: a Ray worker that exits kills its direct children, which would take the
watchdog with them and leave the agent's deeper descendants running. So it detaches at once (`main` forks and
its first process exits) while the worker is no subreaper (`spawn`), and init adopts it."""

from __future__ import annotations

import os
import subprocess
import sys

from parex_lsp.isolation import containment

STAND_DOWN = b"done"


def attempt_processes(run_id: str, task_id: str, attempt: str) -> list[int]:
    return [pid for pid, (_, task) in containment.tagged_processes({run_id}).items()
            if task == task_id and containment.environ_values(pid, "PAREX_ATTEMPT").get("PAREX_ATTEMPT") == attempt]


def end_attempt(run_id: str, task_id: str, attempt: str) -> int:
    """SIGKILL the attempt's processes until none is left; how many were killed."""
    return len(containment.kill_until_gone(lambda: attempt_processes(run_id, task_id, attempt)))


def watch(signal_in: int, run_id: str, task_id: str, attempt: str) -> int:
    """Wait for the end of `signal_in`; end the attempt unless the worker stood the watchdog down first. How
    many processes were killed."""
    said = b""
    while chunk := os.read(signal_in, 64):
        said += chunk
    return 0 if said == STAND_DOWN else end_attempt(run_id, task_id, attempt)


def spawn(run_id: str, task_id: str, attempt: str) -> int:
    """Start a detached watchdog for the attempt; the write end of its pipe, which only this process holds
    (not inherited by anything it spawns later). Write `STAND_DOWN` to it, then close it, when the attempt is over."""
    read_end, write_end = os.pipe()
    try:
        with containment.orphans_to_init():
            first = subprocess.Popen(
                [sys.executable, "-m", "parex_lsp.executors.ray.watchdog", run_id, task_id, attempt], stdin=read_end,
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True, close_fds=True)
            first.wait()  # it exits once it has forked the watchdog, which init adopts
    finally:
        os.close(read_end)
    return write_end


def stand_down(write_end: int) -> None:
    try:
        os.write(write_end, STAND_DOWN)
    finally:
        os.close(write_end)


def main(argv: list[str]) -> int:
    run_id, task_id, attempt = argv
    if os.fork():
        os._exit(0)  # the first process goes; its child, the watchdog, is nobody's child but init's
    watch(sys.stdin.fileno(), run_id, task_id, attempt)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
