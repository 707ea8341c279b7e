"""Engine events → `parex/taskEvent` notifications, with a task's output chunks coalesced under floods.

Every event is sent, in order. `output` events of one task are merged when they come faster than one
per `OUTPUT_INTERVAL`: the first chunk after a quiet spell goes out at once, later ones wait at most
`OUTPUT_INTERVAL` and go out as one chunk (their lines concatenated, `last` the latest). A task's
pending output is always sent before its next non-output event, so `succeeded`/`failed` come after
all of its output. The benchmark (tests/bench/bench_lsp.py) shows why: a flood of 20 tasks writing
line by line made ~1,800 notifications a second; merged, a client gets at most 20 a second a task.

While the client is not keeping up (`congested`: the writer holds more than a few MB it has not taken),
output waits longer and merges more, and a task's held-back output is kept to its newest `MAX_PENDING`
characters, with a line saying how many were left out (they are all in the task's log).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from parex_lsp.contract import Event, EventKind, Output

TASK_EVENT = "parex/taskEvent"
OUTPUT_INTERVAL = 0.05  # seconds between two output notifications of one task
MAX_PENDING = 1 << 20  # characters of output held back per task before it is sent anyway
CONGESTED_INTERVAL = 0.5  # seconds between two output notifications of one task while the client lags


class TaskEventNotifier:
    def __init__(self, send: Callable[[str, dict[str, Any]], None], interval: float = OUTPUT_INTERVAL,
                 congested: Callable[[], bool] = lambda: False):
        self._send, self.interval, self.congested = send, interval, congested
        self._pending: dict[str, list[Event]] = {}
        self._size: dict[str, int] = {}
        self._dropped: dict[str, int] = {}  # lines left out of a task's held-back output
        self._last: dict[str, float] = {}
        self._timers: dict[str, asyncio.TimerHandle] = {}

    def __call__(self, ev: Event) -> None:
        tid = ev.task_id
        if tid is None:  # run-level: everything before it goes first
            for other in list(self._pending):
                self.flush(other)
            self._send(TASK_EVENT, ev.to_wire())
            return
        if not isinstance(ev.data, Output):
            self.flush(tid)
            self._send(TASK_EVENT, ev.to_wire())
            return
        pending = self._pending.get(tid)
        if pending and pending[-1].attempt != ev.attempt:
            self.flush(tid)
            pending = None
        now = time.monotonic()
        lagging = self.congested()
        if not pending and now - self._last.get(tid, 0.0) >= self.interval and not lagging:
            self._last[tid] = now
            self._send(TASK_EVENT, ev.to_wire())
            return
        self._pending.setdefault(tid, []).append(ev)
        self._size[tid] = self._size.get(tid, 0) + len(ev.data.text)
        if self._size[tid] >= MAX_PENDING:
            if lagging:
                self._trim(tid)
            else:
                self.flush(tid)
        elif tid not in self._timers:
            self._arm(tid, max(0.0, self._last.get(tid, 0.0) + self.interval - now))

    def _arm(self, task_id: str, delay: float) -> None:
        self._timers[task_id] = asyncio.get_running_loop().call_later(delay, self._tick, task_id)

    def _tick(self, task_id: str) -> None:
        self._timers.pop(task_id, None)
        if self.congested():
            self._arm(task_id, CONGESTED_INTERVAL)
        else:
            self.flush(task_id)

    def _trim(self, task_id: str) -> None:
        """Keep the newest half of a lagging task's held-back output."""
        events = self._pending[task_id]
        size = self._size[task_id]
        while len(events) > 1 and size > MAX_PENDING // 2:
            dropped = events.pop(0)
            assert isinstance(dropped.data, Output)
            size -= len(dropped.data.text)
            self._dropped[task_id] = self._dropped.get(task_id, 0) + dropped.data.text.count("\n")
        self._size[task_id] = size

    def flush(self, task_id: str) -> None:
        if (timer := self._timers.pop(task_id, None)) is not None:
            timer.cancel()
        events = self._pending.pop(task_id, None)
        self._size.pop(task_id, None)
        if not events:
            return
        self._last[task_id] = time.monotonic()
        merged = merge(events)
        if (dropped := self._dropped.pop(task_id, 0)) and isinstance(merged.data, Output):
            note = f"[parex: {dropped} lines not sent while the client was not reading; all are in the task's log]\n"
            merged = Event(merged.run_id, merged.task_id, merged.kind, merged.attempt, merged.ts,
                           Output(note + merged.data.text, merged.data.last))
        self._send(TASK_EVENT, merged.to_wire())


def merge(events: list[Event]) -> Event:
    """Output events of one task and attempt as one: the lines in order, the latest non-empty `last`."""
    if len(events) == 1:
        return events[0]
    outputs = [e.data for e in events if isinstance(e.data, Output)]
    text = "".join(o.text for o in outputs)
    last = next((o.last for o in reversed(outputs) if o.last), "")
    end = events[-1]
    return Event(end.run_id, end.task_id, EventKind.OUTPUT, end.attempt, end.ts, Output(text, last))
