"""Engine events → LSP work-done progress: one token for the run, one per task (`parex/<runId>/<taskId>`).

A `Channel` keeps LSP's ordering rules for one token whatever the timing of events: nothing is sent
before the client has answered `window/workDoneProgress/create`, `begin` comes first, `end` comes
last, and reports are coalesced (the latest wins, at most one per `REPORT_INTERVAL`) so a task that
prints thousands of lines a second costs the client ten reports a second.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any

from lsprotocol import types

from parex_lsp.contract import (
    ENDINGS,
    BudgetExceeded,
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
    Wire,
)

if TYPE_CHECKING:
    from pygls.lsp.server import LanguageServer

log = logging.getLogger(__name__)

REPORT_INTERVAL = 0.11  # seconds between two reports on one token: under 10 a second even with jitter
MAX_MESSAGE = 200  # characters of an output line shown in a progress report
SMALL_RUN = 256  # up to this many tasks, a task that never started still gets a token (begin + end)


def task_token(run_id: str, task_id: str) -> str:
    return f"parex/{run_id}/{task_id}"


def client_supports_progress(ls: LanguageServer) -> bool:
    caps = getattr(ls.protocol, "client_capabilities", None)
    window = caps.window if caps else None
    return bool(window and window.work_done_progress)


class Channel:
    """One progress token: begin → reports (coalesced) → end, sent in that order once the token exists."""

    def __init__(self, ls: LanguageServer, token: int | str, *, create: bool, interval: float = REPORT_INTERVAL):
        self.ls, self.token, self.interval = ls, token, interval
        self._state = "creating" if create else "ready"  # creating | ready | closed | refused
        self._begin: types.WorkDoneProgressBegin | None = None
        self._begun = False
        self._report: types.WorkDoneProgressReport | None = None
        self._end: types.WorkDoneProgressEnd | None = None
        self._last = 0.0
        self._timer: asyncio.TimerHandle | None = None
        self.reports_sent = 0
        self._creating = asyncio.ensure_future(self._create()) if create else None

    @property
    def closed(self) -> bool:
        return self._end is not None

    async def _create(self) -> None:
        try:
            await self.ls.work_done_progress.create_async(self.token)
        except Exception as e:  # the client refused the token: this progress stays silent
            log.info("progress token %s refused: %s", self.token, e)
            self._state = "refused"
            return
        self._state = "ready"
        self._pump()

    def begin(self, title: str, message: str | None = None, percentage: int | None = None) -> None:
        if self._begin is None:
            self._begin = types.WorkDoneProgressBegin(title=title, cancellable=True, message=message,
                                                      percentage=percentage)
            self._pump()

    def report(self, message: str | None = None, percentage: int | None = None) -> None:
        if self._end is None:
            self._report = types.WorkDoneProgressReport(message=message, percentage=percentage)
            self._pump()

    def end(self, message: str) -> None:
        if self._end is None:
            self._end = types.WorkDoneProgressEnd(message=message)
            self._pump()

    def _tick(self) -> None:
        self._timer = None
        self._pump()

    def _pump(self) -> None:
        if self._state != "ready":
            return
        progress = self.ls.work_done_progress
        if self._begin is not None and not self._begun:
            progress.begin(self.token, self._begin)
            self._begun, self._last = True, time.monotonic()
        if not self._begun:
            return
        if self._report is not None:
            congested = getattr(self.ls, "congested", None)
            interval = self.interval * (5 if congested is not None and congested() else 1)
            wait = self._last + interval - time.monotonic()
            if wait <= 0 or self._end is not None:  # the end flushes the last report before it
                progress.report(self.token, self._report)
                self._report, self._last = None, time.monotonic()
                self.reports_sent += 1
            elif self._timer is None:
                self._timer = asyncio.get_running_loop().call_later(wait, self._tick)
        if self._end is not None:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            progress.end(self.token, self._end)
            progress.tokens.pop(self.token, None)
            self._state = "closed"


def _short(text: Any) -> str | None:
    if not isinstance(text, str) or not text.strip():
        return None
    line: str = text.strip()
    return line if len(line) <= MAX_MESSAGE else line[:MAX_MESSAGE - 1] + "…"


class RunProgress:
    """An event sink: the run's progress on `run_token`, each task's on its own token.

    `run_token` is the client's `workDoneToken` (already valid) or None; with `can_create` the server
    creates its own run token when the client gave none, and one token per task.
    """

    def __init__(self, ls: LanguageServer, run_id: str, run_token: int | str | None, can_create: bool):
        self.ls, self.run_id, self.can_create = ls, run_id, can_create
        token = run_token if run_token is not None else (f"parex/{run_id}" if can_create else None)
        self.run: Channel | None = (Channel(ls, token, create=run_token is None) if token is not None else None)
        self.tasks: dict[str, Channel | _NullChannel] = {}
        self.members: set[str] = set()  # the tasks this run runs (resume reuses others without running them)
        self.total = 0
        self.finished: dict[str, str] = {}  # task id → terminal kind
        self.failed = 0  # counted as they end: a report must not walk every finished task
        self.running: set[str] = set()
        self.notes: dict[str, str] = {}  # run-wide notes on the run's progress: cooldowns, spend

    def owner(self, token: int | str) -> tuple[bool, str | None]:
        """(True, task id or None for the run) when `token` is one of this run's, else (False, None)."""
        if self.run is not None and token == self.run.token:
            return True, None
        prefix = f"parex/{self.run_id}/"
        if isinstance(token, str) and token.startswith(prefix) and token[len(prefix):] in self.tasks:
            return True, token[len(prefix):]
        return False, None

    def __call__(self, ev: Event) -> None:
        if ev.task_id is None:
            if isinstance(ev.data, RunStarted):
                self.members = {t.id for t in ev.data.tasks if t.reused_from is None}
                self.total = len(self.members)
                if self.run:
                    self.run.begin(f"parex: {self.total} tasks", message="starting", percentage=0)
            elif ev.kind == EventKind.RUN_FINISHED and isinstance(ev.data, Wire):
                self.close(_summary(ev.data.data))
            elif isinstance(ev.data, Cooldown):
                self.notes[f"cooldown {ev.data.agent}"] = (f"{ev.data.agent}: rate limited, resuming in "
                                                           f"{max(0.0, ev.data.until - ev.ts):.0f}s")
                self._run_report()
            elif isinstance(ev.data, BudgetExceeded):
                self.notes["spend"] = ev.data.message
                self._run_report()
            return
        if ev.task_id not in self.members:
            return
        data = ev.data
        if ev.kind == EventKind.STARTED:
            self.running.add(ev.task_id)
            ch = self._task(ev.task_id)
            if ev.attempt > 1:
                ch.report(f"attempt {ev.attempt}")
            self._run_report()
        elif isinstance(data, Output):
            if (shown := self.tasks.get(ev.task_id)) is not None:
                shown.report(_short(data.last))
        elif isinstance(data, Retrying):
            self._task(ev.task_id).report(f"retrying in {data.delay:.0f}s: {data.reason or ''}".strip())
        elif isinstance(data, LockWait):
            self._task(ev.task_id).report(_short(data.message) or "waiting for a lock")
        elif isinstance(data, Usage):
            self.notes["spend"] = "spent " + _spend(data.values)
        elif ev.kind == EventKind.READY:  # review mode: done, waiting for a reviewer (parex/review)
            self.running.discard(ev.task_id)
            self._task(ev.task_id).report("ready for review")
            self._run_report()
        elif ev.kind in ENDINGS and isinstance(data, Ended):
            self.running.discard(ev.task_id)
            if ev.task_id not in self.finished and ev.kind == EventKind.FAILED:
                self.failed += 1
            self.finished[ev.task_id] = ev.kind
            # In a big run, a task that never started (skipped, cancelled first) gets no token of its own:
            # cancelling 10,000 queued tasks must not cost 10,000 token creations; the run's report counts them.
            if ev.task_id in self.tasks or self.total <= SMALL_RUN:
                self._task(ev.task_id).end(_task_end(ev.kind, data))
            self._run_report()

    def _task(self, task_id: str) -> Channel | _NullChannel:
        ch = self.tasks.get(task_id)
        if ch is None:
            ch = _NullChannel() if not self.can_create else Channel(self.ls, task_token(self.run_id, task_id),
                                                                    create=True)
            self.tasks[task_id] = ch
            ch.begin(task_id)
        return ch

    def _run_report(self) -> None:
        if self.run is None:
            return
        done = len(self.finished)
        pct = int(100 * done / self.total) if self.total else 100
        parts = [f"{done}/{self.total} done"]
        if self.failed:
            parts.append(f"{self.failed} failed")
        if self.running:
            parts.append(f"{len(self.running)} running")
        parts += self.notes.values()
        self.run.report(", ".join(parts), pct)

    async def settle(self, timeout: float = 5.0) -> None:
        """Wait until tokens still being created are answered and flushed, so the run's answer comes last."""
        creating = [ch._creating for ch in [self.run, *self.tasks.values()]
                    if isinstance(ch, Channel) and ch._creating is not None and not ch._creating.done()]
        if creating:
            await asyncio.wait(creating, timeout=timeout)

    def close(self, summary: str) -> None:
        """End every token still open: the run's with `summary`. Idempotent."""
        for ch in self.tasks.values():
            ch.end(TaskStatus.CANCELLED)
        if self.run is not None:
            self.run.begin(f"parex: {self.total} tasks")  # a run that failed before runStarted
            self.run.end(summary)


class _NullChannel:
    """Per-task progress for clients that cannot take server-created tokens."""

    token = None
    closed = False

    def begin(self, *a: Any, **k: Any) -> None: ...
    def report(self, *a: Any, **k: Any) -> None: ...
    def end(self, *a: Any, **k: Any) -> None: ...


def _task_end(kind: str, data: Ended) -> str:
    if kind == TaskStatus.FAILED:
        return f"failed: {data.reason or data.code or 'failed'}"
    return str(kind)


def _spend(values: dict[str, Any]) -> str:
    run = values.get("run") or values
    text = f"{int(run.get('promptTokens', 0)) + int(run.get('completionTokens', 0))} tokens"
    if "costUsd" in run:
        text += f" (${run['costUsd']:.4f})"
    budget = values.get("budget") or {}
    limits = ([f"{int(budget['tokens'])} tokens"] if "tokens" in budget else []) + (
        [f"${budget['usd']:g}"] if "usd" in budget else [])
    return text + (" of " + " / ".join(limits) if limits else "")


def _summary(data: dict[str, Any]) -> str:
    tasks = data.get("tasks") or []
    counts: dict[str, int] = {}
    for t in tasks:
        counts[t.get("status", "?")] = counts.get(t.get("status", "?"), 0) + 1
    parts = [f"{n} {status}" for status, n in sorted(counts.items())]
    wall = (data.get("wallMs") or 0) / 1000
    speed = data.get("speedup")
    tail = f" in {wall:.1f}s" + (f" (speedup {speed:.1f}x)" if isinstance(speed, (int, float)) else "")
    spend = data.get("budget")
    if isinstance(spend, dict) and spend.get("summary"):
        tail += f"; {spend['summary']}" + (" (budget exceeded)" if spend.get("exceeded") else "")
    return f"{data.get('status', 'finished')}: {', '.join(parts) or 'no tasks'}{tail}"
