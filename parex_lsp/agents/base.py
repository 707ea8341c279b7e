"""The agent interface: `Agent.run(ctx) -> Outcome`. The engine owns scheduling, retries and timeouts;
an agent only runs one attempt of one task and reports through the small protocols of its context, which
the engine supplies: agents never import the engine."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

from parex_lsp.contract import EventKind, Payload, Reason
from parex_lsp.isolation.registry import LockOwner
from parex_lsp.plan.model import AgentSpec, TaskSpec

# The reason codes agents return (contract.Reason owns them).
EXIT_CODE, TIMEOUT, RETRIES_EXHAUSTED = Reason.EXIT_CODE, Reason.TIMEOUT, Reason.RETRIES_EXHAUSTED
LOCK_TIMEOUT, AGENT_NOT_FOUND, CANCELLED = Reason.LOCK_TIMEOUT, Reason.AGENT_NOT_FOUND, Reason.CANCELLED
SETUP_FAILED, API_ERROR = Reason.SETUP_FAILED, Reason.API_ERROR
T = TypeVar("T")


@dataclass(slots=True)
class Outcome:
    """How one attempt ended. Failure is data: the engine decides on retries from `transient`."""

    ok: bool
    exit_code: int | None = None
    code: str | None = None  # a Reason when not ok
    reason: str | None = None  # one line a person can act on
    transient: bool = False  # worth another attempt (rate limit, 5xx, dropped connection, retry_on match)
    retry_after: float | None = None  # seconds the far side asked us to wait
    usage: dict[str, Any] | None = None  # {promptTokens, completionTokens, costUsd?}
    answer: str | None = None  # a model agent's final text
    rate_limited: bool = False  # the agent's quota, not this attempt, failed it: wait out the cooldown, run again
    warnings: list[dict[str, Any]] | None = None  # [{reason, message}]: e.g. a model answer cut at its length limit


class RateLimit(Exception):
    """Raised by a request the far side refused for now (HTTP 429, an overload answer). Under a `RequestGate`
    the request is sent again once the agent's shared cooldown (`retry_after` seconds) has passed."""

    def __init__(self, reason: str, retry_after: float | None = None):
        super().__init__(reason)
        self.reason, self.retry_after = reason, retry_after


class RequestRefused(Exception):
    """The gate will not send the request: the budget is spent, or the quota stayed exhausted too long."""

    def __init__(self, code: str, reason: str):
        super().__init__(reason)
        self.code, self.reason = code, reason


class RequestGate(Protocol):
    """The engine's say over each model request: it may wait (a shared cooldown, the budget's last requests),
    refuse (`RequestRefused`), or send a rate-limited request again. Agents call `send` at each request."""

    async def send(self, request: Callable[[], Awaitable[T]]) -> T: ...


class DirectGate:
    """No engine: every request is sent as it comes."""

    async def send(self, request: Callable[[], Awaitable[T]]) -> T:
        return await request()


class Output(Protocol):
    """A task's output: the log, the tail and `output` events."""

    transient_match: str | None  # the first output line that matched the agent's `retry_on`

    def write(self, text: str) -> None: ...  # log and show
    def log(self, text: str) -> None: ...  # the log only (e.g. raw JSON events, shown parsed)
    def show(self, text: str) -> None: ...  # events and tail only
    def mark(self, text: str) -> None: ...  # a line of parex's own
    def flush(self) -> None: ...


OnLockWait = Callable[[str, LockOwner], None]


class FileLocks(Protocol):
    """Per-write file locks, shared with every other task and parex process on the workspace."""

    def hold(self, run_id: str, task_id: str, paths: Sequence[str | Path], timeout: float | None = None,
             on_wait: OnLockWait | None = None) -> AbstractAsyncContextManager[frozenset[str]]: ...


@dataclass(slots=True)
class AgentContext:
    """Everything one attempt may use. `workdir` is the workspace, or the task's worktree."""

    run_id: str
    task: TaskSpec
    agent: AgentSpec
    workdir: Path
    workspace: Path
    attempt: int
    output: Output
    emit: Callable[[EventKind, Payload], None] = lambda kind, payload: None  # extra task events, e.g. usage
    locks: FileLocks | None = None  # per-write file locks for agents with file tools (None: nothing shared)
    on_lock_wait: OnLockWait | None = None  # told whom a write waits for; the engine reports it
    kill_grace: float = 5.0
    env: dict[str, str] = field(default_factory=dict)  # extra environment (agent env + PAREX_* vars)
    on_spawn: Callable[[int], None] | None = None  # told each agent process's pid (the journal keeps it)
    gate: RequestGate = field(default_factory=DirectGate)  # budget and quota at each model request
    shared_context: str | None = None  # `context` files (engine/shared_context.py): model agents' system message


class Agent(Protocol):
    async def run(self, ctx: AgentContext) -> Outcome: ...
