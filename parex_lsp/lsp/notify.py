"""Engine events → `parex/taskEvent` notifications, with a task's output chunks coalesced under floods.

Every event is sent, in order. `output` events of one task are merged when they come faster than one
per `OUTPUT_INTERVAL`: the first chunk after a quiet spell goes out at once, later ones wait at most
`OUTPUT_INTERVAL` and go out as one chunk (their lines concatenated, `last` the latest). A task's
pending output is always sent before its next non-output event, so `succeeded`/`failed` come after
all of its output. The benchmark (tests/bench/bench_lsp.py) shows why: a flood of 20 tasks writing
line by line made ~1,800 notifications a second; merged, a client gets at most 20 a second a task.
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


class TaskEventNotifier:
    def __init__(self, send: Callable[[str, dict[str, Any]], None], interval: float = OUTPUT_INTERVAL):
        self._send, self.interval = send, interval
        self._pending: dict[str, list[Event]] = {}
        self._size: dict[str, int] = {}
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
        if not pending and now - self._last.get(tid, 0.0) >= self.interval:
            self._last[tid] = now
            self._send(TASK_EVENT, ev.to_wire())
            return
        self._pending.setdefault(tid, []).append(ev)
        self._size[tid] = self._size.get(tid, 0) + len(ev.data.text)
        if self._size[tid] >= MAX_PENDING:
            self.flush(tid)
        elif tid not in self._timers:
            delay = max(0.0, self._last.get(tid, 0.0) + self.interval - now)
            self._timers[tid] = asyncio.get_running_loop().call_later(delay, self.flush, tid)

    def flush(self, task_id: str) -> None:
        if (timer := self._timers.pop(task_id, None)) is not None:
            timer.cancel()
        events = self._pending.pop(task_id, None)
        self._size.pop(task_id, None)
        if not events:
            return
        self._last[task_id] = time.monotonic()
        self._send(TASK_EVENT, merge(events).to_wire())


def merge(events: list[Event]) -> Event:
    """Output events of one task and attempt as one: the lines in order, the latest non-empty `last`."""
    if len(events) == 1:
        return events[0]
    outputs = [e.data for e in events if isinstance(e.data, Output)]
    text = "".join(o.text for o in outputs)
    last = next((o.last for o in reversed(outputs) if o.last), "")
    end = events[-1]
    return Event(end.run_id, end.task_id, EventKind.OUTPUT, end.attempt, end.ts, Output(text, last))
