"""One task's life in a run: its workdir from the isolation, `[run] setup` in a fresh checkout, its attempts
under retries and a timeout, and the isolation's finish (a merge in worktree mode). Builds one
`AgentContext` per attempt; the scheduler (run.py) decides when it starts and what its ending releases."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

import anyio

from parex_lsp.agents.base import AgentContext, Outcome
from parex_lsp.agents.command import SHELL
from parex_lsp.agents.process import run_process
from parex_lsp.contract import EventKind, Merged, Payload, Reason, Retrying, Started, TaskStatus
from parex_lsp.engine.limits import Limits
from parex_lsp.engine.output import TaskOutput, compile_patterns
from parex_lsp.engine.result import TaskResult
from parex_lsp.engine.retry import with_retries
from parex_lsp.engine.shared_context import ContextError, SharedContext
from parex_lsp.executors import Executor, LocalExecutor
from parex_lsp.isolation.modes import Isolation
from parex_lsp.isolation.registry import LockOwner
from parex_lsp.isolation.worktree import WorktreeError
from parex_lsp.plan.model import Plan, TaskSpec

if TYPE_CHECKING:
    from parex_lsp.engine.review import Candidate, Landing

log = logging.getLogger(__name__)

Emit = Callable[[str, EventKind, Payload | None, int], None]  # (task id, kind, payload, attempt)


@dataclass(eq=False)  # identity-hashed: it is the borrower of its capacity tokens
class TaskState:
    spec: TaskSpec
    agent: str
    keys: frozenset[str]
    priority: float
    deps_left: int
    log_path: Path
    status: TaskStatus = TaskStatus.PENDING
    attempt: int = 0
    started: float | None = None
    ended: float | None = None
    wait_started: float | None = None
    waiting_for: tuple[str, str] | None = None  # (key, holder) last reported in a lockWait
    scope: anyio.CancelScope = field(default_factory=anyio.CancelScope)
    cancel_reason: str | None = None  # set when cancelled: why (a person, fail_fast, ...)
    cancel_code: Reason = Reason.CANCELLED  # how a cancelled task ends (budget-exceeded: a spent budget)
    output: TaskOutput | None = None
    result: TaskResult | None = None
    # the agent processes its attempts started (leaders of their own process groups): pid -> (the PAREX_TASK_ID
    # they carry, start time); a best-of task holds its candidates' here, several at once
    spawned: dict[int, tuple[str, str | None]] = field(default_factory=dict)
    # worktree runs (engine/review.py)
    tree_key: str | None = None  # the worktree's name when it is not the task id (a best-of candidate)
    candidate: Candidate | None = None  # set on a best-of candidate's own state
    workdir: Path | None = None
    feedback: str | None = None  # a reviewer's comment for a retry; in the prompt and $PAREX_FEEDBACK


class TaskRunner:
    def __init__(self, run_id: str, plan: Plan, workspace: Path, isolation: Isolation, emit: Emit,
                 record_spawn: Callable[[str, str, int, int], None], lock_wait: Callable[[TaskState, str, LockOwner], None],
                 limits: Limits, scrub: Callable[[str], str] | None = None, executor: Executor | None = None):
        self.run_id, self.plan, self.workspace, self.isolation = run_id, plan, workspace, isolation
        self.executor: Executor = executor or LocalExecutor()  # where each attempt runs
        self._emit, self._record_spawn, self._lock_wait = emit, record_spawn, lock_wait
        self.limits, self._scrub = limits, scrub
        self.landing: Landing | None = None  # worktree runs: check, predict, merge or hold for review
        self.shared = SharedContext(plan, workspace)

    async def run(self, t: TaskState) -> Outcome:
        """The task from start to end; never raises (a crash is this task's failure, never the run's)."""
        spec = t.spec
        agent_spec = self.plan.agents[t.agent]
        t.output = TaskOutput(t.log_path, lambda out: self._emit(spec.id, EventKind.OUTPUT, out, t.attempt),
                              compile_patterns(agent_spec.retry_on), scrub=self._scrub)
        outcome: Outcome | None = None
        try:
            with t.scope:
                if self.landing is not None and self.landing.is_best_of(t):
                    outcome = await self.landing.best_of(t, self)
                    return outcome
                workdir = await (self.landing.workdir(t) if self.landing is not None
                                 else self.isolation.workdir(spec.id))
                self._emit(spec.id, EventKind.STARTED, Started(t.agent, str(workdir)), 1)
                outcome = (self._context_failure(t) or await self._setup(t, workdir)
                           or await self._attempts(t, workdir))
            if outcome is None or t.scope.cancelled_caught:
                outcome = Outcome(False, code=t.cancel_code, reason=t.cancel_reason or "cancelled",
                                  usage=self.limits.usage_of(spec.id))
            with anyio.CancelScope(shield=True):
                outcome = await self._finish(t, outcome)
        except WorktreeError as e:  # its worktree could not be made or kept (a task may delete a sibling's)
            outcome = Outcome(False, code=Reason.INTERNAL_ERROR, reason=str(e))
        except OSError as e:  # e.g. its log folder became unwritable mid-run: this task fails, the run goes on
            where = f" {e.filename}" if e.filename else ""
            outcome = Outcome(False, code=Reason.INTERNAL_ERROR, reason=f"cannot write{where}: {e.strerror or e}")
        except Exception as e:  # a bug or an unusable workdir fails this task, never the run
            log.exception("task %s crashed", spec.id)
            outcome = Outcome(False, code=Reason.INTERNAL_ERROR, reason=f"{type(e).__name__}: {e}")
        return outcome

    def _context_failure(self, t: TaskState) -> Outcome | None:
        """The task fails before its agent starts when a `context` file cannot be read."""
        if self.plan.agents[t.agent].kind == "shell":  # a command: it never gets the context
            return None
        try:
            self.shared.text_for(t.spec)
        except ContextError as e:
            return Outcome(False, code=Reason.SETUP_FAILED, reason=str(e))
        return None

    def _context(self, t: TaskState, workdir: Path, attempt: int) -> AgentContext:
        spec, output = t.spec, t.output
        assert output is not None
        kind = self.plan.agents[t.agent].kind
        shared = self.shared.text_for(spec) if kind != "shell" else None  # read (and checked) at the start
        if shared is not None and kind != "openai":  # model agents put it in their system message
            spec = replace(spec, prompt=f"{shared}\n\n{spec.prompt}")
        # A best-of candidate's processes carry its own name (`<task>@<n>`): containment tells trees apart by
        # these ids, and ending one candidate's tree must not take a sibling's processes along.
        env = {"PAREX_RUN_ID": self.run_id, "PAREX_TASK_ID": t.tree_key or spec.id,
               "PAREX_WORKSPACE": str(self.workspace), "PAREX_ATTEMPT": str(attempt)}
        if t.feedback is not None:
            env["PAREX_FEEDBACK"] = t.feedback
            if self.plan.agents[t.agent].kind != "shell":  # a shell task's prompt is a command: env only
                spec = replace(spec, prompt=f"{spec.prompt}\n\nA reviewer looked at your previous attempt, which "
                               f"is in this checkout, and asks:\n{t.feedback}")
        return AgentContext(
            self.run_id, spec, self.plan.agents[t.agent], workdir, self.workspace, attempt, output,
            emit=lambda kind, payload: self._emit(
                spec.id, kind, self.limits.usage(spec.id, payload) if kind == EventKind.USAGE else payload, t.attempt),
            locks=self.isolation.file_locks,
            on_lock_wait=lambda key, owner: self._lock_wait(t, key, owner),
            kill_grace=self.plan.run.kill_grace, env=env,
            on_spawn=lambda pid: self._record_spawn(spec.id, env["PAREX_TASK_ID"], pid, attempt),
            gate=self.limits.gate(spec, t.agent), shared_context=shared if kind == "openai" else None)

    async def _attempts(self, t: TaskState, workdir: Path) -> Outcome:
        spec, output = t.spec, t.output
        assert output is not None
        agent_spec = self.plan.agents[t.agent]

        async def one() -> Outcome:
            t.attempt += 1
            if t.attempt > 1:
                output.mark(f"attempt {t.attempt}")
            with anyio.move_on_after(spec.timeout) as deadline:
                return await self.executor.run(self._context(t, workdir, t.attempt))
            assert deadline.cancelled_caught
            return Outcome(False, code=Reason.TIMEOUT, reason=f"timed out after {spec.timeout:g}s",
                           transient=agent_spec.retry_timeouts)

        async def attempt() -> Outcome:
            """One attempt, run again (spending no retry) while its agent's quota is what failed it."""
            while True:
                if (refused := await self.limits.before_attempt(spec, t.agent)) is not None:
                    return refused
                outcome = await one()
                again = self.limits.after_attempt(spec, t.agent, outcome, list(output.tail))
                if outcome.usage and not self.limits.is_model(t.agent):
                    self._emit(spec.id, EventKind.USAGE, self.limits.cli_usage(spec.id), t.attempt)
                if not again:
                    outcome.usage = self.limits.usage_of(spec.id) or outcome.usage  # every attempt's spend
                    return outcome
                output.log(f"[parex] attempt {t.attempt}: the agent's usage limit was reached ({outcome.reason}); "
                           "waiting for its reset\n")

        def on_retry(delay: float, failed: Outcome) -> None:
            self._emit(spec.id, EventKind.RETRYING, Retrying(delay, failed.code, failed.reason), t.attempt)
            output.log(f"[parex] attempt {t.attempt} failed ({failed.reason}); retrying in {delay:.1f}s\n")

        retries = self.plan.run.retries if spec.retries is None else spec.retries
        return await with_retries(attempt, retries, self.plan.run.retry_backoff,
                                  self.plan.run.retry_backoff_max, on_retry)

    async def _setup(self, t: TaskState, workdir: Path) -> Outcome | None:
        """`[run] setup` in a fresh checkout; None when it passed (or there is none)."""
        command = self.plan.run.setup
        if not self.isolation.fresh_checkout or not command or self.executor.runs_setup:
            return None
        assert t.output is not None
        t.output.mark(f"setup: {command}")
        done = await run_process([SHELL, "-c", command], self._context(t, workdir, 0))
        if done.ok:
            return None
        return Outcome(False, exit_code=done.exit_code, code=Reason.SETUP_FAILED,
                       reason=f"setup command `{command}` {done.reason}")

    async def shell(self, t: TaskState, command: str, workdir: Path,
                    lines: Callable[[str], None] | None = None) -> Outcome:
        """A `check` or `verify` command for task `t`, its output in the task's log."""
        ctx = self._context(t, workdir, t.attempt)
        ctx.workdir = workdir
        return await run_process([SHELL, "-c", command], ctx, lines)

    async def _finish(self, t: TaskState, outcome: Outcome) -> Outcome:
        if self.landing is not None:
            return await self.landing.finish(t, outcome)
        merge = await self.isolation.finish(t.spec.id, outcome.ok)
        if merge is None:
            return outcome
        if merge.ok:
            self._emit(t.spec.id, EventKind.MERGED, Merged(merge.commit, merge.message), t.attempt)
            return outcome
        assert t.output is not None
        t.output.log(f"[parex] {merge.message}\n")  # the log has it; the reason shows it (once)
        return Outcome(False, exit_code=outcome.exit_code, code=Reason.MERGE_CONFLICT, reason=merge.message,
                       usage=outcome.usage, answer=outcome.answer)
