"""The terminal as a consumer of engine events: a live task table on a TTY (rich), plain tagged lines
otherwise, a summary at the end. It knows a run only by its events and its result.

Everything shown is text, never markup: task output, reasons, ids and paths are printed literally
(`TEXT_CONSOLE`), so `[x86_64]`, `:smile:` or `[/red]` in output is shown as written.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from typing import IO, Any

from rich.console import Console, RenderableType
from rich.live import Live

from parex_lsp.cli.live import STYLE, Estimates, TaskRow, render, secs
from parex_lsp.cli.summary import print_summary
from parex_lsp.contract import (
    ENDINGS,
    BudgetExceeded,
    Concurrency,
    Cooldown,
    Ended,
    Event,
    EventKind,
    LockWait,
    Output,
    Retrying,
    RunStarted,
    TaskStatus,
    Usage,
)
from parex_lsp.engine.result import RunResult

__all__ = ["STYLE", "Estimates", "TerminalView", "secs", "text_console"]


def text_console(stream: IO[str] | None = None) -> Console:
    """A console that never reads markup or emoji codes in what it prints: every string is literal."""
    return Console(file=stream, highlight=False, soft_wrap=True, markup=False, emoji=False)


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


class TerminalView:
    def __init__(self, stream: IO[str], quiet: bool = False):
        self.stream = TerminalStream(stream)
        self.console = text_console(self.stream)  # type: ignore[arg-type]  # a file-like stream
        self.interactive = self.console.is_terminal
        self.quiet = quiet
        self.cooldowns: dict[str, Cooldown] = {}  # agent → its latest cooldown
        self.levels: dict[str, Concurrency] = {}  # agent → its effective concurrency, once it changed
        self.spent: dict[str, Any] = {}  # the run's usage so far, and its budget
        self.run_id = ""
        self.rows: dict[str, TaskRow] = {}
        self.started: float | None = None
        self.estimates = Estimates()  # from earlier runs, for the ETA (set before the run starts)

    @contextlib.contextmanager
    def live(self) -> Iterator[None]:
        if not self.interactive:
            yield
            return
        with Live(get_renderable=self._render, console=self.console, refresh_per_second=8, transient=True,
                  vertical_overflow="crop"):
            yield

    def on_event(self, e: Event) -> None:
        self._track(e)
        if not self.interactive and isinstance(e.data, (Cooldown, Concurrency, BudgetExceeded)):
            self._write(f"parex: {agent_line(e.data, e.ts)}\n")
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
        if isinstance(data, Cooldown):
            self.cooldowns[data.agent] = data
        elif isinstance(data, Concurrency):
            self.levels[data.agent] = data
        elif isinstance(data, Usage):
            self.spent = data.values
        if isinstance(data, RunStarted):
            self.run_id, self.started = e.run_id, e.ts
            self.rows = {t.id: TaskRow(t.id) for t in data.tasks if t.reused_from is None}
            return
        row = self.rows.get(e.task_id or "")
        if row is None:
            return
        row.attempt = max(row.attempt, e.attempt)
        if e.kind == EventKind.STARTED:
            if row.status == TaskStatus.WAITING:
                row.note = ""  # it waited for a lock; no longer
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
        elif e.kind in ENDINGS:
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

    def _render(self) -> RenderableType:
        return render(self.run_id, list(self.rows.values()), self.estimates, self.console.size.height, self.started,
                      notes=self._notes())

    def _notes(self) -> list[str]:
        """Agent-wide state under the table: cooldowns, lowered concurrency, the run's spend."""
        now = time.time()
        notes = [f"{c.agent}: rate limited, resuming in {c.until - now:.0f}s"
                 for c in self.cooldowns.values() if c.until > now]
        notes += [f"{c.agent}: concurrency {c.level}/{c.max}" for c in self.levels.values() if c.level < c.max]
        if self.spent:
            notes.append("spent " + spend_text(self.spent))
        return notes

    def summary(self, result: RunResult, plan_source: str | None, tails: dict[str, list[str]] | None = None,
                depends_on: dict[str, list[str]] | None = None) -> None:
        """The run's end (summary.py). `tails`: each task's last lines, when not from this view's events;
        `depends_on`: the plan's dependencies, for a big run's critical path."""
        if not self.stream.gone:
            print_summary(self.console, result, plan_source, tails if tails is not None else self.tails(), depends_on)


def spend_text(values: dict[str, Any]) -> str:
    """`1,234 tokens ($0.0123) of 2,000 tokens`: the run's total from a `usage` event, against its budget."""
    run = values.get("run") or values
    tokens = int(run.get("promptTokens", 0)) + int(run.get("completionTokens", 0))
    text = f"{tokens:,} tokens" + (f" (${run['costUsd']:.4f})" if "costUsd" in run else "")
    budget = values.get("budget") or {}
    limits = []
    if "tokens" in budget:
        limits.append(f"{int(budget['tokens']):,} tokens")
    if "usd" in budget:
        limits.append(f"${budget['usd']:g}")
    return text + (f" of {' / '.join(limits)}" if limits else "")


def agent_line(data: Cooldown | Concurrency | BudgetExceeded, now: float) -> str:
    """One line for an agent-wide event: `claude: rate limited, resuming in 42s (HTTP 429: …)`."""
    if isinstance(data, Cooldown):
        return f"{data.agent}: rate limited, resuming in {max(0.0, data.until - now):.0f}s ({data.reason})"
    if isinstance(data, Concurrency):
        return f"{data.agent}: concurrency {data.level}/{data.max} ({data.reason})"
    return data.message
