"""What earlier runs of a plan left behind, loaded once before a run starts (off the event loop).

`only` and `resume` trust the latest outcome of each task across every earlier run of the plan, not only the
previous run; critical-path priorities use the latest known durations.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from parex_lsp.contract import TERMINAL, RunStatus, TaskStatus
from parex_lsp.engine.journal import RunRecord, list_runs, plan_of, replay


@dataclass(frozen=True, slots=True)
class Earlier:
    """A task's latest outcome, and the run it came from."""

    status: str
    run_id: str
    answer: str | None = None


@dataclass(slots=True)
class History:
    latest: dict[str, Earlier] = field(default_factory=dict)
    durations: dict[str, float] = field(default_factory=dict)  # seconds, the latest known
    runs: list[str] = field(default_factory=list)  # run ids of the plan, oldest first
    live: list[RunRecord] = field(default_factory=list)  # runs of the plan still running (in any process)


def load_history(workspace: Path, plan_key: str | None, until: str | None = None) -> History:
    """Every run of the plan (all runs when `plan_key` is None), oldest first, up to and including `until`;
    runs still running are noted whenever they started."""
    history = History()
    done = False
    for journal in list_runs(workspace):
        if plan_key is not None and plan_of(journal) != plan_key:
            continue
        record = replay(journal)
        if record.status == RunStatus.RUNNING:
            history.live.append(record)
        if done:
            continue  # later than `until`: only whether it is still running matters
        history.runs.append(record.run_id)
        done = record.run_id == until
        for task in record.tasks.values():
            if task.status in TERMINAL:
                history.latest[task.id] = Earlier(task.status, record.run_id,
                                                  task.answer if task.status == TaskStatus.SUCCEEDED else None)
            if task.duration_ms:
                history.durations[task.id] = task.duration_ms / 1000
    return history
