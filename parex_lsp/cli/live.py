"""The live view on a terminal: a progress bar with an ETA, and a task table that always fits the screen.

Rich's Live redraws in place only what fits the terminal; anything taller leaves partial copies in the
scrollback. So the table never has more rows than the screen holds: tasks that are moving (running, retrying,
waiting), then failures, then the latest to end, then those still to start; the rest are counted in one line.
"""

from __future__ import annotations

import re
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field

from rich.console import Group, RenderableType
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from parex_lsp.contract import TERMINAL, TaskStatus

STYLE = {"succeeded": "green", "failed": "bold red", "skipped": "yellow", "cancelled": "magenta",
         "running": "cyan", "waiting": "blue", "retrying": "blue", "pending": "dim", "interrupted": "bold red"}
COLUMNS = ("task", "status", "attempts", "time", "latest output")
OVERHEAD = 8  # lines around the rows: progress, title, table borders and header, "… more", the cursor's line
OUTPUT_WIDTH = 80
TAIL_KEPT = 20  # output lines kept per task (the summary shows the last few; JUnit failures carry them all)


_ANSI = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)|[@-Z\\-_])")
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029]")


def one_line(text: str) -> str:
    """Output as a table cell: what a terminal would show last on the line (after any carriage return),
    without colour or cursor escapes and control characters, which would break the table's layout."""
    text = _ANSI.sub("", text).rsplit("\r", 1)[-1]
    return _CONTROL.sub("", text).replace("\t", " ")


def secs(ms: int | float | None) -> str:
    return f"{(ms or 0) / 1000:.1f}s"


def duration(seconds: float) -> str:
    s = int(round(seconds))
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s" if s >= 60 else f"{s}s"


@dataclass
class Estimates:
    """What earlier runs say: each task's own duration and its remaining chain (itself and the longest line of
    dependents after it), in seconds; `known` when some task was ever timed (else no ETA is shown)."""

    own: dict[str, float] = field(default_factory=dict)
    chain: dict[str, float] = field(default_factory=dict)
    concurrency: int = 1
    known: bool = False

    def eta(self, rows: Iterable[TaskRow], now: float) -> float | None:
        """Seconds left: the longer of the remaining critical chain and the remaining work spread over the slots."""
        if not self.known:
            return None
        longest, work = 0.0, 0.0
        for r in rows:
            if r.status in TERMINAL:
                continue
            own = self.own.get(r.id, 1.0)
            spent = min(now - r.started, own) if r.started else 0.0
            longest = max(longest, self.chain.get(r.id, own) - spent)
            work += own - spent
        return max(longest, work / max(self.concurrency, 1))


@dataclass
class TaskRow:
    """A task as the events have shown it so far."""

    id: str
    status: str = TaskStatus.PENDING
    attempt: int = 0
    started: float | None = None
    ended: float | None = None
    note: str = ""  # the latest output line, or what it waits for
    retry_at: float | None = None
    tail: deque[str] = field(default_factory=lambda: deque(maxlen=TAIL_KEPT))


def _rank(r: TaskRow) -> tuple[int, float]:
    """Which rows to keep when not all fit: moving ones, failures, the latest to end, then the rest."""
    if r.status not in TERMINAL and r.status != TaskStatus.PENDING:
        return (0, 0.0)
    if r.status == TaskStatus.FAILED:
        return (1, -(r.ended or 0.0))
    if r.status in TERMINAL:
        return (2, -(r.ended or 0.0))
    return (3, 0.0)


def render(run_id: str, rows: list[TaskRow], estimates: Estimates, height: int, started: float | None,
           now: float | None = None, notes: list[str] | None = None) -> RenderableType:
    now = now or time.time()
    done = sum(1 for r in rows if r.status in TERMINAL)
    room = max(1, height - OVERHEAD - (1 if notes else 0))
    shown = rows if len(rows) <= room else sorted(sorted(rows, key=_rank)[:room], key=rows.index)
    table = Table(expand=False)
    for col in COLUMNS:
        table.add_column(col, no_wrap=True, overflow="ellipsis", max_width=OUTPUT_WIDTH if col == "latest output" else None)
    for r in shown:
        elapsed = ((r.ended or now) - r.started) * 1000 if r.started else 0
        status = r.status
        if r.status == "retrying" and r.retry_at is not None:
            status = f"retrying in {max(0.0, r.retry_at - now):.0f}s"
        table.add_row(r.id, Text(status, style=STYLE.get(r.status, "")), str(r.attempt or ""), secs(elapsed),
                      one_line(r.note))
    title = Text(f"parex run {run_id}", style="italic", no_wrap=True, overflow="ellipsis")  # one line, however narrow
    parts: list[RenderableType] = [_progress(rows, done, estimates, started, now), title, table]
    if notes:  # agent-wide: cooldowns, lowered concurrency, spend against the budget
        parts.append(Text(" · ".join(notes), no_wrap=True, overflow="ellipsis"))
    if len(shown) < len(rows):
        hidden: dict[str, int] = {}
        for r in rows:
            if r not in shown:
                hidden[r.status] = hidden.get(r.status, 0) + 1
        parts.append(Text(f"… {len(rows) - len(shown)} more: " + ", ".join(f"{n} {s}" for s, n in hidden.items()),
                          style="dim", no_wrap=True, overflow="ellipsis"))
    return Group(*parts)


def _progress(rows: list[TaskRow], done: int, estimates: Estimates, started: float | None,
              now: float) -> RenderableType:
    grid = Table.grid(padding=(0, 1))
    grid.add_column(width=30)
    grid.add_column(no_wrap=True, overflow="ellipsis")
    counts: dict[str, int] = {}
    for r in rows:
        counts[r.status] = counts.get(r.status, 0) + 1
    text = f"{done}/{len(rows)} done"
    for s in (TaskStatus.RUNNING, "retrying", TaskStatus.WAITING, TaskStatus.FAILED):
        if counts.get(s):
            text += f" · {counts[s]} {s}"
    if started:
        text += f" · {duration(now - started)}"
    eta = estimates.eta(rows, now) if done < len(rows) else None
    if eta is not None:
        text += f" · ETA {duration(eta)}"
    grid.add_row(ProgressBar(total=max(len(rows), 1), completed=done, width=30), Text(text))
    return grid
