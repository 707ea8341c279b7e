"""The terminal as a consumer of engine events: a live task table on a TTY (rich), plain tagged lines
otherwise, a summary at the end. It knows a run only by its events and its result.

Everything shown is text, never markup: task output, reasons, ids and paths are printed literally
(`TEXT_CONSOLE`), so `[x86_64]`, `:smile:` or `[/red]` in output is shown as written.
"""

from __future__ import annotations

import contextlib
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO, Any

from rich.console import Console
from rich.live import Live
from rich.table import Table
from rich.text import Text

from parex_lsp.contract import TERMINAL, Ended, Event, EventKind, LockWait, Output, Retrying, RunStarted, TaskStatus
from parex_lsp.engine.result import RunResult, TaskResult

STYLE = {"succeeded": "green", "failed": "bold red", "skipped": "yellow", "cancelled": "magenta",
         "running": "cyan", "waiting": "blue", "retrying": "blue", "pending": "dim", "interrupted": "bold red"}
TAIL_SHOWN = 5  # lines of a failure's output in the summary
TAIL_KEPT = 20  # lines kept per task (JUnit failures carry them)
SUMMARY_ROWS = 40  # bigger runs list only the tasks that did not succeed
COLUMNS = ("task", "status", "attempts", "time", "latest output")  # the live table; the summary shares them


def text_console(stream: IO[str] | None = None) -> Console:
    """A console that never reads markup or emoji codes in what it prints: every string is literal."""
    return Console(file=stream, highlight=False, soft_wrap=True, markup=False, emoji=False)


def secs(ms: int | float | None) -> str:
    return f"{(ms or 0) / 1000:.1f}s"


class TerminalStream:
    """The view's output: once the terminal is gone (closed, SIGHUP: writes fail with EIO or EPIPE) every
    later write is dropped, so the run still ends cleanly, unseen. Rich's live refresh writes through it too."""

    def __init__(self, stream: IO[str]):
        self._stream = stream
        self.gone = False

    def write(self, text: str) -> int:
        if not self.gone:
            try:
                self._stream.write(text)
            except OSError:
                self.gone = True
        return len(text)

    def flush(self) -> None:
        if not self.gone:
            try:
                self._stream.flush()
            except OSError:
                self.gone = True

    def isatty(self) -> bool:
        return not self.gone and self._stream.isatty()

    def fileno(self) -> int:
        return self._stream.fileno()

    @property
    def encoding(self) -> str:
        return getattr(self._stream, "encoding", None) or "utf-8"


@dataclass
class TaskRow:
    id: str
    status: str = TaskStatus.PENDING
    attempt: int = 0
    started: float | None = None
    ended: float | None = None
    note: str = ""  # the latest output line, or what it waits for
    retry_at: float | None = None
    tail: deque[str] = field(default_factory=lambda: deque(maxlen=TAIL_KEPT))


class TerminalView:
    def __init__(self, stream: IO[str], quiet: bool = False):
        self.stream = TerminalStream(stream)
        self.console = text_console(self.stream)  # type: ignore[arg-type]  # a file-like stream
        self.interactive = self.console.is_terminal
        self.quiet = quiet
        self.run_id = ""
        self.rows: dict[str, TaskRow] = {}

    @contextlib.contextmanager
    def live(self) -> Iterator[None]:
        if not self.interactive:
            yield
            return
        with Live(get_renderable=self._table, console=self.console, refresh_per_second=8, transient=True):
            yield

    def on_event(self, e: Event) -> None:
        self._track(e)
        if self.interactive or e.task_id is None:
            return  # the live table shows state; run-level events are summed up at the end
        data = e.data
        if isinstance(data, Output):
            if not self.quiet:
                for line in data.text.splitlines():
                    self._line(e.task_id, line)
        elif e.kind == EventKind.STARTED:
            self._line(e.task_id, "started")
        elif isinstance(data, Retrying):
            self._line(e.task_id, f"attempt {e.attempt} failed ({data.reason}); retrying in {data.delay:.1f}s")
        elif isinstance(data, LockWait):
            self._line(e.task_id, data.message)
        elif isinstance(data, Ended) and data.reused_from:
            self._line(e.task_id, f"succeeded in run {data.reused_from}; not run again")
        elif isinstance(data, Ended):
            why = f": {data.reason}" if data.reason else ""
            self._line(e.task_id, f"{e.kind} in {secs(data.duration_ms)}{why}")

    def _track(self, e: Event) -> None:
        data = e.data
        if isinstance(data, RunStarted):
            self.run_id = e.run_id
            self.rows = {t.id: TaskRow(t.id) for t in data.tasks}
            return
        row = self.rows.get(e.task_id or "")
        if row is None:
            return
        row.attempt = max(row.attempt, e.attempt)
        if e.kind == EventKind.STARTED:
            row.status, row.started, row.retry_at = TaskStatus.RUNNING, row.started or e.ts, None
        elif isinstance(data, Output):
            row.tail.extend(data.text.splitlines())
            row.note = data.last or row.note
            if row.status == "retrying":
                row.status, row.retry_at = TaskStatus.RUNNING, None
        elif isinstance(data, Retrying):
            row.status, row.retry_at = "retrying", e.ts + data.delay
        elif isinstance(data, LockWait):
            if row.status == TaskStatus.PENDING:
                row.status = TaskStatus.WAITING
            row.note = f"waiting for {data.path}"
        elif e.kind in TERMINAL:
            row.status, row.ended = e.kind, e.ts
            if isinstance(data, Ended) and data.tail:  # the engine's tail is the whole story: not added twice
                row.tail.clear()
                row.tail.extend(data.tail)

    def tails(self) -> dict[str, list[str]]:
        """Each task's last output lines (at its end, the engine's tail)."""
        return {tid: list(row.tail) for tid, row in self.rows.items()}

    def _line(self, task_id: str, text: str) -> None:
        self._write(f"[{task_id}] {text}\n")  # plain output: no markup, and cheap for big runs

    def _write(self, text: str) -> None:
        self.stream.write(text)

    def say(self, text: str) -> None:
        """A line from parex itself (e.g. "stopping 3 tasks…"), shown whatever the mode."""
        if self.interactive:
            self.console.print(text)  # above the live table
        else:
            self._write(text + "\n")
            self.stream.flush()

    def _table(self) -> Table:
        now = time.time()
        rows = list(self.rows.values())
        done = sum(1 for r in rows if r.status in TERMINAL)
        table = Table(title=f"parex run {self.run_id}: {done}/{len(rows)} done", title_justify="left", expand=False)
        for col in COLUMNS:
            table.add_column(col, no_wrap=True, overflow="ellipsis", max_width=80 if col == "latest output" else None)
        for r in rows:
            if r.status == TaskStatus.PENDING and len(rows) > SUMMARY_ROWS:
                continue  # big plans: show what moves
            elapsed = ((r.ended or now) - r.started) * 1000 if r.started else 0
            status = r.status
            if r.status == "retrying" and r.retry_at is not None:
                status = f"retrying in {max(0.0, r.retry_at - now):.0f}s"
            table.add_row(r.id, Text(status, style=STYLE.get(r.status, "")), str(r.attempt or ""), secs(elapsed),
                          r.note)
        return table

    def summary(self, result: RunResult, plan_source: str | None, tails: dict[str, list[str]] | None = None) -> None:
        """The run's end: every task (or those that did not succeed), answers, failures with their output tail
        and log, the totals. `tails`: each task's last lines, when they come from elsewhere than the events."""
        if not self.stream.gone:
            self._summary(result, plan_source, tails)

    def _summary(self, result: RunResult, plan_source: str | None, tails: dict[str, list[str]] | None) -> None:
        table = Table(title=f"parex run {result.run_id}: {result.status}", title_justify="left")
        for col in ("task", "status", "attempts", "time", "reason / log"):
            table.add_column(col)
        shown = result.tasks if len(result.tasks) <= SUMMARY_ROWS else [t for t in result.tasks if t.status != "succeeded"]
        if len(shown) < len(result.tasks):
            table.caption = f"{len(result.tasks) - len(shown)} succeeded tasks not listed"
        for t in shown:
            note = (t.error or "") if t.status != "succeeded" else ("reused from " + t.reused_from if t.reused_from else "")
            table.add_row(t.id, Text(t.status, style=STYLE.get(t.status, "")), str(t.attempts), secs(t.duration_ms),
                          note)
        self.console.print(table)
        for t in result.tasks:
            if t.answer:  # model agents' final answers, one after the other (e.g. a callN: fan-out)
                self.console.print(Text(f"── {t.id} answered:", style="bold"))
                self.console.print(Text(t.answer.rstrip()))
        for t in result.tasks:
            if t.status == "failed":
                row = self.rows.get(t.id)
                self._failure(t, (tails or {}).get(t.id) or list(row.tail if row else []))
        counts = ", ".join(f"{n} {s}" for s, n in result.counts().items())
        self.console.print(f"{counts} — wall {secs(result.wall_ms)}, work {secs(result.work_ms)}, "
                           f"speedup {result.speedup:.2f}×{usage_text(result.usage)}")
        if result.status != "succeeded":
            self.console.print(f"resume with: parex-lsp run {plan_source or 'PLAN'} --resume {result.run_id}")

    def _failure(self, t: TaskResult, tail: list[str]) -> None:
        self.console.print(Text(f"── {t.id} failed ({t.code}): {t.error}", style="bold red"))
        for line in tail[-TAIL_SHOWN:]:
            self.console.print(Text("   " + line))
        self.console.print(f"   log: {t.log_path}")


def usage_text(usage: dict[str, Any] | None) -> str:
    if not usage:
        return ""
    cost = f" (${usage['costUsd']:.4f})" if "costUsd" in usage else ""
    return f", {usage.get('promptTokens', 0)}+{usage.get('completionTokens', 0)} tokens{cost}"
