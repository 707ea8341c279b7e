"""`parex-lsp status [RUN]`: what ran, from the journals, and who holds locks; the same words as the live view."""

from __future__ import annotations

import json
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table
from rich.text import Text

from parex_lsp import state
from parex_lsp.cli.view import STYLE, secs, text_console
from parex_lsp.contract import TaskStatus
from parex_lsp.engine.journal import RunRecord, TaskRecord, find_run, list_runs, replay
from parex_lsp.isolation.registry import LockOwner
from parex_lsp.isolation.table import WorkspaceLocks


def print_status(workspace: Path, run_ref: str | None, as_json: bool) -> int:
    console = text_console()
    if run_ref is None:
        return _print_runs(console, workspace, as_json)
    path = find_run(workspace, run_ref)
    if path is None:
        console.print(Text(f"parex: no run {run_ref} in {workspace.resolve()}", style="red"))
        return 2
    r = replay(path)
    from parex_lsp.cli.review import kept_of

    kept = kept_of(workspace, r.run_id)  # branches not merged: rejected, losing, conflicting, verify-failed
    if as_json:
        print(json.dumps({"runId": r.run_id, "plan": r.plan, "status": r.status, "keptBranches": kept, "tasks": [
            {"id": t.id, "status": t.status, "attempts": t.attempts, "durationMs": _duration_ms(t),
             "exitCode": t.exit_code, "code": t.code, "reason": t.reason, "waitingFor": t.waiting_for,
             "logPath": str(state.log_path(workspace, r.run_id, t.id))} for t in r.tasks.values()]}))
        return 0
    table = Table(title=f"run {r.run_id} ({r.plan or 'inline'}): {r.status}", title_justify="left")
    for col in ("task", "status", "attempts", "time", "reason"):
        table.add_column(col, overflow="fold")
    for t in r.tasks.values():
        note = t.reason or (f"waiting for {t.waiting_for}" if t.status == TaskStatus.WAITING else "")
        table.add_row(t.id, Text(t.status, style=STYLE.get(t.status, "")), str(t.attempts),
                      secs(_duration_ms(t)), note)
    console.print(table)
    for branch in kept:
        console.print(f"kept branch: {branch}")
    return 0


def _duration_ms(t: TaskRecord) -> int | None:
    """A finished task's duration; a running task's time so far."""
    if t.duration_ms is not None or t.status != TaskStatus.RUNNING or t.started is None:
        return t.duration_ms
    return int((time.time() - t.started) * 1000)


def _print_runs(console: Console, workspace: Path, as_json: bool) -> int:
    runs = [replay(p) for p in list_runs(workspace)]
    holders = _holders(workspace)
    if as_json:
        print(json.dumps({"runs": [{"runId": r.run_id, "plan": r.plan, "status": r.status, "startedAt": r.started,
                                    "tasks": {t.id: t.status for t in r.tasks.values()}} for r in runs],
                          "locks": {k: o.to_dict() for k, o in holders.items()}}))
        return 0
    if not runs:
        console.print(f"no runs in {workspace.resolve()}")
    else:
        table = Table(title="runs", title_justify="left")
        table.add_column("run", no_wrap=True, min_width=len(runs[-1].run_id))  # ids are never cut
        for col in ("plan", "status", "tasks", "started"):
            table.add_column(col, overflow="fold")
        for r in runs:
            table.add_row(r.run_id, r.plan or "(inline)", Text(r.status, style=STYLE.get(r.status, "")),
                          _counts(r), _when(r.started))
        console.print(table)
    _print_locks(console, holders)
    return 0


def _counts(r: RunRecord) -> str:
    counts: dict[str, int] = {}
    for t in r.tasks.values():
        counts[t.status] = counts.get(t.status, 0) + 1
    return ", ".join(f"{n} {s}" for s, n in counts.items())


def _when(ts: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts)) if ts else "?"


def _holders(workspace: Path) -> dict[str, LockOwner]:
    if not state.locks_dir(workspace).is_dir():
        return {}
    return WorkspaceLocks(workspace).holders()


def _print_locks(console: Console, holders: dict[str, LockOwner]) -> None:
    if not holders:
        return
    table = Table(title="locks held", title_justify="left")
    for col in ("path", "run", "task", "pid", "host"):
        table.add_column(col, overflow="fold")
    for key, o in sorted(holders.items()):
        table.add_row(key, o.run_id, o.task_id, str(o.pid), o.host)
    console.print(table)
