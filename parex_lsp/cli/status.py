"""`parex-lsp status [RUN]`: what ran, from the journals, and who holds locks; the same words as the live view.

Plain aligned lines, never a table that cuts: run ids and paths are shown whole at any terminal width."""

from __future__ import annotations

import json
import sys
import time

from rich.console import Console
from rich.text import Text

from parex_lsp import state
from parex_lsp.cli.lines import aligned, print_lines
from parex_lsp.cli.view import STYLE, secs, text_console
from parex_lsp.cli.workspace import Workspace
from parex_lsp.contract import RunStatus, TaskStatus
from parex_lsp.engine.journal import RunRecord, TaskRecord, find_run, list_runs, replay
from parex_lsp.isolation.registry import LockOwner
from parex_lsp.isolation.table import WorkspaceLocks


def say_where(ws: Workspace) -> None:
    """Runs read from a folder other than the current one: say which (on stderr, so --json stays clean)."""
    if ws.found:
        print(f"parex: reading the runs of {ws.shown()} (none in the current folder)", file=sys.stderr)


def print_status(ws: Workspace, run_ref: str | None, as_json: bool) -> int:
    console = text_console()
    say_where(ws)
    if run_ref is None:
        return _print_runs(console, ws, as_json)
    path = find_run(ws.path, run_ref)
    if path is None:
        console.print(Text(f"parex: no run {run_ref} in {ws.path}", style="red"))
        return 2
    r = replay(path)
    from parex_lsp.cli.review import kept_of

    kept = kept_of(ws.path, r.run_id)  # branches not merged: rejected, losing, conflicting, verify-failed
    if as_json:
        print(json.dumps({"workspace": str(ws.path), "runId": r.run_id, "plan": r.plan, "status": r.status,
                          "pid": r.pid, "startedAt": r.started, "keptBranches": kept, "tasks": [
            {"id": t.id, "status": t.status, "attempts": t.attempts, "durationMs": duration_ms(t),
             "exitCode": t.exit_code, "code": t.code, "reason": t.reason, "waitingFor": t.waiting_for,
             "logPath": str(state.log_path(ws.path, r.run_id, t.id))} for t in r.tasks.values()]}))
        return 0
    console.print(run_title(r))
    rows: list[list[str | Text]] = []
    for t in r.tasks.values():
        note = t.reason or (f"waiting for {t.waiting_for}" if t.status == TaskStatus.WAITING else "")
        time_text = secs(duration_ms(t)) if t.started or t.duration_ms is not None else ""
        rows.append([t.id, Text(t.status, style=STYLE.get(t.status, "")), str(t.attempts or ""), time_text, note])
    print_lines(console, aligned(["TASK", "STATUS", "ATTEMPTS", "TIME", "NOTE"], rows))
    if r.status == RunStatus.RUNNING:
        console.print(f"cancel it: parex-lsp cancel {r.run_id}")
    for branch in kept:
        console.print(f"kept branch: {branch}")
    return 0


def run_title(r: RunRecord) -> Text:
    title = Text(f"run {r.run_id} ({r.plan or 'inline'}): ")
    title.append(r.status, style=STYLE.get(r.status, ""))
    if r.status == RunStatus.RUNNING and r.started:
        title.append(f", pid {r.pid}, started {when(r.started)}, {secs((time.time() - r.started) * 1000)} so far")
    elif r.started:
        title.append(f", started {when(r.started)}")
    return title


def duration_ms(t: TaskRecord) -> int | None:
    """A finished task's duration; a running task's time so far."""
    if t.duration_ms is not None or t.status != TaskStatus.RUNNING or t.started is None:
        return t.duration_ms
    return int((time.time() - t.started) * 1000)


def _print_runs(console: Console, ws: Workspace, as_json: bool) -> int:
    runs = [replay(p) for p in list_runs(ws.path)]
    holders = _holders(ws)
    if as_json:
        print(json.dumps({"workspace": str(ws.path), "runs": [
            {"runId": r.run_id, "plan": r.plan, "status": r.status, "startedAt": r.started, "pid": r.pid,
             "tasks": {t.id: t.status for t in r.tasks.values()}} for r in runs],
            "locks": {k: o.to_dict() for k, o in holders.items()}}))
        return 0
    if not runs:
        console.print(f"no runs in {ws.path}")
    else:
        console.print(f"runs in {ws.path}:")
        print_lines(console, aligned(["RUN", "STATUS", "STARTED", "TASKS", "PLAN"], [
            [r.run_id, Text(r.status, style=STYLE.get(r.status, "")), when(r.started), _counts(r), r.plan or "(inline)"]
            for r in runs]))
    _print_locks(console, holders)
    return 0


def _counts(r: RunRecord) -> str:
    counts: dict[str, int] = {}
    for t in r.tasks.values():
        counts[t.status] = counts.get(t.status, 0) + 1
    return ", ".join(f"{n} {s}" for s, n in counts.items())


def when(ts: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts)) if ts else "?"


def _holders(ws: Workspace) -> dict[str, LockOwner]:
    if not state.locks_dir(ws.path).is_dir():
        return {}
    return WorkspaceLocks(ws.path).holders()


def _print_locks(console: Console, holders: dict[str, LockOwner]) -> None:
    if not holders:
        return
    console.print("locks held:")
    print_lines(console, aligned(["PATH", "RUN", "TASK", "PID", "HOST"], [
        [key, o.run_id, o.task_id, str(o.pid), o.host] for key, o in sorted(holders.items())]))
