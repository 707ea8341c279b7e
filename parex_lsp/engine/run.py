"""One run of a plan: the scheduler.

A task starts the moment its dependencies have succeeded, a global and an agent slot are free and no
running task holds an overlapping lock set. Ready tasks go by critical path. Every state change is one
`Event`, appended to the journal before any sink sees it. Failure is data: it skips dependents only.
"""

from __future__ import annotations

import heapq
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import anyio

from parex_lsp.agents import agent_for
from parex_lsp.agents.base import (CANCELLED, DEPENDENCY_FAILED, LOCK_TIMEOUT, MERGE_CONFLICT, SETUP_FAILED, TIMEOUT,
                                   AgentContext, Outcome)
from parex_lsp.agents.command import SHELL
from parex_lsp.agents.process import run_process
from parex_lsp.engine import events as ev
from parex_lsp.engine.children import use_pidfd_watcher
from parex_lsp.engine.events import Event, Sink
from parex_lsp.engine.graph import critical_path, dependents_of
from parex_lsp.engine.journal import Journal, ensure_state_dir, find_run, new_run_id, replay, runs_dir
from parex_lsp.engine.orphans import SPAWNED, end_orphans
from parex_lsp.engine.processes import process_start
from parex_lsp.engine.output import TaskOutput, compile_patterns
from parex_lsp.engine.result import RunResult, TaskResult
from parex_lsp.engine.retry import with_retries
from parex_lsp.plan.model import Plan, TaskSpec
from parex_lsp.redact import Redactor

log = logging.getLogger(__name__)

LOCK_POLL = 0.05  # seconds between looks at locks held by other processes


class RunError(Exception):
    """A run that cannot start (bad `only`/`resume`, unusable isolation); nothing has run."""


@dataclass
class RunOptions:
    max_concurrency: int | None = None
    isolation: str | None = None
    only: list[str] | None = None
    resume: str | None = None  # a run id or "last"
    run_id: str | None = None
    fail_fast: bool | None = None


@dataclass(eq=False)  # identity-hashed: it is the borrower of its capacity tokens
class _Task:
    spec: TaskSpec
    agent: str
    keys: frozenset[str] = frozenset()
    priority: float = 0.0
    deps_left: int = 0
    status: str = "pending"  # pending | waiting (locks) | running | succeeded | failed | skipped | cancelled
    attempt: int = 0
    started: float | None = None
    ended: float | None = None
    wait_started: float | None = None
    waiting_for: tuple[str, str] | None = None  # (key, holder) last reported in a lockWait
    scope: anyio.CancelScope | None = None
    cancel_requested: bool = False
    output: TaskOutput | None = None
    result: TaskResult | None = None


def _plan_key(plan: Plan) -> str | None:
    """What journals record as the plan, so `resume last` finds this plan's runs."""
    return str(Path(plan.source).resolve()) if plan.source and plan.kind == "toml" else plan.source


class Run:
    def __init__(self, plan: Plan, options: RunOptions | None = None, sinks: Iterable[Sink] = ()):
        self.plan = plan
        self.options = opts = options or RunOptions()
        self.run_id = opts.run_id or new_run_id()
        self.workspace = plan.workspace.resolve()
        self.max_concurrency = max(1, opts.max_concurrency or plan.run.max_concurrency)
        self.isolation = opts.isolation or plan.run.isolation
        self.fail_fast = plan.run.fail_fast if opts.fail_fast is None else opts.fail_fast
        if self.isolation not in ("none", "worktree"):
            raise RunError(f'isolation must be "none" or "worktree", not "{self.isolation}"')
        self.plan_key = _plan_key(plan)
        self._sinks: list[Sink] = list(sinks)
        self._journal: Journal | None = None
        self.started: float | None = None
        self.status_text = "pending"
        self._cancelled = False
        self._wake = anyio.Event()
        self._ready: list[tuple[float, int, str]] = []
        self._index = {t.id: i for i, t in enumerate(plan.tasks)}
        self._dependents = dependents_of(plan.tasks)
        self._locks: Any = None
        self._worktrees: Any = None
        self._global = anyio.CapacityLimiter(self.max_concurrency)
        self._agent_limits = {name: anyio.CapacityLimiter(a.max_concurrency)
                              for name, a in plan.agents.items() if a.max_concurrency}
        self.reused: dict[str, TaskResult] = {}
        self.resumed_from: str | None = None
        self._earlier: dict[str, Any] = {}
        self._finished = 0  # tasks of this run in a terminal state
        self._run_dir = runs_dir(self.workspace) / self.run_id
        self.tasks = self._select_tasks()
        self._redact = Redactor.for_plan(plan)  # secrets never reach the journal, logs, sinks or results

    # -- setting up ----------------------------------------------------------------------------

    def _select_tasks(self) -> dict[str, _Task]:
        """The tasks this run runs: all, minus what `resume` reuses, limited to `only`."""
        opts, plan = self.options, self.plan
        unknown = [t for t in opts.only or [] if t not in self._index]
        if unknown:
            raise RunError(f"`only` names unknown task(s): {', '.join(unknown)}")
        earlier = self._earlier_run(opts.resume) if opts.resume else None
        if opts.resume and earlier is None:
            raise RunError(f"no run to resume: {opts.resume}" + (f" (for {plan.source})" if plan.source else ""))
        if earlier is None and opts.only:
            earlier = self._earlier_run("last")  # `only` trusts the dependencies' last results
        done_before: set[str] = set()
        if earlier is not None:
            self.resumed_from = earlier.run_id if opts.resume else None
            done_before = {t.id for t in earlier.tasks.values() if t.status == ev.SUCCEEDED}
        wanted = set(opts.only) if opts.only else {t.id for t in plan.tasks}
        if opts.resume:
            wanted -= done_before
        self.satisfied_before = done_before - wanted  # dependencies outside this run that already succeeded
        if opts.resume:
            for tid in sorted(self.satisfied_before & set(self._index), key=self._index.__getitem__):
                self.reused[tid] = TaskResult(tid, ev.SUCCEEDED, 0, 0, answer=earlier.tasks[tid].answer,
                                              reused_from=earlier.run_id)
        estimates = self._estimates()
        prio = critical_path(plan.tasks, estimates)
        tasks: dict[str, _Task] = {}
        for spec in plan.tasks:
            if spec.id not in wanted:
                continue
            t = _Task(spec, spec.agent or plan.run.default_agent, priority=prio[spec.id])
            t.keys = self._lock_keys(spec)
            t.deps_left = sum(1 for d in spec.depends_on if d in wanted)
            tasks[spec.id] = t
        return tasks

    def _earlier_run(self, ref: str):
        if ref not in self._earlier:
            path = find_run(self.workspace, ref, self.plan_key)
            self._earlier[ref] = replay(path) if path else None
        return self._earlier[ref]

    def _estimates(self) -> dict[str, float]:
        """Durations from the plan's previous run, for critical-path priorities."""
        last = self._earlier_run("last")
        if last is None:
            return {}
        return {t.id: t.duration_ms / 1000 for t in last.tasks.values() if t.duration_ms}

    def _lock_keys(self, spec: TaskSpec) -> frozenset[str]:
        if not spec.files:
            return frozenset()
        from parex_lsp.engine.locks import lock_keys

        try:
            return lock_keys(self.workspace, spec.files)
        except ValueError as e:
            raise RunError(f"task {spec.id}: {e}") from e

    # -- public API ----------------------------------------------------------------------------

    def add_sink(self, sink: Sink) -> None:
        self._sinks.append(sink)

    def log_path(self, task_id: str) -> Path:
        return self._run_dir / f"{task_id}.log"

    def cancel(self, task_id: str | None = None) -> list[str]:
        """Cancel the whole run, or one task (running or not yet started)."""
        if task_id is None:
            self._cancelled = True
            targets = [t for t in self.tasks.values() if t.status not in ev.TERMINAL]
        else:
            t = self.tasks.get(task_id)
            targets = [t] if t is not None and t.status not in ev.TERMINAL else []
        for t in targets:
            t.cancel_requested = True
            if t.scope is not None:
                t.scope.cancel()
            elif self._journal is not None:
                self._finish(t, ev.CANCELLED, Outcome(False, code=CANCELLED, reason="cancelled before it started"))
        self._wake.set()
        return [t.spec.id for t in targets]

    def status(self) -> dict[str, Any]:
        now = time.time()
        rows = []
        for t in self.tasks.values():
            elapsed = ((t.ended or now) - t.started) if t.started else 0.0
            rows.append({"id": t.spec.id, "status": t.status, "attempt": t.attempt, "elapsedMs": int(elapsed * 1000),
                         "locks": sorted(t.keys) if t.status == "running" else [],
                         "waitingFor": t.waiting_for[0] if t.status == "waiting" and t.waiting_for else None,
                         "lastLine": t.output.last_line if t.output else ""})
        return {"runId": self.run_id, "plan": self.plan.source, "status": self.status_text,
                "startedAt": self.started, "tasks": rows}

    async def execute(self) -> RunResult:
        use_pidfd_watcher()
        ensure_state_dir(self.workspace)
        # First: a dead runner's agents must stop before anything (worktree pruning included) touches their work.
        ended = await anyio.to_thread.run_sync(end_orphans, self.workspace)
        await self._open_isolation()
        self._journal = Journal(self.workspace, self.run_id)
        self.started = time.time()
        self.status_text = "running"
        try:
            self._emit(None, ev.RUN_STARTED, {
                "plan": self.plan_key, "pid": os.getpid(), "tasks": list(self.tasks),
                "maxConcurrency": self.max_concurrency, "isolation": self.isolation,
                "resumedFrom": self.resumed_from})
            if ended:
                self._emit(None, ev.ORPHANS_ENDED, {"processes": ended})
            for tid, reused in self.reused.items():
                kept = {"durationMs": 0, "reusedFrom": reused.reused_from}
                if reused.answer is not None:
                    kept["answer"] = reused.answer
                self._emit(tid, ev.SUCCEEDED, kept)
            for t in self.tasks.values():
                self._emit(t.spec.id, ev.QUEUED, {})
            self._skip_unmet()
            for t in self.tasks.values():
                if t.status == "pending" and t.deps_left == 0:
                    self._push(t)
            async with anyio.create_task_group() as tg:
                while not self._all_done():
                    lock_waiting = self._dispatch(tg)
                    if self._all_done():
                        break
                    with anyio.move_on_after(LOCK_POLL if lock_waiting else None):
                        await self._wake.wait()
                    self._wake = anyio.Event()
            result = self._result()
            self.status_text = result.status
            self._emit(None, ev.RUN_FINISHED, result.to_wire())
            return result
        finally:
            with anyio.CancelScope(shield=True):
                await self._close_isolation()
            self._journal.close()

    # -- scheduling ----------------------------------------------------------------------------

    def _push(self, t: _Task) -> None:
        heapq.heappush(self._ready, (-t.priority, self._index[t.spec.id], t.spec.id))

    def _all_done(self) -> bool:
        return self._finished == len(self.tasks)

    def _skip_unmet(self) -> None:
        """With `only`, a dependency outside the run must have succeeded before."""
        for t in list(self.tasks.values()):
            missing = [d for d in t.spec.depends_on if d not in self.tasks and d not in self.satisfied_before]
            if missing and t.status == "pending":
                self._finish(t, ev.SKIPPED, Outcome(False, code=DEPENDENCY_FAILED,
                             reason=f"dependency {missing[0]} has not succeeded in an earlier run"))

    def _dispatch(self, tg) -> bool:
        """Start every ready task that fits, best first; the rest stay ready. True if one waits for a lock."""
        deferred = []
        while self._ready and self._global.available_tokens >= 1:
            item = heapq.heappop(self._ready)
            t = self.tasks[item[2]]
            if t.status in ev.TERMINAL:
                continue
            if t.cancel_requested:  # cancelled before the run had started
                self._finish(t, ev.CANCELLED, Outcome(False, code=CANCELLED, reason="cancelled before it started"))
                continue
            limit = self._agent_limits.get(t.agent)
            if (limit is not None and limit.available_tokens < 1) or not self._take_locks(t):
                deferred.append(item)
                continue
            self._global.acquire_on_behalf_of_nowait(t)
            if limit is not None:
                limit.acquire_on_behalf_of_nowait(t)
            t.status, t.started = "running", time.time()
            t.scope = anyio.CancelScope()
            tg.start_soon(self._run_task, t)
        for item in deferred:
            heapq.heappush(self._ready, item)
        return any(self.tasks[tid].status == "waiting" for _, _, tid in deferred)

    def _take_locks(self, t: _Task) -> bool:
        """Lock the task's files, or note whom it waits for; never holds a slot while waiting."""
        if not t.keys:
            return True
        locks = self._lock_table()
        blocked = locks.try_acquire(self.run_id, t.spec.id, t.keys)
        if blocked is None:
            return True
        key, owner = blocked
        now = time.time()
        if t.wait_started is None:
            t.wait_started = now
        t.status = "waiting"
        holder = owner.task_id if owner.run_id == self.run_id else f"{owner.task_id} of run {owner.run_id}"
        if t.waiting_for != (key, holder):
            t.waiting_for = (key, holder)
            where = "" if owner.pid == os.getpid() else f" (pid {owner.pid} on {owner.host})"
            self._emit(t.spec.id, ev.LOCK_WAIT, {"path": key, "holder": owner.to_dict(),
                                                 "message": f"waiting for {key}, held by task {holder}{where}"})
        limit = t.spec.lock_timeout if t.spec.lock_timeout is not None else self.plan.run.lock_timeout
        if limit is not None and now - t.wait_started >= limit:
            self._finish(t, ev.FAILED, Outcome(False, code=LOCK_TIMEOUT,
                         reason=f"gave up after {limit:g}s waiting for {key}, held by task {holder}"))
        return False

    def _lock_table(self):
        if self._locks is None:
            from parex_lsp.engine.locks import WorkspaceLocks

            self._locks = WorkspaceLocks(self.workspace, on_broken=self._lock_broken)
        return self._locks

    def _lock_broken(self, key: str, owner) -> None:
        self._emit(None, ev.LOCK_BROKEN, {"key": key, "owner": owner.to_dict()})

    # -- one task ------------------------------------------------------------------------------

    async def _run_task(self, t: _Task) -> None:
        spec = t.spec
        agent_spec = self.plan.agents[t.agent]
        t.output = TaskOutput(self.log_path(spec.id), lambda d: self._emit(spec.id, ev.OUTPUT, d, t.attempt),
                              compile_patterns(agent_spec.retry_on), scrub=self._redact.scrub if self._redact else None)
        outcome: Outcome | None = None
        try:
            with t.scope:
                workdir = await self._workdir(t)
                self._emit(spec.id, ev.STARTED, {"agent": t.agent, "workdir": str(workdir)}, 1)
                outcome = await self._setup(t, workdir) or await self._attempts(t, workdir)
            if t.scope.cancelled_caught or (t.cancel_requested and outcome is None):
                outcome = Outcome(False, code=CANCELLED, reason="cancelled")
            if self._worktrees is not None:
                with anyio.CancelScope(shield=True):
                    outcome = await self._merge(t, outcome)
        except Exception as e:  # a bug or an unusable workdir fails this task, never the run
            log.exception("task %s crashed", spec.id)
            outcome = Outcome(False, code="internal-error", reason=f"{type(e).__name__}: {e}")
        finally:
            self._global.release_on_behalf_of(t)
            if t.agent in self._agent_limits:
                self._agent_limits[t.agent].release_on_behalf_of(t)
            if t.keys and self._locks is not None:
                self._locks.release(self.run_id, spec.id)
        status = ev.SUCCEEDED if outcome.ok else ev.CANCELLED if outcome.code == CANCELLED else ev.FAILED
        self._finish(t, status, outcome)

    async def _attempts(self, t: _Task, workdir: Path) -> Outcome:
        spec = t.spec
        agent_spec = self.plan.agents[t.agent]
        agent = agent_for(agent_spec)
        env = {"PAREX_RUN_ID": self.run_id, "PAREX_TASK_ID": spec.id, "PAREX_WORKSPACE": str(self.workspace)}
        # Agents that write files themselves lock each write; in a worktree nothing is shared, so no locks.
        file_locks = self._lock_table() if agent_spec.kind == "openai" and self._worktrees is None else None

        async def attempt() -> Outcome:
            t.attempt += 1
            if t.attempt > 1:
                t.output.mark(f"attempt {t.attempt}")
            ctx = AgentContext(self.run_id, spec, agent_spec, workdir, self.workspace, t.attempt, t.output,
                               lambda kind, data: self._emit(spec.id, kind, data, t.attempt),
                               file_locks, self.plan.run.kill_grace, {**env, "PAREX_ATTEMPT": str(t.attempt)},
                               lambda pid: self._record_spawn(spec.id, pid, t.attempt))
            with anyio.move_on_after(spec.timeout) as deadline:
                return await agent.run(ctx)
            assert deadline.cancelled_caught
            return Outcome(False, code=TIMEOUT, reason=f"timed out after {spec.timeout:g}s",
                           transient=agent_spec.retry_timeouts)

        def on_retry(delay: float, failed: Outcome) -> None:
            self._emit(spec.id, ev.RETRYING, {"delay": round(delay, 3), "code": failed.code,
                                              "reason": failed.reason}, t.attempt)
            t.output.log(f"[parex] attempt {t.attempt} failed ({failed.reason}); retrying in {delay:.1f}s\n")

        retries = self.plan.run.retries if spec.retries is None else spec.retries
        return await with_retries(attempt, retries, self.plan.run.retry_backoff,
                                  self.plan.run.retry_backoff_max, on_retry)

    # -- worktree isolation --------------------------------------------------------------------

    async def _open_isolation(self) -> None:
        if self.isolation != "worktree":
            return
        from parex_lsp.engine.worktree import WorktreeError, Worktrees

        wt = Worktrees(self.workspace, self.run_id, self.plan.run.copy_files, self.plan.run.allow_dirty)
        try:
            await anyio.to_thread.run_sync(wt.prepare)
        except WorktreeError as e:
            raise RunError(str(e)) from e
        self._worktrees = wt

    async def _close_isolation(self) -> None:
        if self._worktrees is not None:
            await anyio.to_thread.run_sync(self._worktrees.close)
        if self._locks is not None:
            self._locks.close()

    async def _workdir(self, t: _Task) -> Path:
        if self._worktrees is None:
            return self.workspace
        return await anyio.to_thread.run_sync(self._worktrees.create, t.spec.id)

    async def _setup(self, t: _Task, workdir: Path) -> Outcome | None:
        """`[run] setup` in a fresh worktree; None when it passed (or there is none)."""
        command = self.plan.run.setup
        if self._worktrees is None or not command:
            return None
        t.output.mark(f"setup: {command}")
        ctx = AgentContext(self.run_id, t.spec, self.plan.agents[t.agent], workdir, self.workspace, 0, t.output,
                           lambda kind, data: None, kill_grace=self.plan.run.kill_grace,
                           on_spawn=lambda pid: self._record_spawn(t.spec.id, pid, 0))
        done = await run_process([SHELL, "-c", command], ctx)
        if done.ok:
            return None
        return Outcome(False, exit_code=done.exit_code, code=SETUP_FAILED,
                       reason=f"setup command `{command}` {done.reason}")

    async def _merge(self, t: _Task, outcome: Outcome) -> Outcome:
        merge = await anyio.to_thread.run_sync(self._worktrees.finish, t.spec.id, outcome.ok)
        if merge is None:
            return outcome
        if merge.ok:
            self._emit(t.spec.id, ev.MERGED, {"commit": merge.commit, "message": merge.message}, t.attempt)
            return outcome
        t.output.mark(merge.message)
        return Outcome(False, exit_code=outcome.exit_code, code=MERGE_CONFLICT, reason=merge.message,
                       usage=outcome.usage, answer=outcome.answer)

    # -- endings -------------------------------------------------------------------------------

    def _finish(self, t: _Task, status: str, outcome: Outcome) -> None:
        """Record a task's end, then release its dependents or skip them."""
        if t.status in ev.TERMINAL:
            return
        self._record(t, status, outcome)
        if status == ev.SUCCEEDED:
            for d in self._dependents[t.spec.id]:
                dep = self.tasks.get(d)
                if dep is not None:
                    dep.deps_left -= 1
                    if dep.deps_left == 0 and dep.status == "pending":
                        self._push(dep)
        else:
            self._skip_dependents(t)
            if self.fail_fast and status == ev.FAILED and not self._cancelled:
                self.cancel()
        self._wake.set()

    def _skip_dependents(self, ended: _Task) -> None:
        stack = [ended]
        while stack:
            cause = stack.pop()
            for d in self._dependents[cause.spec.id]:
                dep = self.tasks.get(d)
                if dep is None or dep.status in ev.TERMINAL or dep.status == "running":
                    continue
                self._record(dep, ev.SKIPPED, Outcome(False, code=DEPENDENCY_FAILED,
                                                      reason=f"dependency {cause.spec.id} {cause.status}"))
                stack.append(dep)

    def _record(self, t: _Task, status: str, outcome: Outcome) -> None:
        t.status, t.ended = status, time.time()
        if self._redact:
            outcome.reason, outcome.answer = self._redact.scrub_data(outcome.reason), self._redact.scrub_data(outcome.answer)
        self._finished += 1
        duration = int((t.ended - t.started) * 1000) if t.started else 0
        if t.output is not None:
            t.output.close(keep_empty=status != ev.SUCCEEDED)
        tail = list(t.output.tail) if t.output else []
        t.result = TaskResult(t.spec.id, status, t.attempt, duration, outcome.exit_code,
                              None if outcome.ok else outcome.reason, None if outcome.ok else outcome.code,
                              self.log_path(t.spec.id), outcome.usage, outcome.answer, warnings=outcome.warnings, agent=t.agent)
        data = {"durationMs": duration, "exitCode": outcome.exit_code, "code": t.result.code,
                "reason": t.result.error, "tail": tail, "logPath": str(t.result.log_path)}
        if outcome.usage:
            data["usage"] = outcome.usage
        if outcome.answer is not None:
            data["answer"] = outcome.answer
        if outcome.warnings:
            data["warnings"] = outcome.warnings
        self._emit(t.spec.id, status, data, t.attempt)

    def _result(self) -> RunResult:
        ordered = [self.reused.get(s.id) or (self.tasks[s.id].result if s.id in self.tasks else None)
                   for s in self.plan.tasks]
        results = [r for r in ordered if r is not None]
        status = (ev.CANCELLED if self._cancelled
                  else ev.SUCCEEDED if all(r.status == ev.SUCCEEDED for r in results) else ev.FAILED)
        return RunResult(self.run_id, status, results, int((time.time() - self.started) * 1000))

    def _record_spawn(self, task_id: str, pid: int, attempt: int) -> None:
        """Journal-only: lets the next run end this agent's process group if this runner dies."""
        self._journal.append(Event(self.run_id, task_id, SPAWNED, attempt, time.time(),
                                   {"pid": pid, "startTime": process_start(pid)}))

    def _emit(self, task_id: str | None, kind: str, data: dict[str, Any] | None, attempt: int = 0) -> None:
        if self._redact:
            data = self._redact.scrub_data(data)
        event = Event(self.run_id, task_id, kind, attempt, time.time(), data)
        self._journal.append(event)  # durable before visible
        for sink in self._sinks:
            try:
                sink(event)
            except Exception:  # a broken consumer must not stop the run
                log.exception("event sink failed on %s", kind)
