"""Append-only run journal: `.parex/runs/<runId>/journal.jsonl`, one event a line, flushed before it is shown.

Output is kept once, in the task's log file: an `output` event is journaled with its `last` line only (what
`status` shows), never its text. The log is flushed before the event is emitted, so a reader of the journal
finds every byte the event stands for already in the log.

A run's state is rebuilt from its journal alone (`replay`), which is what `resume`, `only` and `status` read.
A damaged line (torn by a killed writer, or corrupted on disk) is skipped with a warning, never fatal.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from parex_lsp import state
from parex_lsp.contract import TERMINAL, Event, EventKind, RunStatus, TaskStatus
from parex_lsp.isolation.processes import pid_alive

log = logging.getLogger(__name__)


class Journal:
    """Writes one run's events; `append` returns only once the line is flushed to the OS."""

    def __init__(self, workspace: Path, run_id: str):
        self.path = state.journal_path(workspace, run_id)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._f = self.path.open("a", encoding="utf-8", buffering=1 << 16)

    def append(self, event: Event) -> None:
        wire = event.to_wire()
        if event.kind == EventKind.OUTPUT:
            wire["data"] = {"last": (wire.get("data") or {}).get("last", "")}  # the text is in the task's log
        self._f.write(json.dumps(wire, separators=(",", ":")) + "\n")
        self._f.flush()

    def close(self) -> None:
        if not self._f.closed:
            try:
                self._f.flush()
                os.fsync(self._f.fileno())
            finally:
                self._f.close()


def read_events(path: Path, output: bool = True) -> Iterator[dict[str, Any]]:
    """The events of a journal in their wire form; damaged lines are skipped (and logged)."""
    with path.open("rb") as f:
        for n, raw in enumerate(f, 1):
            if not output and b'"kind":"output"' in raw:
                continue  # the bulk of a journal; state never depends on it
            try:
                d = json.loads(raw.decode("utf-8"))
                if isinstance(d, dict) and isinstance(d.get("kind"), str):
                    yield d
                    continue
            except (UnicodeDecodeError, ValueError):
                pass
            if raw.endswith(b"\n"):  # a torn last line is expected after a crash; anything else is damage
                log.warning("%s:%d: damaged journal line skipped", path, n)


@dataclass
class TaskRecord:
    id: str
    status: str = TaskStatus.PENDING  # or "queued" before it starts
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
    waiting_for: str | None = None  # the file it waits for, while it waits for a lock
    review: dict[str, Any] = field(default_factory=dict)  # worktree runs: branch, baseBranch, changes, candidates


@dataclass
class RunRecord:
    run_id: str
    path: Path
    plan: str | None = None
    status: str = RunStatus.RUNNING  # or interrupted: no runFinished, runner gone
    started: float | None = None
    ended: float | None = None
    pid: int | None = None
    tasks: dict[str, TaskRecord] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)


def replay(path: Path) -> RunRecord:
    """Rebuild a run's state from its journal."""
    rec = RunRecord(run_id=path.parent.name, path=path)
    for ev in read_events(path, output=False):
        data = ev.get("data") or {}
        kind, ts, task_id = ev["kind"], ev.get("timestamp") or 0.0, ev.get("taskId")
        if kind == EventKind.RUN_STARTED:
            rec.started, rec.plan, rec.pid = ts, data.get("plan"), data.get("pid")
            for entry in data.get("tasks", []):
                tid = entry["id"] if isinstance(entry, dict) else entry  # older journals: ids only
                rec.tasks.setdefault(tid, TaskRecord(tid))
            continue
        if kind == EventKind.RUN_FINISHED:
            rec.status, rec.ended, rec.summary = data.get("status", RunStatus.FAILED), ts, data
            continue
        if task_id is None:
            continue
        t = rec.tasks.setdefault(task_id, TaskRecord(task_id))
        t.attempts = max(t.attempts, int(ev.get("attempt") or 0))
        if kind == EventKind.SPAWNED:
            t.pid, t.pid_start = data.get("pid"), data.get("startTime")
        elif kind == EventKind.QUEUED:
            t.status = "queued"
            if data.get("retriedIn"):  # a reviewer retried this ready task of an ended run in that run
                t.review["retriedIn"] = data["retriedIn"]
                t.reason = f"retried in run {data['retriedIn']}"  # what `status` notes for it
        elif kind == EventKind.LOCK_WAIT:
            t.waiting_for = data.get("path")
            if t.status != TaskStatus.RUNNING:
                t.status = TaskStatus.WAITING
        elif kind == EventKind.STARTED:
            t.status, t.started, t.waiting_for = TaskStatus.RUNNING, t.started or ts, None
        elif kind == EventKind.READY:
            t.status, t.ended, t.duration_ms = TaskStatus.READY, ts, data.get("durationMs")
            t.review = {k: data[k] for k in ("branch", "baseBranch", "changes", "candidates") if k in data}
        elif kind in TERMINAL:
            t.status, t.ended = kind, ts
            t.duration_ms, t.exit_code = data.get("durationMs"), data.get("exitCode")
            t.code, t.reason = data.get("code"), data.get("reason")
            t.answer = data.get("answer", t.answer)
            t.review.update({k: data[k] for k in ("branch", "baseBranch", "changes", "candidates", "branchKept")
                             if k in data})
    if rec.status == RunStatus.RUNNING and not (rec.pid and pid_alive(rec.pid)):
        rec.status = RunStatus.INTERRUPTED
    return rec


def list_runs(workspace: Path) -> list[Path]:
    """Journals of past runs, oldest first."""
    d = state.runs_dir(workspace)
    if not d.is_dir():
        return []
    return sorted(p / "journal.jsonl" for p in d.iterdir() if (p / "journal.jsonl").is_file())


def find_run(workspace: Path, ref: str, plan: str | None = None) -> Path | None:
    """A run's journal by id, or `last` (the newest, of the same plan when given)."""
    if ref != "last":
        if not state.is_task_id(ref) or ref.startswith("."):  # run ids are names of folders under runs/
            return None
        p = state.journal_path(workspace, ref)
        return p if p.is_file() else None
    for p in reversed(list_runs(workspace)):
        if plan is None or plan_of(p) == plan:
            return p
    return None


def is_running(workspace: Path, run_id: str) -> bool:
    """Whether run `run_id` is still running, in any process (its journal has no end, its runner lives)."""
    journal = find_run(workspace, run_id)
    return journal is not None and replay(journal).status == RunStatus.RUNNING


def plan_of(path: Path) -> str | None:
    """The plan a journal's run ran (its first event), without reading the rest."""
    for ev in read_events(path):
        return (ev.get("data") or {}).get("plan") if ev["kind"] == EventKind.RUN_STARTED else None
    return None
