"""The terminal as a consumer of engine events: a live task table on a TTY (rich), plain tagged lines
otherwise, a summary table at the end; and `parex-lsp status` from the journal."""

from __future__ import annotations

import contextlib
import json
import time
from pathlib import Path
from typing import IO, Iterator

from rich.console import Console
from rich.live import Live
from rich.table import Table
from rich.text import Text

from parex_lsp.engine import events as ev
from parex_lsp.engine.events import Event
from parex_lsp.engine.journal import find_run, list_runs, replay
from parex_lsp.engine.result import RunResult

STYLE = {"succeeded": "green", "failed": "bold red", "skipped": "yellow", "cancelled": "magenta",
         "running": "cyan", "waiting": "blue", "pending": "dim"}
TAIL_SHOWN = 5
SUMMARY_ROWS = 40  # bigger runs list only the tasks that did not succeed


def _secs(ms: int | float | None) -> str:
    return f"{(ms or 0) / 1000:.1f}s"


class TerminalView:
    def __init__(self, run, stream: IO[str], quiet: bool = False):
        self.run = run
        self.stream = stream
        self.console = Console(file=stream, highlight=False, soft_wrap=True)
        self.interactive = self.console.is_terminal
        self.quiet = quiet

    @contextlib.contextmanager
    def live(self) -> Iterator[None]:
        if not self.interactive:
            yield
            return
        with Live(get_renderable=self._table, console=self.console, refresh_per_second=8, transient=True):
            yield

    def on_event(self, e: Event) -> None:
        if self.interactive or e.task_id is None:
            return  # the live table shows state; run-level events are summed up at the end
        data = e.data or {}
        if e.kind == ev.OUTPUT:
            if not self.quiet:
                for line in data.get("text", "").splitlines():
                    self._line(e.task_id, line)
        elif e.kind == ev.STARTED:
            self._line(e.task_id, "started")
        elif e.kind == ev.RETRYING:
            self._line(e.task_id, f"attempt {e.attempt} failed ({data.get('reason')}); "
                                  f"retrying in {data.get('delay', 0):.1f}s")
        elif e.kind == ev.LOCK_WAIT:
            self._line(e.task_id, data.get("message", "waiting for a lock"))
        elif e.kind in ev.TERMINAL and data.get("reusedFrom"):
            self._line(e.task_id, f"succeeded in run {data['reusedFrom']}; not run again")
        elif e.kind in ev.TERMINAL:
            why = f": {data['reason']}" if data.get("reason") else ""
            self._line(e.task_id, f"{e.kind} in {_secs(data.get('durationMs'))}{why}")

    def _line(self, task_id: str, text: str) -> None:
        self.stream.write(f"[{task_id}] {text}\n")  # plain output: no markup, and cheap for big runs

    def _table(self) -> Table:
        st = self.run.status()
        done = sum(1 for t in st["tasks"] if t["status"] in ev.TERMINAL)
        table = Table(title=f"parex run {self.run.run_id}: {done}/{len(st['tasks'])} done", title_justify="left",
                      expand=False)
        for col in ("task", "state", "try", "time", "latest output"):
            table.add_column(col, no_wrap=True, overflow="ellipsis", max_width=80 if col == "latest output" else None)
        for t in st["tasks"]:
            if t["status"] in ("pending",) and len(st["tasks"]) > 40:
                continue  # big plans: show what moves
            last = t["lastLine"] if t["status"] != "waiting" else f"waiting for {t['waitingFor']}"
            table.add_row(t["id"], Text(t["status"], style=STYLE.get(t["status"])), str(t["attempt"] or ""),
                          _secs(t["elapsedMs"]), last)
        return table

    def summary(self, result: RunResult) -> None:
        table = Table(title=f"parex run {result.run_id}: {result.status}", title_justify="left")
        for col in ("task", "status", "attempts", "time", "reason / log"):
            table.add_column(col)
        shown = result.tasks if len(result.tasks) <= SUMMARY_ROWS else [t for t in result.tasks if t.status != "succeeded"]
        if len(shown) < len(result.tasks):
            table.caption = f"{len(result.tasks) - len(shown)} succeeded tasks not listed"
        for t in shown:
            note = (t.error or "") if t.status != "succeeded" else ("reused from " + t.reused_from if t.reused_from else "")
            table.add_row(t.id, Text(t.status, style=STYLE.get(t.status)), str(t.attempts), _secs(t.duration_ms), note)
        self.console.print(table)
        for t in result.tasks:
            if t.answer:  # model agents' final answers, one after the other (e.g. a callN: fan-out)
                self.console.print(Text(f"── {t.id} answered:", style="bold"))
                self.console.print(Text(t.answer.rstrip()))
        for t in result.tasks:
            if t.status == "failed":
                self._failure(t)
        counts = ", ".join(f"{n} {s}" for s, n in result.counts().items())
        usage = result.usage
        tokens = (f", {usage.get('promptTokens', 0)}+{usage.get('completionTokens', 0)} tokens"
                  + (f" (${usage['costUsd']:.4f})" if "costUsd" in usage else "")) if usage else ""
        self.console.print(f"{counts} — wall {_secs(result.wall_ms)}, work {_secs(result.work_ms)}, "
                           f"speedup {result.speedup:.2f}×{tokens}")
        if result.status != "succeeded":
            self.console.print(f"resume with: parex-lsp run {self.run.plan.source or 'PLAN'} --resume {result.run_id}")

    def _failure(self, t) -> None:
        self.console.print(Text(f"── {t.id} failed ({t.code}): {t.error}", style="bold red"))
        tail = self.run.tasks[t.id].output.tail if t.id in self.run.tasks and self.run.tasks[t.id].output else []
        for line in list(tail)[-TAIL_SHOWN:]:
            self.console.print(Text("   " + line))
        self.console.print(f"   log: {t.log_path}")


def print_status(workspace: Path, run_ref: str | None, as_json: bool) -> int:
    console = Console(highlight=False)
    if run_ref is None:
        runs = [replay(p) for p in list_runs(workspace)]
        holders = _holders(workspace)
        if as_json:
            print(json.dumps({"runs": [{"runId": r.run_id, "plan": r.plan, "status": r.status, "startedAt": r.started,
                                        "tasks": {t.id: t.status for t in r.tasks.values()}} for r in runs],
                              "locks": {k: o.to_dict() for k, o in holders.items()}}))
            return 0
        if not runs:
            console.print(f"no runs in {workspace.resolve()}")
        table = Table(title="runs", title_justify="left")
        for col in ("run", "plan", "status", "tasks", "started"):
            table.add_column(col)
        for r in runs:
            counts: dict[str, int] = {}
            for t in r.tasks.values():
                counts[t.status] = counts.get(t.status, 0) + 1
            started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(r.started)) if r.started else "?"
            table.add_row(r.run_id, r.plan or "(inline)", Text(r.status, style=STYLE.get(r.status)),
                          ", ".join(f"{n} {s}" for s, n in counts.items()), started)
        if runs:
            console.print(table)
        _print_locks(console, holders)
        return 0
    path = find_run(workspace, run_ref)
    if path is None:
        console.print(f"parex: no run {run_ref} in {workspace.resolve()}", style="red")
        return 2
    r = replay(path)
    if as_json:
        print(json.dumps({"runId": r.run_id, "plan": r.plan, "status": r.status, "tasks": [
            {"id": t.id, "status": t.status, "attempts": t.attempts, "durationMs": t.duration_ms,
             "exitCode": t.exit_code, "code": t.code, "reason": t.reason} for t in r.tasks.values()]}))
        return 0
    table = Table(title=f"run {r.run_id} ({r.plan or 'inline'}): {r.status}", title_justify="left")
    for col in ("task", "status", "attempts", "time", "reason"):
        table.add_column(col)
    for t in r.tasks.values():
        table.add_row(t.id, Text(t.status, style=STYLE.get(t.status)), str(t.attempts), _secs(t.duration_ms),
                      t.reason or "")
    console.print(table)
    return 0


def _holders(workspace: Path) -> dict:
    if not (workspace / ".parex" / "locks").is_dir():
        return {}
    from parex_lsp.engine.locks import WorkspaceLocks

    return WorkspaceLocks(workspace).holders()


def _print_locks(console: Console, holders: dict) -> None:
    if not holders:
        return
    table = Table(title="locks held", title_justify="left")
    for col in ("path", "run", "task", "pid", "host"):
        table.add_column(col)
    for key, o in sorted(holders.items()):
        table.add_row(key, o.run_id, o.task_id, str(o.pid), o.host)
    console.print(table)
