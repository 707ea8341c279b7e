"""`parex-lsp cancel [RUN] [TASK]`: stop a run started by `parex-lsp run` in another terminal, or one task of it.

The runner is the process its journal names. A whole run gets SIGTERM, which it handles as Ctrl-C (agents'
process groups ended, locks released, journal closed). One task is asked for in the run's cancel-requests
file, and SIGUSR1 tells the runner to read it. A language server's run is cancelled from its editor: the
server is never signalled from here."""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

from parex_lsp import state
from parex_lsp.cli.picking import Refused, pick
from parex_lsp.cli.workspace import Workspace
from parex_lsp.contract import TERMINAL, RunStatus
from parex_lsp.engine.journal import replay

REQUEST_SIGNAL = signal.SIGUSR1  # "read your cancel-requests file"
WAIT = 60.0  # seconds to wait for the runner to report the end (kill_grace and more)


def cancel(ws: Workspace, refs: list[str], wait: bool = True) -> int:
    picked = pick(ws, refs, task_wanted=True)
    run = picked.run
    if run.status != RunStatus.RUNNING:
        raise Refused(f"run {run.run_id} is not running ({run.status}): nothing to cancel")
    if run.pid is None or not is_cli_runner(run.pid):
        raise Refused(f"run {run.run_id} runs in a language server (pid {run.pid}): cancel it from its editor "
                      "(the parex.cancel command)")
    task = picked.task
    if task is None:
        os.kill(run.pid, signal.SIGTERM)
        print(f"parex: asked run {run.run_id} (pid {run.pid}) to stop", file=sys.stderr)
    else:
        if run.tasks[task].status in TERMINAL:
            raise Refused(f"task {task} of run {run.run_id} has ended ({run.tasks[task].status})")
        with state.cancel_requests_path(ws.path, run.run_id).open("a", encoding="utf-8") as f:
            f.write(task + "\n")
        os.kill(run.pid, REQUEST_SIGNAL)
        print(f"parex: asked run {run.run_id} (pid {run.pid}) to cancel {task}", file=sys.stderr)
    if not wait:
        return 0
    ended = _wait_for_end(picked.journal, task)
    if ended is None:
        print(f"parex: run {run.run_id} has not reported the end after {WAIT:.0f}s", file=sys.stderr)
        return 1
    print(f"{task or 'run ' + run.run_id}: {ended}")
    return 0


def _wait_for_end(journal: Path, task: str | None) -> str | None:
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        r = replay(journal)
        if task is not None and r.tasks[task].status in TERMINAL:
            return r.tasks[task].status
        if r.status != RunStatus.RUNNING:
            return r.status if task is None else r.tasks[task].status
        time.sleep(0.1)
    return None


def is_cli_runner(pid: int) -> bool:
    """Whether `pid` is a `parex-lsp run` (not an editor's language server, nor a reused pid)."""
    try:
        args = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    words = [a.decode("utf-8", "replace") for a in args if a]
    return any("parex" in w for w in words) and "run" in words[1:]


def read_requests(workspace: Path, run_id: str, seen: int) -> tuple[list[str], int]:
    """Task ids asked for since the first `seen` lines (for the runner)."""
    try:
        lines = state.cancel_requests_path(workspace, run_id).read_text(encoding="utf-8").splitlines()
    except OSError:
        return [], seen
    return [line for line in lines[seen:] if line], len(lines)
