"""Agents outlive a runner that died abruptly (SIGKILL, power loss). The next run in the workspace ends them,
so a crash never leaves an agent working unseen: the agents' process groups (pid and start time from the
journal), and every process started with the dead run's `PAREX_RUN_ID`, however it left its group (a daemon
that replaced its environment is the limit: see isolation/containment.py)."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

from parex_lsp.contract import Event, EventKind, RunStatus, Wire
from parex_lsp.engine.journal import Journal, list_runs, replay
from parex_lsp.isolation.containment import end_tagged
from parex_lsp.isolation.processes import process_start

_TAIL = 64 * 1024


def _finished(journal: Path) -> bool:
    """Whether the journal's last line is `runFinished`, without reading the whole journal."""
    with journal.open("rb") as f:
        size = f.seek(0, os.SEEK_END)
        f.seek(max(0, size - _TAIL))
        tail = f.read().rstrip(b"\n")
    start = tail.rfind(b"\n") + 1
    if start == 0 and size > _TAIL:
        return False  # a last line longer than the tail: let replay decide
    return b'"kind":"runFinished"' in tail[start:start + 200]


def end_orphans(workspace: Path) -> list[dict[str, Any]]:
    """SIGKILL the agents of runs whose runner died, and all they started; what was ended, for the record."""
    ended: list[dict[str, Any]] = []
    dead: list[Journal] = []
    for journal in list_runs(workspace):
        if _finished(journal):
            continue
        record = replay(journal)
        if record.status != RunStatus.INTERRUPTED:
            continue
        for task in record.tasks.values():
            if task.status != "running" or not task.pid or process_start(task.pid) != task.pid_start:
                continue
            try:
                os.killpg(task.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                continue
            ended.append({"runId": record.run_id, "taskId": task.id, "pid": task.pid})
        dead.append(Journal(workspace, record.run_id))
    listed = {e["pid"] for e in ended}
    for pid, run_id, task_id in end_tagged({j.path.parent.name for j in dead}):
        if pid not in listed:
            ended.append({"runId": run_id, "taskId": task_id, "pid": pid})
    # Close the dead runs' journals (only now: their agents are gone) so that later runs need not look at
    # them again; their tasks keep their states.
    for closing in dead:
        closing.append(Event(closing.path.parent.name, None, EventKind.RUN_FINISHED, 0, time.time(),
                             Wire({"status": RunStatus.INTERRUPTED})))
        closing.close()
    return ended
