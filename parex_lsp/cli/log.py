"""`parex-lsp log [RUN] TASK [-f]`: a task's output, as written.

The log file is the task's output (the journal keeps only each chunk's last line). It is flushed after every
chunk, before the chunk's event is journaled, so a running task's log is as far along as its journal; `-f`
goes on printing the log as it grows until the journal says the task (or its run) ended."""

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
    out.flush()
    log = state.log_path(ws.path, run.run_id, task)
    ending = _stream(picked.journal, log, task, run.pid, follow, out.buffer)
    if ending is not None:
        _note(f"{task}: {ending}")
    elif follow:
        _note(f"{task}: its runner (pid {run.pid}) is gone")
    else:
        status = "running" if run.tasks[task].status == "running" else f"{run.tasks[task].status}, not started"
        _note(f"{task} is {status}; follow it with: parex-lsp log -f {run.run_id} {task}")
    return 0


def _stream(journal: Path, log: Path, task: str, runner: int | None, follow: bool, out: IO[bytes]) -> str | None:
    """Print the task's log as it grows; the task's ending kind once it ends, None when stopped before."""
    ending = _Ending(journal, task)
    offset = 0
    while True:
        ended = ending.poll()  # looked at before the log: once it ended, one more read gets every byte
        offset = _copy_from(log, offset, out)
        if ended is not None:
            return ended
        if not follow or not (runner and pid_alive(runner)):
            return None
        time.sleep(POLL)


def _copy_from(path: Path, offset: int, out: IO[bytes]) -> int:
    """Copy what `path` holds past `offset` (nothing while it does not exist); the new offset."""
    try:
        with path.open("rb") as f:
            f.seek(offset)
            chunk = f.read()
    except FileNotFoundError:  # a task's log is created at its first output
        return offset
    if chunk:
        out.write(chunk)
        out.flush()
    return offset + len(chunk)


class _Ending:
    """Reads a growing journal for the end of one task (or of its run)."""

    def __init__(self, journal: Path, task: str):
        self._journal, self._task, self._offset, self._partial = journal, task, 0, b""

    def poll(self) -> str | None:
        with self._journal.open("rb") as f:
            f.seek(self._offset)
            chunk = f.read()
        self._offset += len(chunk)
        lines = (self._partial + chunk).split(b"\n")
        self._partial = lines.pop()  # a line still being written
        for raw in lines:
            if b'"kind":"output"' in raw:
                continue
            try:
                ev = json.loads(raw)
            except ValueError:
                continue
            kind = ev.get("kind")
            if kind == EventKind.RUN_FINISHED:
                return str((ev.get("data") or {}).get("status", "ended"))
            if ev.get("taskId") == self._task and kind in ENDINGS:
                return str(kind)
        return None


def _note(text: str) -> None:
    print(f"parex: {text}", file=sys.stderr)
