"""The words every layer shares: event kinds, task statuses, reason codes, and the one `Event` type that flows
from the engine to every consumer (journal, language server, terminal, tests).

Values are the protocol's (docs/protocol.md), so a `StrEnum` member is its own wire form. Each event carries
a typed payload; `Event.to_wire()` is the one place an event becomes JSON.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol


class EventKind(StrEnum):
    # task events (PROTOCOL §3); the four endings share their names with the task statuses
    QUEUED = "queued"
    STARTED = "started"
    OUTPUT = "output"
    RETRYING = "retrying"
    LOCK_WAIT = "lockWait"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"
    CANCELLED = "cancelled"
    USAGE = "usage"  # tokens and cost of one model request
    WARNING = "warning"  # something a person should know that did not fail the task
    MERGED = "merged"  # worktree isolation: the task's branch was merged
    READY = "ready"  # review mode: succeeded, its branch kept until a reviewer accepts, rejects or retries it
    REJECTED = "rejected"  # review mode: a reviewer rejected it; its branch is kept
    CONFLICT_PREDICTED = "conflictPredicted"  # a dry merge found conflicts between two tasks (or one and base)
    SPAWNED = "spawned"  # journal only: an agent process {pid, startTime}, so a later run can end it
    # agent-wide (taskId null; docs/protocol.md §6): quotas and spend
    COOLDOWN = "cooldown"  # an agent was rate limited: every task of it waits until `until`
    CONCURRENCY = "concurrency"  # an agent's effective concurrency changed (halved on a rate limit, regrown)
    BUDGET_EXCEEDED = "budgetExceeded"  # the run's spend reached its budget: nothing new starts
    # run events (taskId null)
    RUN_STARTED = "runStarted"
    RUN_FINISHED = "runFinished"
    LOCK_BROKEN = "lockBroken"
    ORPHANS_ENDED = "orphansEnded"  # agents of a runner that died were ended at this run's start


class TaskStatus(StrEnum):
    PENDING = "pending"
    WAITING = "waiting"  # for a lock
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"
    CANCELLED = "cancelled"
    READY = "ready"  # review mode: done, waiting for a reviewer (not final)
    REJECTED = "rejected"  # review mode: final, like skipped for the exit code


class RunStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    INTERRUPTED = "interrupted"  # journal without its end, runner gone
    READY = "ready"  # ended with tasks waiting for review (`parex-lsp review RUN` picks them up)


class Reason(StrEnum):
    """Why a task did not succeed: the `code` of its result, event and diagnostic."""

    EXIT_CODE = "exit-code"
    TIMEOUT = "timeout"
    RETRIES_EXHAUSTED = "retries-exhausted"
    MERGE_CONFLICT = "merge-conflict"
    LOCK_TIMEOUT = "lock-timeout"
    LOCK_ERROR = "lock-error"
    DEPENDENCY_FAILED = "dependency-failed"
    AGENT_NOT_FOUND = "agent-not-found"
    CANCELLED = "cancelled"
    SETUP_FAILED = "setup-failed"
    API_ERROR = "api-error"
    INTERNAL_ERROR = "internal-error"
    BUDGET_EXCEEDED = "budget-exceeded"  # the run's budget (or the task's max_cost) was spent
    RATE_LIMITED = "rate-limited"  # the agent's quota stayed exhausted longer than rate_limit_wait_max
    VERIFY_FAILED = "verify-failed"  # `[run] verify` failed after the merge; the merge was undone
    CHECK_FAILED = "check-failed"  # `check` failed in the task's worktree (every candidate's, for best-of)
    REJECTED = "rejected"  # a reviewer rejected the task


TERMINAL = frozenset({TaskStatus.SUCCEEDED, TaskStatus.FAILED, TaskStatus.SKIPPED, TaskStatus.CANCELLED,
                      TaskStatus.REJECTED})
ENDINGS = frozenset({EventKind.SUCCEEDED, EventKind.FAILED, EventKind.SKIPPED, EventKind.CANCELLED,
                     EventKind.REJECTED})


class Payload(Protocol):
    def to_wire(self) -> dict[str, Any]: ...


def _compact(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if v is not None}


@dataclass(frozen=True, slots=True)
class Output:
    text: str  # complete lines
    last: str  # the last non-empty one (what a progress bar shows)

    def to_wire(self) -> dict[str, Any]:
        return {"text": self.text, "last": self.last}


@dataclass(frozen=True, slots=True)
class Started:
    agent: str
    workdir: str

    def to_wire(self) -> dict[str, Any]:
        return {"agent": self.agent, "workdir": self.workdir}


@dataclass(frozen=True, slots=True)
class Retrying:
    delay: float
    code: str | None
    reason: str | None

    def to_wire(self) -> dict[str, Any]:
        return {"delay": round(self.delay, 3), "code": self.code, "reason": self.reason}


@dataclass(frozen=True, slots=True)
class LockWait:
    path: str
    holder: dict[str, Any]
    message: str

    def to_wire(self) -> dict[str, Any]:
        return {"path": self.path, "holder": self.holder, "message": self.message}


@dataclass(frozen=True, slots=True)
class LockBroken:
    key: str
    owner: dict[str, Any]

    def to_wire(self) -> dict[str, Any]:
        return {"key": self.key, "owner": self.owner}


@dataclass(frozen=True, slots=True)
class Merged:
    commit: str | None
    message: str

    def to_wire(self) -> dict[str, Any]:
        return {"commit": self.commit, "message": self.message}


@dataclass(frozen=True, slots=True)
class ConflictPredicted:
    """A dry merge (no checkout touched) of this task's branch against `other` (a task id, or None for the
    base branch as it is now) found conflicts in `files`."""

    other: str | None
    files: tuple[str, ...]
    message: str

    def to_wire(self) -> dict[str, Any]:
        return {"other": self.other, "files": list(self.files), "message": self.message}


@dataclass(frozen=True, slots=True)
class Usage:
    values: dict[str, Any]  # {promptTokens, completionTokens, costUsd?}

    def to_wire(self) -> dict[str, Any]:
        return dict(self.values)


@dataclass(frozen=True, slots=True)
class Cooldown:
    """Every task of `agent` waits until `until` (epoch seconds): one shared pause per rate-limited agent."""

    agent: str
    until: float
    reason: str

    def to_wire(self) -> dict[str, Any]:
        return {"agent": self.agent, "until": round(self.until, 3), "reason": self.reason}


@dataclass(frozen=True, slots=True)
class Concurrency:
    """An agent's effective concurrency: `level` of at most `max` tasks at once."""

    agent: str
    level: int
    max: int
    reason: str

    def to_wire(self) -> dict[str, Any]:
        return {"agent": self.agent, "level": self.level, "max": self.max, "reason": self.reason}


@dataclass(frozen=True, slots=True)
class BudgetExceeded:
    spent: dict[str, Any]  # {tokens, costUsd}
    budget: dict[str, Any]  # {tokens?, usd?}
    message: str

    def to_wire(self) -> dict[str, Any]:
        return {"spent": self.spent, "budget": self.budget, "message": self.message}


@dataclass(frozen=True, slots=True)
class TaskWarning:
    reason: str  # e.g. "truncated"
    message: str

    def to_wire(self) -> dict[str, Any]:
        return {"reason": self.reason, "message": self.message}


@dataclass(frozen=True, slots=True)
class Spawned:
    pid: int
    start_time: str | None

    def to_wire(self) -> dict[str, Any]:
        return {"pid": self.pid, "startTime": self.start_time}


@dataclass(frozen=True, slots=True)
class Ended:
    """A task's ending (kind succeeded, failed, skipped or cancelled)."""

    duration_ms: int
    exit_code: int | None = None
    code: str | None = None
    reason: str | None = None
    tail: tuple[str, ...] = ()
    log_path: str | None = None
    usage: dict[str, Any] | None = None
    answer: str | None = None
    reused_from: str | None = None  # resume: succeeded in this earlier run, not run again
    warnings: tuple[dict[str, Any], ...] = ()  # [{reason, message}]: what a person should know
    review: dict[str, Any] | None = None  # worktree runs: {changes, branch, candidates, ...} (review.py)

    def to_wire(self) -> dict[str, Any]:
        d: dict[str, Any] = {"durationMs": self.duration_ms, "exitCode": self.exit_code, "code": self.code,
                             "reason": self.reason}
        if self.reused_from is None:
            d["tail"] = list(self.tail)
            d["logPath"] = self.log_path
        if self.warnings:
            d["warnings"] = list(self.warnings)
        return {**d, **_compact({"usage": self.usage, "answer": self.answer, "reusedFrom": self.reused_from}),
                **(self.review or {})}


@dataclass(frozen=True, slots=True)
class TaskInfo:
    """A task as the run's first event announces it, so clients never re-parse plans or build paths."""

    id: str
    prompt: str
    agent: str
    range: dict[str, Any] | None  # LSP range of the task in its plan document
    log_path: str | None  # None for a task kept from an earlier run (resume): it does not run
    reused_from: str | None = None

    def to_wire(self) -> dict[str, Any]:
        d = {"id": self.id, "prompt": self.prompt, "agent": self.agent, "range": self.range,
             "logPath": self.log_path}
        return {**d, "reusedFrom": self.reused_from} if self.reused_from else d


@dataclass(frozen=True, slots=True)
class RunStarted:
    plan: str | None
    pid: int
    tasks: tuple[TaskInfo, ...]
    max_concurrency: int
    isolation: str
    resumed_from: str | None = None

    def to_wire(self) -> dict[str, Any]:
        return {"plan": self.plan, "pid": self.pid, "tasks": [t.to_wire() for t in self.tasks],
                "maxConcurrency": self.max_concurrency, "isolation": self.isolation,
                "resumedFrom": self.resumed_from}


@dataclass(frozen=True, slots=True)
class OrphansEnded:
    processes: tuple[dict[str, Any], ...]

    def to_wire(self) -> dict[str, Any]:
        return {"processes": list(self.processes)}


@dataclass(frozen=True, slots=True)
class Wire:
    """A payload known only by its wire form: events read back from a journal, or a run's final result."""

    data: dict[str, Any]

    def to_wire(self) -> dict[str, Any]:
        return self.data


@dataclass(frozen=True, slots=True)
class Event:
    run_id: str
    task_id: str | None
    kind: EventKind
    attempt: int = 0
    ts: float = field(default_factory=time.time)
    data: Payload | None = None

    def to_wire(self) -> dict[str, Any]:
        d: dict[str, Any] = {"runId": self.run_id, "taskId": self.task_id, "kind": str(self.kind),
                             "attempt": self.attempt, "timestamp": self.ts}
        if self.data is not None:
            d["data"] = self.data.to_wire()
        return d


Sink = Callable[[Event], None]
