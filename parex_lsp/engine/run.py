"""One run of a plan: the scheduler.

A task starts the moment its dependencies have succeeded, a global and an agent slot are free and no
running task holds an overlapping lock set. Ready tasks go by critical path. Every state change is one
`Event`, appended to the journal before any sink sees it. Failure is data: it skips dependents only.

`Run.prepare` builds a run whole (history loaded off the event loop, tasks selected, isolation chosen);
`execute` runs it; `cancel` and `status` may be called from anywhere on the loop meanwhile.
"""

from __future__ import annotations

import heapq
import logging
import os
import signal
import time
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import anyio
import filelock
from anyio.abc import TaskGroup

from parex_lsp import state
from parex_lsp.agents.base import Outcome
from parex_lsp.contract import (
    TERMINAL,
    BudgetExceeded,
    Ended,
    Event,
    EventKind,
    LockBroken,
    LockWait,
    OrphansEnded,
    Payload,
    Reason,
    RunStarted,
    RunStatus,
    Sink,
    Spawned,
    TaskInfo,
    TaskStatus,
    Wire,
)
from parex_lsp.engine.children import use_pidfd_watcher
from parex_lsp.engine.graph import critical_path, dependents_of
from parex_lsp.engine.history import Earlier, History, load_history
from parex_lsp.engine.journal import Journal, find_run, is_running
from parex_lsp.engine.limits import Limits
from parex_lsp.engine.orphans import end_orphans
from parex_lsp.engine.pruning import prune_quietly
from parex_lsp.engine.result import RunResult, TaskResult
from parex_lsp.engine.review import ACTIONS, Landing, RetryOf, ReviewError
from parex_lsp.engine.review_later import record_retry
from parex_lsp.engine.selection import PlanBusy, RunError, Selection, select
from parex_lsp.engine.spend import Budget
from parex_lsp.engine.task import TaskRunner, TaskState
from parex_lsp.executors import EXECUTORS, ExecutorError, executor_for
from parex_lsp.isolation.claims import PlanClaim
from parex_lsp.isolation.containment import ProcessTree, become_subreaper
from parex_lsp.isolation.keys import lock_keys
from parex_lsp.isolation.modes import Isolation, SharedWorkspace, WorktreeIsolation
from parex_lsp.isolation.processes import pid_alive, process_start
from parex_lsp.isolation.registry import LockOwner
from parex_lsp.isolation.table import WorkspaceLocks
from parex_lsp.isolation.worktree import WorktreeError
from parex_lsp.plan.model import Plan
from parex_lsp.redact import Redactor

log = logging.getLogger(__name__)

LOCK_POLL = 0.05  # seconds between looks at locks held by other processes
REGISTRY_STUCK = 30.0  # seconds the lock registry may stay busy before the tasks waiting on it fail
ISOLATIONS = ("none", "worktree")
_RUNNING: dict[tuple[str, str], str] = {}  # (workspace, plan) -> run id, for runs of this process


@dataclass
class RunOptions:
    max_concurrency: int | None = None
    isolation: str | None = None
    only: list[str] | None = None
    resume: str | None = None  # a run id or "last"
    run_id: str | None = None
    fail_fast: bool | None = None
    budget_usd: float | None = None  # override `[run] budget` (each key on its own)
    budget_tokens: int | None = None
    merge: str | None = None  # "auto" | "review": overrides `[run] merge` for every task
    executor: str | None = None  # "local" | "ray": overrides `[run] executor`
    ray_address: str | None = None  # overrides `[run] ray_address`
    hold_for_review: bool = False  # stay running while tasks are ready (the language server); else end
    retry: RetryOf | None = None  # a reviewer's retry of a task an ended run left ready: resume it, run the
    # task again from its kept branch with the feedback (engine/review.py), worktree isolation


def plan_key(plan: Plan) -> str | None:
    """What journals record as the plan, so `resume last` finds this plan's runs."""
    return str(Path(plan.source).resolve()) if plan.source and plan.kind == "toml" else plan.source


class Run:
    def __init__(self, plan: Plan, run_id: str, workspace: Path, options: RunOptions, selection: Selection,
                 history: History, sinks: Iterable[Sink]):
        """Use `await Run.prepare(...)`: it loads what this needs."""
        self.plan, self.run_id, self.workspace, self.options = plan, run_id, workspace, options
        self.plan_key = plan_key(plan)
        self.max_concurrency = options.max_concurrency or plan.run.max_concurrency
        self.executor_name = options.executor or plan.run.executor
        self.isolation_name = run_isolation(plan, options)
        self.fail_fast = plan.run.fail_fast if options.fail_fast is None else options.fail_fast
        self.resumed_from = selection.resumed_from
        self.reused: dict[str, Earlier] = selection.reused
        self._unmet = selection.unmet
        self._sinks: list[Sink] = list(sinks)
        self._journal: Journal | None = None
        self.started: float | None = None
        self.status_text: str = RunStatus.PENDING
        self._cancelled = False  # by a person or a signal
        self._failed_by: str | None = None  # fail_fast: the task whose failure stopped the run
        self._wake = anyio.Event()
        self._ready: list[tuple[float, int, str]] = []
        self._index = {t.id: i for i, t in enumerate(plan.tasks)}
        self._dependents = dependents_of(plan.tasks)
        self._global = anyio.CapacityLimiter(self.max_concurrency)
        self.locks = WorkspaceLocks(workspace, on_broken=self._lock_broken)
        self.isolation: Isolation = (
            WorktreeIsolation(workspace, run_id, self._is_live_run, plan.run.copy_files, plan.run.allow_dirty)
            if self.isolation_name == "worktree" else SharedWorkspace(workspace, self.locks))
        self.limits = Limits(plan, Budget.of(plan.run.budget, options.budget_usd, options.budget_tokens),
                             self.max_concurrency, lambda kind, data: self._emit(None, kind, data),
                             look_again=self._wake_up)
        self._budget_stopped = False
        self._redact = Redactor.for_plan(plan)  # secrets never reach the journal, logs, sinks or results
        try:
            self.executor = executor_for(self.executor_name, plan, run_id, workspace, options.ray_address)
        except ExecutorError as e:
            raise RunError(str(e)) from e
        self._runner = TaskRunner(run_id, plan, workspace, self.isolation, self._emit, self._record_spawn,
                                  self._agent_lock_wait, self.limits, self._redact.scrub if self._redact else None,
                                  self.executor)
        self.landing: Landing | None = None
        if isinstance(self.isolation, WorktreeIsolation):
            self.landing = Landing(run_id, plan, workspace, self.isolation, self._emit, self._global)
            self.landing.runner = self._runner
            self._runner.landing = self.landing
        self._finished = 0  # tasks of this run in a terminal state
        self._claim: tuple[str, str] | None = None  # this plan is running: no second run of it starts
        self._plan_claim: PlanClaim | None = None  # the same, across processes
        priority = critical_path(plan.tasks, history.durations)
        self.tasks: dict[str, TaskState] = {}
        for spec in plan.tasks:
            if spec.id in selection.deps_left:
                self.tasks[spec.id] = TaskState(
                    spec, spec.agent or plan.run.default_agent, self._lock_keys(spec.id, spec.files),
                    priority[spec.id], selection.deps_left[spec.id], state.log_path(workspace, run_id, spec.id))
        if (retry := options.retry) is not None and self.landing is not None:
            again = self.tasks[retry.task_id]
            again.feedback = retry.feedback
            if retry.agent is not None and retry.agent in plan.agents:
                again.agent = retry.agent
            # the ended run names this run as the one that took its task over once it holds the kept work
            self.landing.carry_over(retry.task_id, retry.branch,
                                    lambda: record_retry(self.workspace, retry, self.run_id))

    @classmethod
    async def prepare(cls, plan: Plan, options: RunOptions | None = None, sinks: Iterable[Sink] = ()) -> Run:
        """Check the options, load the plan's history (off the event loop) and select the tasks.
        Raises RunError (PlanBusy when the plan is running already) naming what is wrong; nothing has run."""
        opts = options or RunOptions()
        if opts.retry is not None:  # the task, and what else was asked for, in a run resuming the ended one
            again = opts.retry
            opts = replace(opts, isolation="worktree", resume=again.run_id,
                           only=[again.task_id, *(x for x in opts.only or [] if x != again.task_id)])
            if again.task_id not in {t.id for t in plan.tasks}:
                raise RunError(f"the plan no longer has task {again.task_id} (run {again.run_id} had it): "
                               "nothing to retry")
        isolation = run_isolation(plan, opts)
        if isolation not in ISOLATIONS:
            raise RunError(f'isolation must be "none" or "worktree", not "{isolation}"')
        executor = opts.executor or plan.run.executor
        if executor not in EXECUTORS:
            raise RunError(f'executor must be "local" or "ray", not "{executor}"')
        if executor == "ray" and isolation != "worktree":
            raise RunError('executor "ray" runs each attempt in a git worktree on a cluster node: it cannot use '
                           'isolation = "none" (worktree is the default under Ray)')
        if opts.max_concurrency is not None and opts.max_concurrency < 1:
            raise RunError(f"max concurrency must be at least 1, not {opts.max_concurrency}")
        for name, value in (("budget in USD", opts.budget_usd), ("budget in tokens", opts.budget_tokens)):
            if value is not None and not value > 0:
                raise RunError(f"the {name} must be more than 0, not {value}")
        if not plan.tasks:
            raise RunError("the plan has no tasks")
        if opts.merge is not None:
            plan = _with_merge(plan, opts.merge)
        if isolation != "worktree":
            needs = _worktree_only(plan)
            if needs:
                raise RunError(f'{needs} needs isolation = "worktree" (each task on a branch of its own)')
        workspace = plan.workspace.resolve()
        key = plan_key(plan)
        until = None
        if opts.resume and opts.resume != "last":
            journal = find_run(workspace, opts.resume)
            if journal is None:
                raise RunError(f"no run to resume: {opts.resume}")
            until = opts.resume
        claim = (str(workspace), key) if key else None  # inline plans may run side by side
        if claim in _RUNNING:
            raise PlanBusy(plan.source or "this plan", _RUNNING[claim], os.getpid())
        run_id = opts.run_id or state.new_run_id()
        plan_claim = PlanClaim(workspace, key) if key else None
        try:
            if plan_claim is not None and not plan_claim.take(run_id):
                holder, pid = plan_claim.holder()
                raise PlanBusy(plan.source or "this plan", holder or "(starting)", pid)
        except OSError as e:
            raise RunError(f"cannot write run state under {state.state_dir(workspace)}: {e.strerror or e}"
                           + (f" ({e.filename})" if e.filename else "")) from e
        try:
            history = await anyio.to_thread.run_sync(load_history, workspace, key, until)
            if history.live and claim is not None:
                r = history.live[-1]
                raise PlanBusy(plan.source or "this plan", r.run_id, r.pid)
            selection = select(plan, history, opts.only, opts.resume,
                               frozenset({opts.retry.task_id}) if opts.retry is not None else frozenset())
            try:
                run = cls(plan, run_id, workspace, opts, selection, history, sinks)
            except OSError as e:  # e.g. `.parex/` not writable: its lock registry cannot be made
                raise RunError(f"cannot write run state under {state.state_dir(workspace)}: {e.strerror or e}"
                               + (f" ({e.filename})" if e.filename else "")) from e
        except BaseException:
            if plan_claim is not None:
                plan_claim.release()
            raise
        run._plan_claim = plan_claim
        if claim is not None:
            _RUNNING[claim] = run.run_id
            run._claim = claim
        return run

    def _lock_keys(self, task_id: str, files: list[str]) -> frozenset[str]:
        if not files:
            return frozenset()
        try:
            return lock_keys(self.workspace, files)
        except ValueError as e:
            raise RunError(f"task {task_id}: {e}") from e

    def _is_live_run(self, run_id: str) -> bool:
        return run_id == self.run_id or is_running(self.workspace, run_id)

    # -- public API ----------------------------------------------------------------------------

    def add_sink(self, sink: Sink) -> None:
        self._sinks.append(sink)

    def log_path(self, task_id: str) -> Path:
        return state.log_path(self.workspace, self.run_id, task_id)

    def cancel(self, task_id: str | None = None, reason: str = "cancelled") -> list[str]:
        """Cancel the whole run, or one task (running or not yet started)."""
        if task_id is None:
            self._cancelled = self._cancelled or self._failed_by is None
            targets = [t for t in self.tasks.values() if t.status not in TERMINAL and t.status != TaskStatus.READY]
        else:
            t = self.tasks.get(task_id)
            targets = [t] if t is not None and t.status not in TERMINAL and t.status != TaskStatus.READY else []
        for t in targets:
            t.cancel_reason = reason
            if t.status == TaskStatus.RUNNING:
                t.scope.cancel()
            elif self._journal is not None:
                self._finish(t, TaskStatus.CANCELLED, Outcome(False, code=Reason.CANCELLED,
                                                              reason=f"{reason} before it started"))
        self._wake.set()
        return [t.spec.id for t in targets]

    def status(self) -> dict[str, Any]:
        now = time.time()
        rows = []
        for t in self.tasks.values():
            elapsed = ((t.ended or now) - t.started) if t.started else 0.0
            rows.append({"id": t.spec.id, "status": str(t.status), "attempt": t.attempt,
                         "elapsedMs": int(elapsed * 1000),
                         "locks": sorted(t.keys) if t.status == TaskStatus.RUNNING else [],
                         "waitingFor": t.waiting_for[0] if t.status == TaskStatus.WAITING and t.waiting_for else None,
                         "lastLine": t.output.last_line if t.output else ""})
        return {"runId": self.run_id, "plan": self.plan.source, "status": self.status_text,
                "startedAt": self.started, "tasks": rows, **self.limits.status()}

    async def execute(self) -> RunResult:
        try:
            return await self._execute()
        finally:
            if self._claim is not None:
                _RUNNING.pop(self._claim, None)
            if self._plan_claim is not None:
                self._plan_claim.release()

    async def _execute(self) -> RunResult:
        use_pidfd_watcher()
        become_subreaper()  # agents' orphans stay ours to find and end (isolation/containment.py)
        try:
            await anyio.to_thread.run_sync(state.ensure_state_dir, self.workspace)
        except OSError as e:
            raise RunError(f"cannot write run state under {state.state_dir(self.workspace)}: {e.strerror or e}") from e
        # A dead runner's agents must stop before anything (worktree pruning included) touches their work.
        ended = await anyio.to_thread.run_sync(end_orphans, self.workspace)
        await anyio.to_thread.run_sync(prune_quietly, self.workspace, self.plan.run.keep_runs)
        try:
            await self.isolation.open()
        except WorktreeError as e:
            raise RunError(str(e)) from e
        try:
            await self.executor.open()
        except ExecutorError as e:
            with anyio.CancelScope(shield=True):
                await self.isolation.close()
            raise RunError(str(e)) from e
        try:
            self._journal = Journal(self.workspace, self.run_id)
        except OSError as e:
            await self.executor.close()
            await self.isolation.close()
            raise RunError(f"cannot write run state under {state.state_dir(self.workspace)}: {e.strerror or e}") from e
        try:
            self.started = time.time()
            self.status_text = RunStatus.RUNNING
            self._emit(None, EventKind.RUN_STARTED, RunStarted(
                self.plan_key, os.getpid(), self._announced(),
                self.max_concurrency, self.isolation_name, self.resumed_from))
            if ended:
                self._emit(None, EventKind.ORPHANS_ENDED, OrphansEnded(tuple(ended)))
            for tid, earlier in self.reused.items():
                self._emit(tid, EventKind.SUCCEEDED, Ended(0, answer=earlier.answer, reused_from=earlier.run_id))
            for t in self.tasks.values():
                self._emit(t.spec.id, EventKind.QUEUED, None)
            if self.landing is not None:
                self.landing.report_declared(list(self.tasks.values()))
            for tid, missing in self._unmet.items():
                self._finish(self.tasks[tid], TaskStatus.SKIPPED, Outcome(False, code=Reason.DEPENDENCY_FAILED,
                             reason=f"dependency {missing} has not succeeded in an earlier run"))
            for t in self.tasks.values():
                if t.status == TaskStatus.PENDING and t.deps_left == 0:
                    self._push(t)
            async with anyio.create_task_group() as tg:
                while not self._all_done():
                    lock_waiting = self._dispatch(tg)
                    if self._all_done():
                        break
                    looks = [x for x in (LOCK_POLL if lock_waiting else None, self.limits.next_change()) if x]
                    with anyio.move_on_after(min(looks) if looks else None):  # a lock poll, a cooldown's end
                        await self._wake.wait()
                    self._wake = anyio.Event()
            result = self._result()
            self.status_text = result.status
            self._emit(None, EventKind.RUN_FINISHED, Wire(result.to_wire()))
            return result
        finally:
            with anyio.CancelScope(shield=True):
                await self.executor.close()
                await self.isolation.close()
            self.locks.close()
            self._journal.close()

    def _announced(self) -> tuple[TaskInfo, ...]:
        """The tasks of the run's first event, in plan order: those it runs, and those a resume keeps."""
        out = []
        for spec in self.plan.tasks:
            rng = spec.range.to_lsp() if spec.range else None
            agent = spec.agent or self.plan.run.default_agent
            if spec.id in self.tasks:
                out.append(TaskInfo(spec.id, spec.prompt, agent, rng, str(self.tasks[spec.id].log_path)))
            elif spec.id in self.reused:
                out.append(TaskInfo(spec.id, spec.prompt, agent, rng, None, self.reused[spec.id].run_id))
        return tuple(out)

    # -- scheduling ----------------------------------------------------------------------------

    def _push(self, t: TaskState) -> None:
        heapq.heappush(self._ready, (-t.priority, self._index[t.spec.id], t.spec.id))

    def _all_done(self) -> bool:
        if self._finished == len(self.tasks):
            return True
        if self.landing is None or not self.landing.ready or (self.options.hold_for_review and not self._cancelled):
            return False
        # Nothing moves without a reviewer: the run ends, its ready tasks left ready (and kept on their branches).
        busy = (TaskStatus.RUNNING, TaskStatus.WAITING)
        return (not any(t.status in busy for t in self.tasks.values())
                and not any(self.tasks[tid].status == TaskStatus.PENDING for _, _, tid in self._ready))

    def _dispatch(self, tg: TaskGroup) -> bool:
        """Start every ready task that fits, best first; the rest stay ready. True if one waits for a lock."""
        deferred = []
        if self.limits.ledger.exhausted and not self._budget_stopped:
            self._stop_for_budget()
        while self._ready and self._global.available_tokens >= 1:
            item = heapq.heappop(self._ready)
            t = self.tasks[item[2]]
            if t.status in TERMINAL:
                continue
            if t.cancel_reason is not None:  # cancelled before the run had started
                self._finish(t, TaskStatus.CANCELLED, Outcome(False, code=Reason.CANCELLED,
                                                              reason=f"{t.cancel_reason} before it started"))
                continue
            # A best-of task runs no agent itself: each of its candidates takes its own agent's slot (review.py).
            coordinator = self.landing is not None and self.landing.is_best_of(t)
            if (not coordinator and not self.limits.may_start(t.agent)) or not self._take_locks(t):
                deferred.append(item)
                continue
            self._global.acquire_on_behalf_of_nowait(t)
            if not coordinator:
                self.limits.take(t.agent, t)
            t.status, t.started = TaskStatus.RUNNING, time.time()
            tg.start_soon(self._run_task, t)
        for item in deferred:
            heapq.heappush(self._ready, item)
        return any(self.tasks[tid].status == TaskStatus.WAITING for _, _, tid in deferred)

    def _take_locks(self, t: TaskState) -> bool:
        """Lock the task's files, or note whom it waits for; never holds a slot while waiting, and never
        blocks the event loop on the registry: a busy registry is looked at again at the next poll."""
        if not t.keys:
            return True
        now = time.time()
        try:
            blocked = self.locks.try_acquire(self.run_id, t.spec.id, t.keys, registry_wait=0)
        except filelock.Timeout:
            return self._wait(t, now, "the lock registry", None, REGISTRY_STUCK, Reason.LOCK_ERROR)
        except OSError as e:
            self._finish(t, TaskStatus.FAILED, Outcome(False, code=Reason.LOCK_ERROR,
                         reason=f"the lock registry under {state.locks_dir(self.workspace)} is unusable: {e}"))
            return False
        if blocked is None:
            return True
        key, owner = blocked
        limit = t.spec.lock_timeout if t.spec.lock_timeout is not None else self.plan.run.lock_timeout
        return self._wait(t, now, key, owner, limit, Reason.LOCK_TIMEOUT)

    def _wait(self, t: TaskState, now: float, key: str, owner: LockOwner | None, limit: float | None,
              code: Reason) -> bool:
        if t.wait_started is None:
            t.wait_started = now
        t.status = TaskStatus.WAITING
        holder = "a stuck process" if owner is None else self._holder_name(owner)
        if t.waiting_for != (key, holder):
            t.waiting_for = (key, holder)
            self._report_wait(t, key, owner)
        if limit is not None and now - t.wait_started >= limit:
            self._finish(t, TaskStatus.FAILED, Outcome(False, code=code,
                         reason=f"gave up after {limit:g}s waiting for {key}, held by {holder}"))
        return False

    def _holder_name(self, owner: LockOwner) -> str:
        theirs = owner.task_id if owner.run_id == self.run_id else f"{owner.task_id} of run {owner.run_id}"
        return f"task {theirs}"

    def _report_wait(self, t: TaskState, key: str, owner: LockOwner | None) -> None:
        """The one place a lock wait is put into words (the scheduler's and agents' per-write waits)."""
        if owner is None:
            message = f"waiting for {key} (held by a stuck process)"
            holder: dict[str, Any] = {}
        else:
            where = "" if owner.pid == os.getpid() else f" (pid {owner.pid} on {owner.host})"
            message = f"waiting for {key}, held by {self._holder_name(owner)}{where}"
            holder = owner.to_dict()
        self._emit(t.spec.id, EventKind.LOCK_WAIT, LockWait(key, holder, message), t.attempt)

    def _agent_lock_wait(self, t: TaskState, key: str, owner: LockOwner) -> None:
        self._report_wait(t, key, owner)

    def _lock_broken(self, key: str, owner: LockOwner) -> None:
        self._emit(None, EventKind.LOCK_BROKEN, LockBroken(key, owner.to_dict()))

    # -- one task ------------------------------------------------------------------------------

    async def _run_task(self, t: TaskState) -> None:
        try:
            outcome = await self._runner.run(t)
        finally:
            self._global.release_on_behalf_of(t)
            self.limits.give_back(t)
            if t.keys:
                self.locks.release(self.run_id, t.spec.id)
        status = (TaskStatus.SUCCEEDED if outcome.ok
                  else TaskStatus.CANCELLED if outcome.code == Reason.CANCELLED else TaskStatus.FAILED)
        if outcome.ok and self.landing is not None and t.spec.id in self.landing.ready:
            self._hold(t, outcome)
            return
        self._finish(t, status, outcome)

    # -- review ----------------------------------------------------------------------------------

    def _hold(self, t: TaskState, outcome: Outcome) -> None:
        """A succeeded task in review mode: `ready`, its branch kept, its dependents waiting for a reviewer."""
        assert self.landing is not None
        t.status, t.ended = TaskStatus.READY, time.time()
        duration = int((t.ended - t.started) * 1000) if t.started else 0
        if t.output is not None:
            t.output.flush()
        review = self.landing.info(t.spec.id)
        t.result = TaskResult(t.spec.id, TaskStatus.READY, t.attempt, duration, outcome.exit_code,
                              log_path=t.log_path, usage=outcome.usage, answer=outcome.answer, review=review)
        self._emit(t.spec.id, EventKind.READY, Ended(duration, outcome.exit_code, None, None,
                                                     tuple(t.output.tail) if t.output else (), str(t.log_path),
                                                     outcome.usage, outcome.answer, review=review), t.attempt)
        self._wake.set()

    async def review(self, task_id: str, action: str, feedback: str | None = None) -> dict[str, Any]:
        """A reviewer's decision on a ready task: accept (merge, as auto mode does, then its dependents start),
        reject (final; its branch kept, its dependents skipped) or retry (it runs again from its own branch,
        `feedback` added to its prompt). Raises ReviewError naming what is wrong; nothing changes then."""
        if action not in ACTIONS:
            raise ReviewError(f"action must be one of {', '.join(ACTIONS)}, not {action!r}")
        t = self.tasks.get(task_id)
        if t is None:
            raise ReviewError(f"run {self.run_id} has no task {task_id}")
        if self.landing is None or t.status != TaskStatus.READY:
            raise ReviewError(f"task {task_id} of run {self.run_id} is {t.status}, not ready for review")
        if action == "retry" and not (feedback or "").strip():
            raise ReviewError("retry needs feedback: what the agent should do differently")
        if action == "accept":
            t.status = TaskStatus.RUNNING  # merging; no second decision meanwhile
            with anyio.CancelScope(shield=True):
                outcome = await self.landing.merge(t, Outcome(True, exit_code=0))
            t.status = TaskStatus.READY  # so that _finish records it
            self._finish(t, TaskStatus.SUCCEEDED if outcome.ok else TaskStatus.FAILED, outcome)
        elif action == "reject":
            branch = self.landing.reject(task_id)
            self._finish(t, TaskStatus.REJECTED, Outcome(False, code=Reason.REJECTED,
                                                         reason=f"rejected; its work is kept on branch {branch}"))
        else:
            if (winner := self.landing.retry(task_id)) is not None:
                t.agent = winner
            t.feedback, t.status, t.started, t.result = feedback, TaskStatus.PENDING, None, None
            if t.output is not None:
                t.output.close()
            self._emit(task_id, EventKind.QUEUED, None, t.attempt)  # clients see it leave `ready`
            self._push(t)
            self._wake.set()
        return {"runId": self.run_id, "taskId": task_id, "status": str(t.status), **(self.landing.info(task_id) or {})}

    def diff(self, task_id: str) -> dict[str, Any]:
        if task_id not in self.tasks:
            raise ReviewError(f"run {self.run_id} has no task {task_id}")
        if self.landing is None:
            raise ReviewError(f"run {self.run_id} does not use worktrees: its tasks have no branches")
        return self.landing.diff(task_id)

    # -- endings -------------------------------------------------------------------------------

    def _finish(self, t: TaskState, status: TaskStatus, outcome: Outcome) -> None:
        """Record a task's end, then release its dependents or skip them."""
        if t.status in TERMINAL:
            return
        self._record(t, status, outcome)
        if self.landing is not None:
            self.landing.ready.discard(t.spec.id)
        if status == TaskStatus.SUCCEEDED:
            for d in self._dependents[t.spec.id]:
                dep = self.tasks.get(d)
                if dep is not None:
                    dep.deps_left -= 1
                    if dep.deps_left == 0 and dep.status == TaskStatus.PENDING:
                        self._push(dep)
        else:
            if self.limits.ledger.exhausted and not self._budget_stopped:
                self._stop_for_budget()  # what never started ends `budget-exceeded`, not `dependency-failed`
            self._skip_dependents(t)
            if self.fail_fast and status == TaskStatus.FAILED and not self._cancelled and self._failed_by is None:
                self._failed_by = t.spec.id
                self.cancel(reason=f"cancelled: task {t.spec.id} failed (fail_fast)")
        self._wake.set()

    def _wake_up(self) -> None:
        self._wake.set()

    def _stop_for_budget(self) -> None:
        """The budget is spent: nothing new starts, CLI agents are stopped; model agents stop at their next
        request (their gate refuses it). Every task that had not started is skipped."""
        self._budget_stopped = True
        ledger = self.limits.ledger
        self._emit(None, EventKind.BUDGET_EXCEEDED, BudgetExceeded(
            ledger.spent(), ledger.budget.to_wire(), f"budget reached: {ledger.summary()}"))
        why = f"the run's budget is spent ({ledger.summary()})"
        for t in self.tasks.values():
            if t.status == TaskStatus.RUNNING and not self.limits.is_model(t.agent):
                t.cancel_code, t.cancel_reason = Reason.BUDGET_EXCEEDED, why
                t.scope.cancel()
            elif t.status in (TaskStatus.PENDING, TaskStatus.WAITING):
                self._record(t, TaskStatus.SKIPPED, Outcome(False, code=Reason.BUDGET_EXCEEDED,
                                                            reason=f"not started: {why}"))

    def _skip_dependents(self, ended: TaskState) -> None:
        stack = [ended]
        while stack:
            cause = stack.pop()
            for d in self._dependents[cause.spec.id]:
                dep = self.tasks.get(d)
                if dep is None or dep.status in TERMINAL or dep.status == TaskStatus.RUNNING:
                    continue
                self._record(dep, TaskStatus.SKIPPED, Outcome(False, code=Reason.DEPENDENCY_FAILED,
                                                              reason=f"dependency {cause.spec.id} {cause.status}"))
                stack.append(dep)

    def _record(self, t: TaskState, status: TaskStatus, outcome: Outcome) -> None:
        t.status, t.ended = status, time.time()
        if self._redact:
            outcome.reason, outcome.answer = self._redact.scrub_data(outcome.reason), self._redact.scrub_data(outcome.answer)
        self._finished += 1
        duration = int((t.ended - t.started) * 1000) if t.started else 0
        if t.output is not None:
            try:
                t.output.close(keep_empty=status != TaskStatus.SUCCEEDED)
            except OSError as e:  # the log folder became unwritable: the ending is still recorded
                log.warning("task %s: cannot write its log %s: %s", t.spec.id, t.log_path, e.strerror or e)
        tail = tuple(t.output.tail) if t.output else ()
        failed = not outcome.ok
        review = self.landing.info(t.spec.id) if self.landing is not None else None
        t.result = TaskResult(t.spec.id, status, t.attempt, duration, outcome.exit_code,
                              outcome.reason if failed else None, outcome.code if failed else None,
                              t.log_path, outcome.usage, outcome.answer, warnings=outcome.warnings,
                              agent=t.agent, review=review)
        self._emit(t.spec.id, EventKind(status), Ended(duration, outcome.exit_code, t.result.code, t.result.error,
                                                       tail, str(t.log_path), outcome.usage, outcome.answer,
                                                       warnings=tuple(outcome.warnings or ()), review=review),
                   t.attempt)

    def _result(self) -> RunResult:
        results: list[TaskResult] = []
        for spec in self.plan.tasks:
            if spec.id in self.reused:
                earlier = self.reused[spec.id]
                results.append(TaskResult(spec.id, TaskStatus.SUCCEEDED, 0, 0, answer=earlier.answer,
                                          reused_from=earlier.run_id))
            elif spec.id in self.tasks and (r := self.tasks[spec.id].result) is not None:
                results.append(r)
            elif spec.id in self.tasks:  # waits for a ready task's review
                results.append(TaskResult(spec.id, TaskStatus.PENDING, 0, 0))
        statuses = {r.status for r in results}
        status = (RunStatus.CANCELLED if self._cancelled
                  else RunStatus.SUCCEEDED if statuses <= {TaskStatus.SUCCEEDED}
                  else RunStatus.READY if statuses <= {TaskStatus.SUCCEEDED, TaskStatus.READY, TaskStatus.PENDING}
                  else RunStatus.FAILED)
        assert self.started is not None
        ledger = self.limits.ledger
        spend = {"spent": ledger.spent(), "budget": ledger.budget.to_wire(), "exceeded": ledger.exhausted,
                 "summary": ledger.summary()} if ledger.budget else None
        kept = self.landing.kept_branches() if self.landing is not None else []
        return RunResult(self.run_id, status, results, int((time.time() - self.started) * 1000), spend, kept=kept)

    def kill_now(self) -> int:
        """A second Ctrl-C: SIGKILL every running agent's whole process tree at once, without the grace (a
        best-of task's candidates each)."""
        killed = 0
        for t in self.tasks.values():
            if t.status != TaskStatus.RUNNING:
                continue
            for pid, (process_name, start) in list(t.spawned.items()):
                if pid_alive(pid, start) and ProcessTree(pid, self.run_id, process_name).signal(signal.SIGKILL):
                    killed += 1
        return killed

    def _record_spawn(self, task_id: str, process_name: str, pid: int, attempt: int) -> None:
        """Journal: lets the next run end this agent's process group if this runner dies."""
        start = process_start(pid)
        spawned = self.tasks[task_id].spawned
        for old in [p for p, (_, s) in spawned.items() if not pid_alive(p, s)]:
            del spawned[old]  # ended attempts: keeps the map to what may still run
        spawned[pid] = (process_name, start)
        assert self._journal is not None
        self._journal.append(Event(self.run_id, task_id, EventKind.SPAWNED, attempt, time.time(),
                                   Spawned(pid, start)))

    def _emit(self, task_id: str | None, kind: EventKind, data: Payload | None, attempt: int = 0) -> None:
        if self._redact:
            data = self._redact.scrub_data(data)
        event = Event(self.run_id, task_id, kind, attempt, time.time(), data)
        assert self._journal is not None
        self._journal.append(event)  # durable before visible
        for sink in self._sinks:
            try:
                sink(event)
            except Exception:  # a broken consumer must not stop the run
                log.exception("event sink failed on %s", kind)


def run_isolation(plan: Plan, options: RunOptions) -> str:
    """The run's isolation: an override, the plan's, or worktree under Ray when the plan does not say."""
    if options.isolation:
        return options.isolation
    if (options.executor or plan.run.executor) == "ray" and "isolation" not in plan.config_ranges:
        return "worktree"
    return plan.run.isolation


def _with_merge(plan: Plan, merge: str) -> Plan:
    """The plan with every task's merge mode set (CLI `--review`, `merge` of a run request)."""
    return replace(plan, run=replace(plan.run, merge=merge), tasks=[replace(t, merge=merge) for t in plan.tasks])


def _worktree_only(plan: Plan) -> str | None:
    """The first setting that only works on branches, in words; None when there is none."""
    if plan.run.merge == "review" or any(t.merge == "review" for t in plan.tasks):
        return 'merge = "review"'
    if plan.run.verify:
        return "verify"
    if plan.run.check or any(t.check for t in plan.tasks):
        return "check"
    for t in plan.tasks:
        if t.best_of and t.best_of > 1 or len(t.agents) > 1:
            return f"task {t.id}: best_of/agents"
    return None
