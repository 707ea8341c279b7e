"""Agents outlive a runner that died abruptly (SIGKILL, power loss): each runs in its own process group.
The next run in the workspace ends them, so a crash never leaves an agent working unseen."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

from parex_lsp.contract import Event, EventKind, RunStatus, Wire
from parex_lsp.engine.journal import Journal, list_runs, replay
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
    """SIGKILL the process groups of agents whose runner died; what was ended, for the record."""
    ended = []
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
        # Close the dead run's journal so that later runs need not look at it again; its tasks keep their states.
        journal_of_dead = Journal(workspace, record.run_id)
        journal_of_dead.append(Event(record.run_id, None, EventKind.RUN_FINISHED, 0, time.time(),
                                     Wire({"status": RunStatus.INTERRUPTED})))
        journal_of_dead.close()
    return ended
