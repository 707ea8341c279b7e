"""Append-only run journal: `.parex/runs/<runId>/journal.jsonl`, one event a line, flushed before it is shown.

A run's state is rebuilt from its journal alone (`replay`), which is what `resume` and `status` read.
"""

from __future__ import annotations

import json
import os
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from parex_lsp.engine.events import (OUTPUT, RUN_FINISHED, RUN_STARTED, STARTED, TERMINAL, Event)
from parex_lsp.engine.processes import pid_alive

STATE_DIR = ".parex"


def state_dir(workspace: Path) -> Path:
    return workspace / STATE_DIR


def runs_dir(workspace: Path) -> Path:
    return state_dir(workspace) / "runs"


def new_run_id() -> str:
    """Sortable by start time to the millisecond (so `last` is the latest), unique across processes."""
    now = time.time()
    return time.strftime("%Y%m%d-%H%M%S", time.localtime(now)) + f"-{int(now * 1000) % 1000:03d}-" + secrets.token_hex(3)


def ensure_state_dir(workspace: Path) -> Path:
    """Create `.parex/` and, on first run in a git checkout, ignore it in `.gitignore`."""
    d = state_dir(workspace)
    first = not d.exists()
    d.mkdir(parents=True, exist_ok=True)
    (d / ".gitignore").write_text("*\n") if not (d / ".gitignore").exists() else None
    gi = workspace / ".gitignore"
    if first and (workspace / ".git").exists():
        text = gi.read_text() if gi.exists() else ""
        if not any(line.strip().rstrip("/") in (".parex", "/.parex") for line in text.splitlines()):
            with gi.open("a") as f:
                f.write(("" if not text or text.endswith("\n") else "\n") + ".parex/\n")
    return d


class Journal:
    """Writes one run's events; `append` returns only once the line is flushed to the OS."""

    def __init__(self, workspace: Path, run_id: str):
        self.dir = runs_dir(workspace) / run_id
        self.dir.mkdir(parents=True, exist_ok=True)
        self.path = self.dir / "journal.jsonl"
        self._f = self.path.open("a", encoding="utf-8", buffering=1 << 16)

    def append(self, event: Event) -> None:
        self._f.write(json.dumps(event.to_wire(), separators=(",", ":")) + "\n")
        self._f.flush()

    def close(self) -> None:
        if not self._f.closed:
            self._f.flush()
            os.fsync(self._f.fileno())
            self._f.close()

    def log_path(self, task_id: str) -> Path:
        return self.dir / f"{task_id}.log"


def read_events(path: Path, output: bool = True) -> Iterator[Event]:
    """Events of a journal; a torn last line (the writer was killed mid-write) is ignored."""
    with path.open(encoding="utf-8") as f:
        for line in f:
            if not output and '"kind":"output"' in line:
                continue  # the bulk of a journal; state never depends on it
            try:
                yield Event.from_wire(json.loads(line))
            except (ValueError, KeyError):
                continue


@dataclass
class TaskRecord:
    id: str
    status: str = "pending"  # pending | queued | running | succeeded | failed | skipped | cancelled
    attempts: int = 0
    started: float | None = None
    ended: float | None = None
    duration_ms: int | None = None
    exit_code: int | None = None
    code: str | None = None
    reason: str | None = None
    answer: str | None = None  # a model agent's final text
    pid: int | None = None  # the agent process of the latest attempt (leader of its own process group)
    pid_start: str | None = None


@dataclass
class RunRecord:
    run_id: str
    path: Path
    plan: str | None = None
    status: str = "running"  # running | succeeded | failed | cancelled | interrupted (no runFinished, runner gone)
    started: float | None = None
    ended: float | None = None
    pid: int | None = None
    tasks: dict[str, TaskRecord] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)


def replay(path: Path) -> RunRecord:
    """Rebuild a run's state from its journal."""
    rec = RunRecord(run_id=path.parent.name, path=path)
    for ev in read_events(path, output=False):
        data = ev.data or {}
        if ev.kind == RUN_STARTED:
            rec.started, rec.plan, rec.pid = ev.ts, data.get("plan"), data.get("pid")
            for tid in data.get("tasks", []):
                rec.tasks.setdefault(tid, TaskRecord(tid))
            continue
        if ev.kind == RUN_FINISHED:
            rec.status, rec.ended, rec.summary = data.get("status", "failed"), ev.ts, data
            continue
        if ev.task_id is None or ev.kind == OUTPUT:
            continue
        t = rec.tasks.setdefault(ev.task_id, TaskRecord(ev.task_id))
        t.attempts = max(t.attempts, ev.attempt)
        if ev.kind == "spawned":
            t.pid, t.pid_start = data.get("pid"), data.get("startTime")
        elif ev.kind == "queued":
            t.status = "queued"
        elif ev.kind == STARTED:
            t.status, t.started = "running", t.started or ev.ts
        elif ev.kind in TERMINAL:
            t.status, t.ended = ev.kind, ev.ts
            t.duration_ms, t.exit_code = data.get("durationMs"), data.get("exitCode")
            t.code, t.reason = data.get("code"), data.get("reason")
            t.answer = data.get("answer", t.answer)
    if rec.status == "running" and not (rec.pid and pid_alive(rec.pid)):
        rec.status = "interrupted"
    return rec


def list_runs(workspace: Path) -> list[Path]:
    """Journals of past runs, oldest first."""
    d = runs_dir(workspace)
    if not d.is_dir():
        return []
    return sorted(p / "journal.jsonl" for p in d.iterdir() if (p / "journal.jsonl").is_file())


def find_run(workspace: Path, ref: str, plan: str | None = None) -> Path | None:
    """A run's journal by id, or `last` (the newest, of the same plan when given)."""
    runs = list_runs(workspace)
    if ref != "last":
        p = runs_dir(workspace) / ref / "journal.jsonl"
        return p if p.is_file() else None
    for p in reversed(runs):
        if plan is None or _plan_of(p) == plan:
            return p
    return None


def _plan_of(path: Path) -> str | None:
    for ev in read_events(path):
        return (ev.data or {}).get("plan") if ev.kind == RUN_STARTED else None
    return None
