"""`RunResult` (PROTOCOL §2): what a run ends with, the same for the editor, the terminal and `--json`."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(slots=True)
class TaskResult:
    id: str
    status: str
    attempts: int
    duration_ms: int
    exit_code: int | None = None
    error: str | None = None  # the reason, when not succeeded
    code: str | None = None  # the reason code, when not succeeded
    log_path: Path | None = None
    usage: dict[str, Any] | None = None
    answer: str | None = None
    reused_from: str | None = None  # succeeded in this earlier run; not run again (resume)
    warnings: list[dict[str, Any]] | None = None  # [{reason, message}], e.g. a truncated model answer
    agent: str | None = None  # whose usage this is (per-agent sums); not on the wire per task
    review: dict[str, Any] | None = None  # worktree runs: branch, changes, candidates (engine/review.py)

    def to_wire(self) -> dict[str, Any]:
        d: dict[str, Any] = {"id": self.id, "status": self.status, "attempts": self.attempts,
                             "durationMs": self.duration_ms}
        for key, value in (("exitCode", self.exit_code), ("error", self.error), ("code", self.code),
                           ("usage", self.usage), ("answer", self.answer), ("reusedFrom", self.reused_from),
                           ("warnings", self.warnings)):
            if value is not None:
                d[key] = value
        d["logUri"] = self.log_path.as_uri() if self.log_path else None
        return {**d, **(self.review or {})}


def sum_usage(usages: list[dict[str, Any]]) -> dict[str, Any] | None:
    if not usages:
        return None
    total: dict[str, Any] = {}
    for u in usages:
        for key, value in u.items():
            if isinstance(value, (int, float)):
                total[key] = total.get(key, 0) + value
    return total


@dataclass(slots=True)
class RunResult:
    run_id: str
    status: str  # succeeded | failed | cancelled
    tasks: list[TaskResult] = field(default_factory=list)
    wall_ms: int = 0
    budget: dict[str, Any] | None = None  # {spent, budget, exceeded, summary} when the run had a budget
    kept: list[dict[str, str]] = field(default_factory=list)  # branches kept, not merged: {taskId, branch}

    @property
    def work_ms(self) -> int:
        return sum(t.duration_ms for t in self.tasks)

    @property
    def speedup(self) -> float:
        return round(self.work_ms / self.wall_ms, 2) if self.wall_ms else 0.0

    @property
    def usage(self) -> dict[str, Any] | None:
        return sum_usage([t.usage for t in self.tasks if t.usage])

    def usage_by_agent(self) -> dict[str, dict[str, Any]]:
        agents = sorted({t.agent for t in self.tasks if t.usage and t.agent})
        return {a: sum_usage([t.usage for t in self.tasks if t.usage and t.agent == a]) or {} for a in agents}

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for t in self.tasks:
            out[t.status] = out.get(t.status, 0) + 1
        return out

    def to_wire(self) -> dict[str, Any]:
        d: dict[str, Any] = {"runId": self.run_id, "status": self.status, "tasks": [t.to_wire() for t in self.tasks],
                             "wallMs": self.wall_ms, "workMs": self.work_ms, "speedup": self.speedup}
        if self.usage:
            d["usage"] = self.usage
            d["usageByAgent"] = self.usage_by_agent()
        if self.budget:
            d["budget"] = self.budget
        if self.kept:
            d["keptBranches"] = self.kept
        return d
