"""Reviewing a run that has ended with tasks left `ready` (headless, no TTY; or its runner went away): the
decision is taken from its journal and its kept branches, and appended to the same journal, so a run waiting
for review survives the editor or terminal closing.

Accept merges the branch into the base branch (which must be checked out, as for any worktree run) and runs
`[run] verify` after it, undoing the merge if that fails; reject keeps the branch and names it. The tasks an
accept lets start (dependents held for review) are named with the `--resume` command that runs them.

Retry needs the agent and so a run: `retry_of` checks the request and names what the new run is to do (a
`RetryOf` for `RunOptions.retry`, and the dependents still waiting); the front end starts that run, which
resumes the ended one, and `record_retry` appends to the ended run's journal which run took the task over.
"""

from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from parex_lsp.contract import Ended, Event, EventKind, Merged, Reason, RunStatus, TaskStatus, Wire
from parex_lsp.engine.journal import Journal, TaskRecord, find_run, replay
from parex_lsp.engine.review import ACTIONS, RetryOf, ReviewError, diff_of
from parex_lsp.isolation.worktree import Worktrees
from parex_lsp.plan.model import Plan

VERIFY_TIMEOUT = 3600.0


@dataclass(slots=True)
class ReadyTask:
    run_id: str
    plan: str | None
    task: TaskRecord
    branch: str
    base_branch: str


def ready_tasks(workspace: Path, run_ref: str) -> list[ReadyTask]:
    """The tasks of a finished run still waiting for review."""
    journal = find_run(workspace, run_ref)
    if journal is None:
        raise ReviewError(f"no run {run_ref} in {workspace}")
    rec = replay(journal)
    out = []
    for t in rec.tasks.values():
        if t.status == TaskStatus.READY and t.review.get("branch"):
            out.append(ReadyTask(rec.run_id, rec.plan, t, t.review["branch"], t.review.get("baseBranch") or ""))
    return out


def _find(workspace: Path, run_ref: str, task_id: str) -> ReadyTask:
    journal = find_run(workspace, run_ref)
    if journal is None:
        raise ReviewError(f"no run {run_ref} in {workspace}")
    rec = replay(journal)
    if rec.status == RunStatus.RUNNING:
        raise ReviewError(f"run {rec.run_id} is still running (pid {rec.pid}): review it there (its editor, or "
                          "the terminal that runs it)")
    t = rec.tasks.get(task_id)
    if t is None:
        raise ReviewError(f"run {rec.run_id} has no task {task_id}")
    if t.status != TaskStatus.READY or not t.review.get("branch"):
        later = f" (retried in run {t.review['retriedIn']})" if t.review.get("retriedIn") else ""
        raise ReviewError(f"task {task_id} of run {rec.run_id} is {t.status}, not ready for review{later}")
    return ReadyTask(rec.run_id, rec.plan, t, t.review["branch"], t.review.get("baseBranch") or "")


def diff_later(workspace: Path, run_ref: str, task_id: str) -> dict[str, Any]:
    journal = find_run(workspace, run_ref)
    if journal is None:
        raise ReviewError(f"no run {run_ref} in {workspace}")
    t = replay(journal).tasks.get(task_id)
    if t is None or not t.review.get("branch"):
        raise ReviewError(f"task {task_id} of run {run_ref} has no branch to show")
    trees = _trees(workspace, journal.parent.name)
    if not trees.branch_exists(t.review["branch"]):
        raise ReviewError(f"branch {t.review['branch']} of task {task_id} no longer exists (merged or removed)")
    assert trees.repo is not None
    return diff_of(trees.repo.git, t.review.get("baseBranch") or trees.base_branch, t.review["branch"])


def _waiting(workspace: Path, ready: ReadyTask) -> dict[str, Any]:
    """The run's tasks that never started and now may (each dependency succeeded: dependents held for review
    among them), and the command that runs just them: the ended run cannot start them itself, and a resumed
    run reuses everything that succeeded."""
    journal = find_run(workspace, ready.run_id)
    assert journal is not None
    tasks = replay(journal).tasks
    plan = _plan_of(ready.plan)
    deps = {t.id: t.depends_on for t in plan.tasks} if plan is not None else {}
    waiting = sorted(t.id for t in tasks.values()
                     if t.status in (TaskStatus.PENDING, "queued") and t.started is None
                     and all(d in tasks and tasks[d].status == TaskStatus.SUCCEEDED for d in deps.get(t.id, ())))
    if not waiting:
        return {}
    return {"waiting": waiting,
            "next": f"parex-lsp run {ready.plan or 'PLAN'} --resume {ready.run_id} --only {','.join(waiting)}"}


def _plan_of(plan_path: str | None) -> Plan | None:
    """The run's plan, read again from its file (an inline plan's run has none to read)."""
    if not plan_path or not Path(plan_path).is_file():
        return None
    from parex_lsp.plan import resolve

    return resolve(plan_path, running=False).plan


def _verify_of(plan_path: str | None) -> str | None:
    """The plan's `[run] verify` (an inline plan's run had none to keep)."""
    plan = _plan_of(plan_path)
    return plan.run.verify if plan is not None else None


def _trees(workspace: Path, run_id: str) -> Worktrees:
    trees = Worktrees(workspace, run_id, lambda _: True, allow_dirty=True)
    trees.prepare()  # checks the repository; every run is treated as live, so no worktree is pruned
    return trees


def review_later(workspace: Path, run_ref: str, task_id: str, action: str, feedback: str | None = None,
                 verify: str | None = None) -> dict[str, Any]:
    """Accept or reject a ready task of an ended run; the decision is appended to its journal."""
    if action not in ACTIONS:
        raise ReviewError(f"action must be one of {', '.join(ACTIONS)}, not {action!r}")
    ready = _find(workspace, run_ref, task_id)
    if action == "retry":  # the front ends start a run for it (retry_of); this answers only direct calls
        raise ReviewError(f"run {ready.run_id} has ended: retry runs the agent again in a new run: "
                          f"parex-lsp review {ready.run_id} retry {task_id} --feedback TEXT")
    if verify is None:
        verify = _verify_of(ready.plan)
    trees = _trees(workspace, ready.run_id)
    if ready.base_branch and trees.base_branch != ready.base_branch:
        raise ReviewError(f"task {task_id} was to be merged into {ready.base_branch}, but {trees.base_branch} is "
                          f"checked out: git switch {ready.base_branch} first")
    journal = Journal(workspace, ready.run_id)
    try:
        def emit(kind: EventKind, data: Any) -> None:
            journal.append(Event(ready.run_id, task_id, kind, ready.task.attempts, time.time(), data))

        review = dict(ready.task.review)
        if action == "reject":
            reason = f"rejected; its work is kept on branch {ready.branch}"
            emit(EventKind.REJECTED, Ended(0, code=Reason.REJECTED, reason=reason,
                                           review={**review, "branchKept": True}))
            return {"runId": ready.run_id, "taskId": task_id, "status": "rejected", "branch": ready.branch}
        merged = trees.merge_branch(task_id, ready.branch)
        if not merged.ok:
            emit(EventKind.FAILED, Ended(0, code=Reason.MERGE_CONFLICT, reason=merged.message,
                                         review={**review, "branchKept": True}))
            return {"runId": ready.run_id, "taskId": task_id, "status": "failed", "code": "merge-conflict",
                    "reason": merged.message}
        if merged.commit is not None and verify:
            done = subprocess.run(["/bin/sh", "-c", verify], cwd=workspace, capture_output=True, text=True,
                                  timeout=VERIFY_TIMEOUT)
            if done.returncode != 0:
                assert merged.before is not None
                trees.undo_merge(merged.before)
                reason = (f"verify `{verify}` exited with code {done.returncode} after merging {ready.branch}: the "
                          f"merge was undone ({trees.base_branch} is back at {merged.before[:12]}); the task's work "
                          f"is kept on branch {ready.branch}")
                tail = tuple((done.stdout + done.stderr).splitlines()[-20:])
                emit(EventKind.FAILED, Ended(0, done.returncode, Reason.VERIFY_FAILED, reason, tail,
                                             review={**review, "branchKept": True}))
                return {"runId": ready.run_id, "taskId": task_id, "status": "failed", "code": "verify-failed",
                        "reason": reason}
        emit(EventKind.MERGED, Merged(merged.commit, merged.message))
        trees.delete_branch(ready.branch)
        emit(EventKind.SUCCEEDED, Ended(0, 0, review={**review, "branchKept": False}))
        return {"runId": ready.run_id, "taskId": task_id, "status": "succeeded", "commit": merged.commit,
                **_waiting(workspace, ready)}
    finally:
        journal.close()


@dataclass(slots=True)
class RetryPlan:
    """What a retry of an ended run's ready task starts: a run of `plan` with `RunOptions(retry=retry,
    only=[retry.task_id, *dependents])`. `waiting`: the task's dependents that never started in the ended run
    and are not run now (not asked for, or held by another task); they can run once the task has landed."""

    retry: RetryOf
    plan: str
    dependents: list[str]
    waiting: list[str]

    def next_for(self, run_id: str) -> dict[str, Any]:
        """`waiting` and the command that runs them after the task lands in run `run_id` (the retry's)."""
        if not self.waiting:
            return {}
        return {"waiting": self.waiting,
                "next": f"parex-lsp run {self.plan} --resume {run_id} --only {','.join(self.waiting)}"}


def retry_of(workspace: Path, run_ref: str, task_id: str, feedback: str | None,
             dependents: bool = False) -> RetryPlan:
    """Check a retry of a ready task of an ended run; raises ReviewError naming what is missing (the feedback,
    the run, the task, its readiness, its kept branch, the plan file), nothing changed then. `dependents`: the
    new run also runs the task's dependents that were waiting for it (they start once it lands)."""
    if not (feedback or "").strip():
        raise ReviewError("retry needs feedback: what the agent should do differently (--feedback TEXT)")
    assert feedback is not None
    ready = _find(workspace, run_ref, task_id)
    if not ready.plan or not (workspace / ready.plan).is_file():  # a relative plan path is the workspace's
        what = f"its plan {ready.plan} no longer exists" if ready.plan else "it ran an inline plan"
        raise ReviewError(f"run {ready.run_id} cannot be resumed, {what}: continue the work on branch "
                          f"{ready.branch} with a new run of a plan file")
    trees = _trees(workspace, ready.run_id)
    if not trees.branch_exists(ready.branch):
        raise ReviewError(f"branch {ready.branch} of task {task_id} (run {ready.run_id}) no longer exists: there is "
                          f"no earlier work to continue; run the task afresh: parex-lsp run {ready.plan} --only "
                          f"{task_id}")
    if ready.base_branch and trees.base_branch != ready.base_branch:
        raise ReviewError(f"task {task_id} was to be merged into {ready.base_branch}, but {trees.base_branch} is "
                          f"checked out: git switch {ready.base_branch} first")
    plan = _plan_of(ready.plan)
    if plan is None:
        raise ReviewError(f"the plan {ready.plan} of run {ready.run_id} does not validate: "
                          f"parex-lsp run {ready.plan} --dry-run names its problems")
    if task_id not in {t.id for t in plan.tasks}:
        raise ReviewError(f"the plan {ready.plan} no longer has task {task_id}: nothing to retry")
    journal = find_run(workspace, ready.run_id)
    assert journal is not None
    tasks = replay(journal).tasks
    never_started = {tid for tid, t in tasks.items()
                     if t.started is None and t.status in (TaskStatus.PENDING, "queued")}
    succeeded = {tid for tid, t in tasks.items() if t.status == TaskStatus.SUCCEEDED}
    run_now, waiting = split_dependents(task_id, {t.id: list(t.depends_on) for t in plan.tasks}, never_started,
                                        succeeded, dependents)
    winner = next((c.get("agent") for c in ready.task.review.get("candidates") or () if c.get("rank") == 1), None)
    return RetryPlan(RetryOf(ready.run_id, task_id, ready.branch, feedback, winner), ready.plan, run_now, waiting)


def split_dependents(task_id: str, deps: dict[str, list[str]], never_started: set[str], succeeded: set[str],
                     dependents: bool) -> tuple[list[str], list[str]]:
    """(run now, still waiting), each in plan order (the order of `deps`): the task's dependents, direct or not,
    that never started. Asked for (`dependents`), those run now whose every dependency is the task, runs now
    too, or has succeeded; the rest wait."""
    below: dict[str, list[str]] = {tid: [] for tid in deps}
    for tid, ds in deps.items():
        for d in ds:
            below.setdefault(d, []).append(tid)
    held: set[str] = set()
    stack = [task_id]
    while stack:
        for d in below.get(stack.pop(), []):
            if d not in held and d in never_started:
                held.add(d)
                stack.append(d)
    ordered = [tid for tid in deps if tid in held]
    run_now: list[str] = []
    if dependents:
        added = True
        while added:  # plan order need not follow dependencies: repeat until nothing more fits
            added = False
            for d in ordered:
                if d not in run_now and all(x == task_id or x in run_now or x in succeeded for x in deps[d]):
                    run_now.append(d)
                    added = True
        run_now.sort(key=ordered.index)
    return run_now, [d for d in ordered if d not in run_now]


def record_retry(workspace: Path, retry: RetryOf, new_run_id: str) -> None:
    """The ended run's journal: its task left `ready` for run `new_run_id`, which runs it again (a `queued`
    event, as a live retry journals, naming that run, the feedback and the branch it continues)."""
    journal = Journal(workspace, retry.run_id)
    try:
        journal.append(Event(retry.run_id, retry.task_id, EventKind.QUEUED, 0, time.time(), Wire(
            {"retriedIn": new_run_id, "feedback": retry.feedback, "branch": retry.branch})))
    finally:
        journal.close()
