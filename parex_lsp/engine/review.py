"""What becomes of a worktree task's work once its agent has succeeded: `check` in its worktree, the branch kept,
conflicts predicted by dry merges, then either merged at once (`merge = "auto"`) or held `ready` for a reviewer
(`merge = "review"`); each merge followed by `[run] verify` in the main checkout and undone if that fails.
Best-of tasks run their candidates here and land the best one.

Merges and verifies are serialized (one `anyio.Lock`). Branches that are not merged — rejected, losing,
conflicting, verify-failed — are kept and listed; nothing here deletes a branch whose work is not merged.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio

from parex_lsp.agents.base import Outcome
from parex_lsp.contract import ConflictPredicted, EventKind, Merged, Payload, Reason
from parex_lsp.isolation.keys import first_conflict
from parex_lsp.isolation.merge import Changes, changes, file_diffs, predict_conflicts
from parex_lsp.isolation.modes import WorktreeIsolation
from parex_lsp.isolation.worktree import WorktreeError
from parex_lsp.plan.model import Plan, TaskSpec

if TYPE_CHECKING:
    from parex_lsp.engine.task import TaskRunner, TaskState

log = logging.getLogger(__name__)
Emit = Callable[[str, EventKind, Payload | None, int], None]
ACTIONS = ("accept", "reject", "retry")

_PYTEST = re.compile(r"(\d+) passed")
_JUNIT = re.compile(r"Tests run:\s*(\d+),\s*Failures:\s*(\d+),\s*Errors:\s*(\d+)(?:,\s*Skipped:\s*(\d+))?")


class ReviewError(Exception):
    """A review action that cannot be done (unknown task, not ready, bad action); nothing was changed."""


@dataclass(frozen=True, slots=True)
class RetryOf:
    """A reviewer's retry of a task that an ended run left `ready`: a new run (resuming that one) runs the task
    again on a branch of its own that starts where the kept branch ends, with the feedback as a live retry
    gives it; the ended run's journal records which run took it over."""

    run_id: str  # the ended run
    task_id: str
    branch: str  # the task's kept branch in that run
    feedback: str
    agent: str | None = None  # a best-of task's winner's agent, whose work it continues; None: the task's own


def count_passed(lines: list[str]) -> int | None:
    """Tests passed according to the last pytest (`5 passed`) or JUnit (`Tests run: 7, Failures: 1, ...`)
    summary in a check's output; None when it printed neither."""
    found: int | None = None
    for line in lines:
        if m := _PYTEST.search(line):
            found = int(m.group(1))
        elif m := _JUNIT.search(line):
            found = int(m.group(1)) - int(m.group(2)) - int(m.group(3)) - int(m.group(4) or 0)
    return found


@dataclass(slots=True)
class Candidate:
    """One of a best-of task's attempts, in its own worktree on its own branch."""

    index: int
    agent: str
    branch: str
    ok: bool = False
    check_passed: bool | None = None
    tests_passed: int | None = None
    diff_size: int = 0
    duration_ms: int = 0
    rank: int | None = None  # 1 is the winner; None: the agent failed, not ranked
    reason: str | None = None

    def sort_key(self) -> tuple[bool, int, int, int]:
        return (self.check_passed is False, -(self.tests_passed or 0), self.diff_size, self.duration_ms)

    def to_wire(self) -> dict[str, Any]:
        return {"agent": self.agent, "branch": self.branch, "checkPassed": self.check_passed,
                "testsPassed": self.tests_passed, "diffSize": self.diff_size, "durationMs": self.duration_ms,
                "rank": self.rank, **({"reason": self.reason} if self.reason else {})}


@dataclass(slots=True)
class Landed:
    """What review has to say about one task: the `changes`, `branch`, `candidates` and `kept` of its
    results and events."""

    branch: str | None = None
    base_branch: str | None = None
    changes: Changes | None = None
    candidates: list[Candidate] = field(default_factory=list)
    kept: bool = False  # the branch is kept (not merged): rejected, conflicting, verify-failed, ready
    conflicts: dict[str, list[str]] = field(default_factory=dict)  # other task ("" = base) -> files

    def to_wire(self) -> dict[str, Any]:
        d: dict[str, Any] = {}
        if self.branch is not None:
            d["branch"] = self.branch
            d["baseBranch"] = self.base_branch
            d["branchKept"] = self.kept
        if self.changes is not None:
            d["changes"] = self.changes.to_wire()
        if self.candidates:
            d["candidates"] = [c.to_wire() for c in self.candidates]
        if self.conflicts:
            d["predictedConflicts"] = [{"other": k or None, "files": v} for k, v in self.conflicts.items()]
        return d


class Landing:
    def __init__(self, run_id: str, plan: Plan, workspace: Path, isolation: WorktreeIsolation, emit: Emit,
                 global_limit: anyio.CapacityLimiter):
        self.run_id, self.plan, self.workspace = run_id, plan, workspace
        self.isolation, self.trees = isolation, isolation.trees
        self._emit = emit
        self._global = global_limit
        self.lock = anyio.Lock()  # one merge (and its verify) at a time
        self.landed: dict[str, Landed] = {}
        self.waiting: dict[str, str] = {}  # task id -> branch waiting to merge (ready, or queued for the lock)
        self.ready: set[str] = set()
        self._continue_from: dict[str, str] = {}  # retry with feedback: task id -> its own branch
        # retry of an ended run's task: task id -> (that run's kept branch, what to do once it is carried over)
        self._carried: dict[str, tuple[str, Callable[[], None]]] = {}
        self._reported: set[tuple[str, str]] = set()  # conflict pairs already reported
        self.runner: TaskRunner | None = None

    def _git(self) -> Any:
        assert self.trees.repo is not None, "the worktrees are prepared when the run starts"
        return self.trees.repo.git

    # -- settings ------------------------------------------------------------------------------

    def mode(self, spec: TaskSpec) -> str:
        return spec.merge or self.plan.run.merge

    def check_of(self, spec: TaskSpec) -> str | None:
        return spec.check or self.plan.run.check

    def is_best_of(self, t: TaskState) -> bool:
        return (t.candidate is None and len(t.spec.candidate_agents(t.agent)) > 1
                and t.spec.id not in self._continue_from and t.spec.id not in self._carried)

    def info(self, task_id: str) -> dict[str, Any] | None:
        landed = self.landed.get(task_id)
        return landed.to_wire() if landed is not None else None

    def kept_branches(self) -> list[dict[str, str]]:
        """Branches this run keeps (not merged), with why."""
        out = []
        for task_id, landed in self.landed.items():
            if landed.branch and landed.kept:
                out.append({"taskId": task_id, "branch": landed.branch})
            for c in landed.candidates:
                if c.branch != landed.branch:
                    out.append({"taskId": task_id, "branch": c.branch})
        return out

    def report_declared(self, tasks: list[TaskState]) -> None:
        """Before anything starts: worktree tasks whose declared `files` overlap will likely conflict at merge."""
        for i, a in enumerate(tasks):
            for b in tasks[i + 1:]:
                if a.keys and b.keys and (key := first_conflict(a.keys, b.keys)) is not None:
                    message = (f"tasks {a.spec.id} and {b.spec.id} both declare files matching {key}: "
                               "their branches may conflict when merged")
                    for me, them in ((a, b), (b, a)):
                        self._emit(me.spec.id, EventKind.CONFLICT_PREDICTED,
                                   ConflictPredicted(them.spec.id, (key,), message), 0)

    # -- a task's worktree ---------------------------------------------------------------------

    def carry_over(self, task_id: str, branch: str, taken: Callable[[], None]) -> None:
        """The task continues the work an ended run kept on `branch` (a retry of that run's ready task);
        `taken` runs once this run's branch holds that work (so a run cancelled before leaves the ended run's
        task as it was: ready, to be retried again)."""
        self._carried[task_id] = (branch, taken)

    async def workdir(self, t: TaskState) -> Path:
        key = t.tree_key or t.spec.id
        start = self._continue_from.pop(t.spec.id, None) if t.tree_key is None else None
        if start is None and t.tree_key is None and (carried := self._carried.pop(t.spec.id, None)) is not None:
            start = await anyio.to_thread.run_sync(self._branch_from, t.spec.id, carried[0])
            await anyio.to_thread.run_sync(carried[1])
        t.workdir = await self.isolation.workdir(key, start)
        return t.workdir

    def _branch_from(self, task_id: str, kept: str) -> str:
        """This run's branch for the task, made at the head of another run's kept branch: the new commits build
        on the kept work, and this run owns (lists, keeps, merges) its own branch. The kept one stays as it is."""
        if not self.trees.branch_exists(kept):
            raise WorktreeError(f"branch {kept} of task {task_id} no longer exists: there is no earlier work to "
                                "continue from")
        branch = self.trees.branch_for(task_id)
        if not self.trees.branch_exists(branch):
            self._git().branch(branch, f"refs/heads/{kept}")
        return branch

    async def finish(self, t: TaskState, outcome: Outcome) -> Outcome:
        """After the agent: check, keep the branch, then land it (or, for a candidate, leave it to be ranked)."""
        key = t.tree_key or t.spec.id
        branch = self.trees.branch_of(key) or self.trees.branch_for(key)
        command = self.check_of(t.spec)
        check: tuple[Outcome, int | None] | None = None
        if outcome.ok and command and t.workdir is not None and self.runner is not None:
            check = await self._check(t, command, t.workdir)
        kept = await self.isolation.finish(key, outcome.ok, merge=False)
        if kept is not None and not kept.ok:  # the worktree was destroyed before its work was committed
            outcome = Outcome(False, exit_code=outcome.exit_code, code=Reason.MERGE_CONFLICT, reason=kept.message,
                              usage=outcome.usage, answer=outcome.answer)
        if t.candidate is not None:
            c = t.candidate
            c.ok = outcome.ok
            c.reason = outcome.reason
            if check is not None:
                c.check_passed, c.tests_passed = check[0].ok, check[1]
            if outcome.ok:
                c.diff_size = (await anyio.to_thread.run_sync(self._changes, branch)).size
            return outcome
        landed = self.landed.setdefault(t.spec.id, Landed(branch, self.trees.base_branch))
        landed.branch = branch
        if not outcome.ok:
            landed.kept = True
            return outcome
        if check is not None and not check[0].ok:
            landed.kept = True
            assert t.output is not None
            return Outcome(False, exit_code=check[0].exit_code, code=Reason.CHECK_FAILED,
                           reason=f"check `{command}` {check[0].reason}; the work is kept on branch {branch}",
                           usage=outcome.usage, answer=outcome.answer)
        return await self._land(t, branch, outcome)

    async def _check(self, t: TaskState, command: str, workdir: Path) -> tuple[Outcome, int | None]:
        assert self.runner is not None and t.output is not None
        lines: list[str] = []
        t.output.mark(f"check: {command}")

        def keep(line: str) -> None:
            lines.append(line)
            assert t.output is not None
            t.output.show(line + "\n")

        done = await self.runner.shell(t, command, workdir, keep)
        found = count_passed(lines)
        t.output.mark(f"check {'passed' if done.ok else 'failed'}"
                      + (f" ({found} tests passed)" if found is not None else ""))
        return done, found

    def _changes(self, branch: str) -> Changes:
        return changes(self._git(), f"refs/heads/{self.trees.base_branch}", branch)

    # -- landing: predict, then merge or hold ---------------------------------------------------

    async def _land(self, t: TaskState, branch: str, outcome: Outcome) -> Outcome:
        landed = self.landed[t.spec.id]
        landed.changes = await anyio.to_thread.run_sync(self._changes, branch)
        self.waiting[t.spec.id] = branch
        await self.predict(t.spec.id)
        if self.mode(t.spec) == "review":
            landed.kept = True
            self.ready.add(t.spec.id)
            return outcome
        return await self.merge(t, outcome)

    async def predict(self, task_id: str) -> None:
        """Dry-merge this task's branch against the base branch as it is now and against every other branch
        waiting to merge; report each conflict once, on both tasks."""
        branch = self.waiting.get(task_id)
        if branch is None:  # decided meanwhile
            return
        others = {k: v for k, v in self.waiting.items() if k != task_id}
        try:
            found = await anyio.to_thread.run_sync(self._predict_all, branch, others)
        except Exception:  # a prediction is advice: it never fails a task
            log.exception("conflict prediction for task %s failed", task_id)
            return
        for other, files in found.items():
            self._report(task_id, other, files)

    def _predict_all(self, branch: str, others: dict[str, str]) -> dict[str, list[str]]:
        g = self._git()
        found: dict[str, list[str]] = {}
        base = f"refs/heads/{self.trees.base_branch}"
        if files := predict_conflicts(g, base, branch):
            found[""] = files
        for other, their_branch in others.items():
            if files := predict_conflicts(g, their_branch, branch):
                found[other] = files
        return found

    def _report(self, task_id: str, other: str, files: list[str]) -> None:
        pair = (task_id, other) if other == "" else tuple(sorted((task_id, other)))
        key = (pair[0], pair[1] + "\0" + ",".join(files))
        if key in self._reported:
            return
        self._reported.add(key)
        shown = ", ".join(files)
        if other == "":
            message = (f"task {task_id} will conflict with {self.trees.base_branch} as it is now in {shown}")
            self.landed[task_id].conflicts[""] = files
            self._emit(task_id, EventKind.CONFLICT_PREDICTED, ConflictPredicted(None, tuple(files), message), 0)
            return
        message = f"tasks {task_id} and {other} will conflict in {shown}: whichever merges second will fail"
        for me, them in ((task_id, other), (other, task_id)):
            if me in self.landed:
                self.landed[me].conflicts[them] = files
            self._emit(me, EventKind.CONFLICT_PREDICTED, ConflictPredicted(them, tuple(files), message), 0)

    async def merge(self, t: TaskState, outcome: Outcome) -> Outcome:
        """Merge the task's kept branch into the base branch, then verify; one at a time. A merge whose verify
        fails is undone (the base branch back at its commit before it) and the branch is kept."""
        task_id = t.spec.id
        branch = self.waiting[task_id]
        landed = self.landed[task_id]
        verify = self.plan.run.verify
        try:
            async with self.lock:
                merged = await anyio.to_thread.run_sync(self.trees.merge_branch, task_id, branch)
                if not merged.ok:
                    landed.kept = True
                    assert t.output is not None
                    t.output.log(f"[parex] {merged.message}\n")
                    return Outcome(False, exit_code=outcome.exit_code, code=Reason.MERGE_CONFLICT,
                                   reason=merged.message, usage=outcome.usage, answer=outcome.answer)
                if merged.commit is not None and verify and self.runner is not None:
                    assert t.output is not None
                    t.output.mark(f"verify: {verify}")
                    done = await self.runner.shell(t, verify, self.workspace)
                    if not done.ok:
                        assert merged.before is not None
                        await anyio.to_thread.run_sync(self.trees.undo_merge, merged.before)
                        landed.kept = True
                        reason = (f"verify `{verify}` {done.reason} after merging {branch}: the merge was undone "
                                  f"({self.trees.base_branch} is back at {merged.before[:12]}); "
                                  f"the task's work is kept on branch {branch}")
                        t.output.log(f"[parex] {reason}\n")
                        return Outcome(False, exit_code=done.exit_code, code=Reason.VERIFY_FAILED, reason=reason,
                                       usage=outcome.usage, answer=outcome.answer)
                self._emit(task_id, EventKind.MERGED, Merged(merged.commit, merged.message), t.attempt)
                landed.kept = False
                await anyio.to_thread.run_sync(self.trees.delete_branch, branch)
        finally:
            self.waiting.pop(task_id, None)
            self.ready.discard(task_id)
        await self._repredict()
        return outcome

    async def _repredict(self) -> None:
        """The base branch moved: look again at the branches still waiting."""
        for other in list(self.waiting):
            await self.predict(other)

    # -- review actions -----------------------------------------------------------------------

    def reject(self, task_id: str) -> str:
        self.ready.discard(task_id)
        branch = self.waiting.pop(task_id)
        self.landed[task_id].kept = True
        return branch

    def retry(self, task_id: str) -> str | None:
        """Run again from its own branch (best-of: the winner's); the agent to run it when that is not the
        task's own: the winner's, whose work it continues."""
        self.ready.discard(task_id)
        self._continue_from[task_id] = self.waiting.pop(task_id)
        landed = self.landed.get(task_id)
        return next((c.agent for c in landed.candidates if c.rank == 1), None) if landed else None

    # -- best of N ------------------------------------------------------------------------------

    async def best_of(self, t: TaskState, runner: TaskRunner) -> Outcome:
        """Run the candidates concurrently within the limits, rank them, land the winner.

        The task's own slot of the run, and slots the run has free now, are lanes its candidates run in; each
        candidate also takes its agent's slot from the run's limits (`Limits.start`), as any task of that
        agent does, waiting its turn when the agent's `max_concurrency` (or lowered level) is used up."""
        from parex_lsp.engine.task import TaskState

        agents = t.spec.candidate_agents(t.agent)
        pending: list[TaskState] = []
        for i, agent in enumerate(agents, 1):
            key = f"{t.spec.id}@{i}"
            c = TaskState(replace(t.spec, agent=agent), agent, frozenset(), t.priority, 0,
                          t.log_path.with_name(f"{t.spec.id}@{i}.log"))
            c.tree_key, c.candidate = key, Candidate(i, agent, self.trees.branch_for(key))
            pending.append(c)
        candidates = list(pending)

        limits = runner.limits

        async def work(extra: object | None) -> None:
            try:
                while pending:
                    # one whose agent has a free slot now, else the first, which waits for its agent's turn
                    c = next((c for c in pending if limits.may_start(c.agent)), pending[0])
                    pending.remove(c)
                    try:
                        await limits.start(c.agent, c)
                        started = time.monotonic()
                        await runner.run(c)
                    finally:
                        limits.give_back(c)
                    assert c.candidate is not None
                    c.candidate.duration_ms = int((time.monotonic() - started) * 1000)
                    t.attempt = max(t.attempt, c.attempt)
            finally:
                if extra is not None:
                    self._global.release_on_behalf_of(extra)

        async with anyio.create_task_group() as tg:
            for _ in range(len(agents) - 1):  # more slots only as far as the run's limit has them free now
                borrower = object()
                try:
                    self._global.acquire_on_behalf_of_nowait(borrower)
                except anyio.WouldBlock:
                    break
                tg.start_soon(work, borrower)
            tg.start_soon(work, None)
        return await self._pick(t, [c.candidate for c in candidates if c.candidate is not None])

    async def _pick(self, t: TaskState, candidates: list[Candidate]) -> Outcome:
        command = self.check_of(t.spec)
        ranked = sorted((c for c in candidates if c.ok), key=Candidate.sort_key)
        for n, c in enumerate(ranked, 1):
            c.rank = n
        landed = self.landed.setdefault(t.spec.id, Landed(None, self.trees.base_branch))
        landed.candidates = candidates
        if not ranked:
            return Outcome(False, code=Reason.EXIT_CODE, reason="every candidate failed: " + "; ".join(
                f"{c.agent} #{c.index}: {c.reason}" for c in candidates))
        winner = ranked[0]
        landed.branch = winner.branch
        if winner.check_passed is False:
            landed.kept = True
            return Outcome(False, code=Reason.CHECK_FAILED,
                           reason=f"check `{command}` failed for every candidate; their work is kept on branches "
                                  + ", ".join(c.branch for c in candidates))
        assert t.output is not None
        t.output.mark(f"best of {len(candidates)}: candidate {winner.index} ({winner.agent}) ranks first")
        return await self._land(t, winner.branch, Outcome(True, exit_code=0))

    # -- reading a branch -----------------------------------------------------------------------

    def diff(self, task_id: str) -> dict[str, Any]:
        landed = self.landed.get(task_id)
        if landed is None or landed.branch is None:
            raise ReviewError(f"task {task_id} has no branch to show")
        return diff_of(self._git(), landed.base_branch or self.trees.base_branch, landed.branch)


def diff_of(g: Any, base_branch: str, branch: str) -> dict[str, Any]:
    return {"branch": branch, "baseBranch": base_branch, **file_diffs(g, f"refs/heads/{base_branch}", branch)}
