"""`parex-lsp log [RUN] TASK [-f]`: a task's output, as written.

An ended task's log file is printed whole. A running task's output comes from the journal, where each line is
flushed before anyone sees it (the log file is buffered); `-f` goes on printing until the task ends."""

from __future__ import annotations

import json
import shutil
import sys
import time
from pathlib import Path
from typing import IO

from parex_lsp import state
from parex_lsp.cli.picking import Refused, pick
from parex_lsp.cli.workspace import Workspace
from parex_lsp.contract import ENDINGS, TERMINAL, EventKind, RunStatus
from parex_lsp.isolation.processes import pid_alive

POLL = 0.2  # seconds between looks at a growing journal


def print_log(ws: Workspace, refs: list[str], follow: bool) -> int:
    picked = pick(ws, refs, task_wanted=True)
    run = picked.run
    task = picked.task
    if task is None:
        if len(run.tasks) != 1:
            raise Refused(f"name a task of run {run.run_id}: {', '.join(run.tasks)}")
        task = next(iter(run.tasks))
    out = sys.stdout
    if run.status != RunStatus.RUNNING or run.tasks[task].status in TERMINAL:
        path = state.log_path(ws.path, run.run_id, task)
        if path.is_file():
            out.flush()
            with path.open("rb") as f:
                shutil.copyfileobj(f, sys.stdout.buffer)
        else:
            _note(f"{task} printed nothing in run {run.run_id}")
        _note(f"{task}: {run.tasks[task].status}")
        return 0
    ending = _stream(picked.journal, task, run.pid, follow, out)
    if ending is not None:
        _note(f"{task}: {ending}")
    elif follow:
        _note(f"{task}: its runner (pid {run.pid}) is gone")
    else:
        status = "running" if run.tasks[task].status == "running" else f"{run.tasks[task].status}, not started"
        _note(f"{task} is {status}; follow it with: parex-lsp log -f {run.run_id} {task}")
    return 0


def _stream(journal: Path, task: str, runner: int | None, follow: bool, out: IO[str]) -> str | None:
    """Print the task's output events; the task's ending kind once it ends, None when stopped before."""
    partial = b""
    with journal.open("rb") as f:
        while True:
            chunk = f.read()
            if not chunk:
                if not follow or not (runner and pid_alive(runner)):
                    return None
                time.sleep(POLL)
                continue
            lines = (partial + chunk).split(b"\n")
            partial = lines.pop()  # a line still being written
            for raw in lines:
                try:
                    ev = json.loads(raw)
                except ValueError:
                    continue
                kind = ev.get("kind")
                if kind == EventKind.RUN_FINISHED:
                    return str((ev.get("data") or {}).get("status", "ended"))
                if ev.get("taskId") != task:
                    continue
                if kind == EventKind.OUTPUT:
                    out.write((ev.get("data") or {}).get("text", ""))
                    out.flush()
                elif kind in ENDINGS:
                    return str(kind)


def _note(text: str) -> None:
    print(f"parex: {text}", file=sys.stderr)
