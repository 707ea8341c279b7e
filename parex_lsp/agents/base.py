"""The agent interface: `Agent.run(ctx) -> Outcome`. The engine owns scheduling, retries and timeouts;
an agent only runs one attempt of one task and reports its output through `ctx.output`."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Protocol

from parex_lsp.plan.model import AgentSpec, TaskSpec

if TYPE_CHECKING:
    from parex_lsp.engine.locks import WorkspaceLocks
    from parex_lsp.engine.output import TaskOutput

# Reason codes (PROTOCOL §3), the `code` of a failed outcome and of its diagnostic.
EXIT_CODE, TIMEOUT, RETRIES_EXHAUSTED = "exit-code", "timeout", "retries-exhausted"
MERGE_CONFLICT, LOCK_TIMEOUT, DEPENDENCY_FAILED = "merge-conflict", "lock-timeout", "dependency-failed"
AGENT_NOT_FOUND, CANCELLED, SETUP_FAILED, API_ERROR = "agent-not-found", "cancelled", "setup-failed", "api-error"


@dataclass(slots=True)
class Outcome:
    """How one attempt ended. Failure is data: the engine decides on retries from `transient`."""

    ok: bool
    exit_code: int | None = None
    code: str | None = None  # a reason code above when not ok
    reason: str | None = None  # one line a person can act on
    transient: bool = False  # worth another attempt (rate limit, 5xx, dropped connection, retry_on match)
    retry_after: float | None = None  # seconds the far side asked us to wait
    usage: dict[str, Any] | None = None  # {promptTokens, completionTokens, costUsd?}
    answer: str | None = None  # a model agent's final text
    warnings: list[dict[str, Any]] | None = None  # [{reason, message}]: e.g. a model answer cut at its length limit


@dataclass(slots=True)
class AgentContext:
    """Everything one attempt may use. `workdir` is the workspace, or the task's worktree."""

    run_id: str
    task: TaskSpec
    agent: AgentSpec
    workdir: Path
    workspace: Path
    attempt: int
    output: TaskOutput  # write() streams text to the log, the tail and `output` events
    emit: Callable[[str, dict[str, Any]], None]  # extra task events (kind, data), e.g. usage
    locks: WorkspaceLocks | None = None  # per-write file locks for agents with file tools
    kill_grace: float = 5.0
    env: dict[str, str] = field(default_factory=dict)  # extra environment (agent env + PAREX_* vars)
    on_spawn: Callable[[int], None] | None = None  # told each agent process's pid (the journal keeps it)


class Agent(Protocol):
    async def run(self, ctx: AgentContext) -> Outcome: ...
