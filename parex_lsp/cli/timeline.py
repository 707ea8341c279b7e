"""A run's timeline from its journal: attempts, lock waits and retry backoffs as intervals, attempts placed in
concurrency slots, the critical path that decided the wall time. Read by `parex-lsp report` (cli/report.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from parex_lsp.contract import TERMINAL, EventKind, TaskStatus
from parex_lsp.engine.journal import read_events


@dataclass
class Bar:
    task: str
    kind: str  # "attempt", "lock-wait" or "backoff"
    start: float  # seconds from the run's start
    end: float
    outcome: str  # attempt: succeeded, failed, cancelled, ready, retried, running; else the kind
    attempt: int = 0
    note: str = ""  # the reason, the file waited for, the backoff's cause
    lane: int = 0
    critical: bool = False


@dataclass
class Timeline:
    run_id: str
    plan: str | None
    status: str
    wall: float
    slots: int  # the run's max concurrency
    bars: list[Bar] = field(default_factory=list)
    summary: dict[str, float] = field(default_factory=dict)  # the run's own wallMs, workMs, speedup when it ended
    never_ran: dict[str, str] = field(default_factory=dict)  # skipped (or cancelled before start) → why
    critical_path: list[str] = field(default_factory=list)

    @property
    def attempts(self) -> list[Bar]:
        return [b for b in self.bars if b.kind == "attempt"]

    @property
    def waits(self) -> list[Bar]:
        return [b for b in self.bars if b.kind != "attempt"]

    @property
    def work(self) -> float:
        """Seconds of task time: the run's own figure (as its summary said) when it ended, else the attempts'."""
        if "workMs" in self.summary:
            return self.summary["workMs"] / 1000
        return sum(b.end - b.start for b in self.attempts)

    @property
    def speedup(self) -> float:
        if "speedup" in self.summary:
            return self.summary["speedup"]
        return self.work / self.wall if self.wall > 0 else 0.0


def read_timeline(journal: Path, depends_on: dict[str, list[str]] | None = None) -> Timeline:
    """`depends_on` (the plan's, when its file is still there) lets the critical path follow dependencies."""
    t0 = end = 0.0
    tl = Timeline(journal.parent.name, None, "running", 0.0, 1)
    open_attempt: dict[str, Bar] = {}
    open_wait: dict[str, Bar] = {}
    ended_at: dict[str, float] = {}
    held_up_by: dict[str, list[str]] = {t: list(d) for t, d in (depends_on or {}).items()}  # deps and lock holders
    last_attempt: dict[str, int] = {}
    for ev in read_events(journal):  # output events too: after a retry, the first sign of the next attempt
        kind, data, task = ev["kind"], ev.get("data") or {}, ev.get("taskId")
        ts = float(ev.get("timestamp") or 0.0)
        if kind == EventKind.RUN_STARTED:
            t0, tl.plan, tl.slots = ts, data.get("plan"), int(data.get("maxConcurrency") or 1)
            continue
        at = ts - t0
        end = max(end, at)
        if kind == EventKind.RUN_FINISHED:
            tl.status = str(data.get("status", "ended"))
            tl.summary = {k: float(v) for k, v in data.items() if k in ("wallMs", "workMs", "speedup")
                          and isinstance(v, int | float)}
            continue
        if task is None:
            continue
        n = int(ev.get("attempt") or 0)
        if n > last_attempt.get(task, 0) and task not in open_attempt:  # a retry's attempt has no `started`
            _close(open_wait, task, at)
            open_attempt[task] = Bar(task, "attempt", at, at, "running", attempt=n)
            tl.bars.append(open_attempt[task])
        last_attempt[task] = max(last_attempt.get(task, 0), n)
        if kind in (EventKind.LOCK_WAIT, EventKind.RETRYING):
            _close(open_wait, task, at)
            is_lock = kind == EventKind.LOCK_WAIT
            note = f"waiting for {data.get('path')}" if is_lock else f"backoff {data.get('delay')}s: {data.get('reason')}"
            holder = (data.get("holder") or {}).get("taskId") if is_lock else None
            if holder:
                held_up_by.setdefault(task, []).append(str(holder))
            if not is_lock:
                _close(open_attempt, task, at, "retried", str(data.get("reason") or ""))
            open_wait[task] = Bar(task, "lock-wait" if is_lock else "backoff", at, at, "waiting", note=note)
            tl.bars.append(open_wait[task])
        elif kind == EventKind.STARTED:
            _close(open_wait, task, at)
            if task not in open_attempt:
                open_attempt[task] = Bar(task, "attempt", at, at, "running", attempt=max(n, 1))
                tl.bars.append(open_attempt[task])
        elif kind in TERMINAL or kind == EventKind.READY:
            _close(open_wait, task, at)
            if task in open_attempt:
                _close(open_attempt, task, at, str(kind), str(data.get("reason") or ""))
                ended_at[task] = at
            elif kind != TaskStatus.SUCCEEDED:  # skipped, or cancelled before it started
                tl.never_ran[task] = f"{kind}: {data.get('reason') or ''}"
    for bar in [*open_attempt.values(), *open_wait.values()]:
        bar.end = end  # a run that did not finish: shown as far as it got
    tl.wall = end
    _place(tl)
    _mark_critical(tl, ended_at, held_up_by)
    return tl


def _close(open_bars: dict[str, Bar], task: str, at: float, outcome: str | None = None, note: str = "") -> None:
    bar = open_bars.pop(task, None)
    if bar is not None:
        bar.end = at
        if outcome is not None:
            bar.outcome, bar.note = outcome, note or bar.note


def _place(tl: Timeline) -> None:
    """Attempts into slots (the first free lane, by start), waits into lanes of their own below."""
    for bars in (tl.attempts, tl.waits):
        lane_free: list[float] = []
        for bar in sorted(bars, key=lambda b: (b.start, b.end)):
            lane = next((i for i, free in enumerate(lane_free) if free <= bar.start + 1e-9), len(lane_free))
            if lane == len(lane_free):
                lane_free.append(0.0)
            lane_free[lane] = bar.end
            bar.lane = lane


def _mark_critical(tl: Timeline, ended_at: dict[str, float], depends_on: dict[str, list[str]]) -> None:
    """From the task that ended last back through what each one waited for longest (of its dependencies and
    the holders of locks it waited for, the one that ended last): the chain that set the run's wall time."""
    if not ended_at:
        return
    chain = [max(ended_at, key=lambda t: ended_at[t])]
    while True:
        deps = [d for d in depends_on.get(chain[-1], []) if d in ended_at and d not in chain]
        if not deps:
            break
        chain.append(max(deps, key=lambda d: ended_at[d]))
    tl.critical_path = chain[::-1]
    on_path = set(chain)
    for bar in tl.attempts:
        bar.critical = bar.task in on_path
