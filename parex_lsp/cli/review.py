"""`parex-lsp review [RUN] [accept|reject|retry|diff TASK...]`, the `--review` prompt of a live run on a TTY,
and `parex-lsp gc --branches`.

Exit codes of `review`: 0 every decision was taken; 1 a merge failed (conflict, verify) or a task is not ready;
2 no such run, or bad arguments.

`review RUN retry TASK --feedback TEXT` of a run that has ended starts a new run in the foreground, as `run` does
(progress, summary, Ctrl-C): it resumes RUN and runs TASK again from its kept branch with the feedback (and, with
`--dependents`, the tasks that were waiting for it). Its exit codes: 0 the task is ready for review again or has
landed (and no dependent run with it failed); 1 it (or such a dependent) failed; 2 nothing was started (no
feedback, no such run or task, the task is not ready, its branch or plan is gone, the plan is running); 130
cancelled.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio

from parex_lsp.contract import Event, EventKind
from parex_lsp.engine.journal import find_run, is_running, list_runs
from parex_lsp.engine.result import RunResult
from parex_lsp.engine.review import ReviewError
from parex_lsp.engine.review_later import RetryPlan, diff_later, ready_tasks, retry_of, review_later

PROMPT = "  [a]ccept  [r]eject  re[t]ry with feedback  [d]iff  [l]eave it ready ? "


def _say(text: str) -> None:
    print(text, flush=True)


def _last_with_ready(workspace: Path) -> str | None:
    for journal in reversed(list_runs(workspace)):
        if ready_tasks(workspace, journal.parent.name):
            return journal.parent.name
    return None


Foreground = Callable[[list[str], RetryPlan], int]  # `parex-lsp run ARGV` of a retry (cli/main.py's own)


def review_command(workspace: Path, run_ref: str | None, action: str | None, tasks: list[str],
                   feedback: str | None, as_json: bool, dependents: bool = False,
                   foreground: Foreground | None = None) -> int:
    run_id = run_ref if run_ref not in (None, "last") else _last_with_ready(workspace)
    if run_id is None:
        _say(f"no run in {workspace.resolve()} has tasks waiting for review")
        return 0
    try:
        waiting = ready_tasks(workspace, run_id)
    except ReviewError as e:
        print(f"parex: {e}", file=sys.stderr)
        return 2
    if action is None:
        if sys.stdin.isatty() and not as_json:
            return _interactive(workspace, run_id, [w.task.id for w in waiting], foreground)
        rows: list[dict[str, Any]] = [{"taskId": w.task.id, "branch": w.branch,
                                       "changes": w.task.review.get("changes")} for w in waiting]
        if as_json:
            print(json.dumps({"runId": run_id, "ready": rows}))
        else:
            for row in rows:
                c = row["changes"] or {}
                _say(f"{row['taskId']}: {row['branch']} ({c.get('files', 0)} files, +{c.get('added', 0)} "
                     f"-{c.get('removed', 0)}, {c.get('commits', 0)} commits)")
        return 0
    if not tasks:
        print(f"parex: `review {run_id} {action}` needs the task id(s)", file=sys.stderr)
        return 2
    if action == "retry":
        if len(tasks) != 1:
            print(f"parex: retry one task at a time (each is a run of its own), not {len(tasks)}", file=sys.stderr)
            return 2
        assert foreground is not None
        return retry_run(workspace, run_id, tasks[0], feedback, dependents, as_json, foreground)
    status = 0
    for task_id in tasks:
        try:
            if action == "diff":
                got = diff_later(workspace, run_id, task_id)
                print(json.dumps(got) if as_json else got["diff"], end="" if not as_json else "\n")
                continue
            got = review_later(workspace, run_id, task_id, action, feedback)
        except ReviewError as e:
            print(f"parex: {e}", file=sys.stderr)
            status = 1
            continue
        if got["status"] not in ("succeeded", "rejected"):
            status = 1
        _say(json.dumps(got) if as_json else f"{task_id}: {got['status']}"
             + (f" ({got['reason']})" if got.get("reason") else "") + _next(got))
    return status


def _next(got: dict[str, Any]) -> str:
    """What an accept lets run, and how (the ended run cannot start it)."""
    if not got.get("waiting"):
        return ""
    return f"\n  not started yet: {', '.join(got['waiting'])}; to run them: {got['next']}"


def _interactive(workspace: Path, run_id: str, task_ids: list[str], foreground: Foreground | None) -> int:
    status = 0
    for task_id in task_ids:
        while True:
            _say(f"task {task_id} of run {run_id} is ready")
            answer = input(PROMPT).strip().lower()[:1]
            if answer == "d":
                _say(diff_later(workspace, run_id, task_id)["diff"])
                continue
            if answer in ("", "l"):
                break
            action = {"a": "accept", "r": "reject", "t": "retry"}.get(answer)
            if action is None:
                continue
            if action == "retry" and foreground is not None:
                if retry_run(workspace, run_id, task_id, input("  feedback: "), False, False, foreground) not in (0, 130):
                    status = 1
                break
            try:
                got = review_later(workspace, run_id, task_id, action,
                                   input("  feedback: ") if action == "retry" else None)
            except ReviewError as e:
                _say(f"  {e}")
                status = 1
                break
            _say(f"  {task_id}: {got['status']}" + (f" ({got['reason']})" if got.get("reason") else "") + _next(got))
            break
    return status


def retry_run(workspace: Path, run_id: str, task_id: str, feedback: str | None, dependents: bool,
              as_json: bool, foreground: Foreground) -> int:
    """Retry a ready task of an ended run: a new run, in the foreground, resuming that one (exit codes above)."""
    try:
        got = retry_of(workspace, run_id, task_id, feedback, dependents)
    except ReviewError as e:
        print(f"parex: {e}", file=sys.stderr)
        return 2
    also = f" with {', '.join(got.dependents)}" if got.dependents else ""
    print(f"parex: retrying {task_id} of run {run_id}{also} in a new run, continuing its branch "
          f"{got.retry.branch}", file=sys.stderr if as_json else sys.stdout, flush=True)
    argv = ["run", got.plan, "--resume", got.retry.run_id, "--only", ",".join([task_id, *got.dependents])]
    return foreground(argv + (["--json"] if as_json else []), got)


def retry_ended(result: RunResult, got: RetryPlan) -> int:
    """After a retry's run: where the task stands, what still waits for it, and the exit code."""
    by_id = {t.id: t for t in result.tasks}
    task_id = got.retry.task_id
    mine = by_id.get(task_id)
    status = mine.status if mine is not None else "failed"

    def say(text: str) -> None:  # stderr: stdout may carry the --json result
        print(text, file=sys.stderr, flush=True)

    if status == "ready":
        say(f"parex: {task_id} is ready for review again: parex-lsp review {result.run_id} diff|accept|reject|retry "
            f"{task_id}")
    elif status == "succeeded":
        say(f"parex: {task_id} succeeded and landed")
    else:
        say(f"parex: {task_id} {status}" + (f": {mine.error}" if mine is not None and mine.error else ""))
    held = [d for d in got.dependents if by_id.get(d) is not None and by_id[d].status == "pending"]
    if held:
        say(f"  waiting for {task_id} in run {result.run_id}: {', '.join(held)} (accepting {task_id} names the "
            "command that runs them)")
    later = got.next_for(result.run_id)
    if later and status in ("ready", "succeeded"):
        say(f"  not started yet: {', '.join(later['waiting'])}; once {task_id} has landed, run them: {later['next']}")
    failed = [d for d in got.dependents if by_id.get(d) is not None and by_id[d].status not in ("succeeded", "ready",
                                                                                                "pending")]
    return 0 if status in ("ready", "succeeded") and not failed else 1


class LivePrompt:
    """`run --review` on a TTY: asks about each task as it becomes ready, while the run goes on."""

    def __init__(self) -> None:
        self.send, self.receive = anyio.create_memory_object_stream[str](100)

    def on_event(self, ev: Event) -> None:
        if ev.kind == EventKind.READY and ev.task_id is not None:
            self.send.send_nowait(ev.task_id)

    async def serve(self, run: Any) -> None:
        async for task_id in self.receive:
            while True:
                answer = (await anyio.to_thread.run_sync(input, f"task {task_id} is ready.{PROMPT}")).strip()[:1]
                if answer == "d":
                    _say(run.diff(task_id)["diff"])
                    continue
                action = {"a": "accept", "r": "reject", "t": "retry"}.get(answer.lower())
                if action is None:
                    break  # left ready: `parex-lsp review` later
                feedback = await anyio.to_thread.run_sync(input, "  feedback: ") if action == "retry" else None
                try:
                    await run.review(task_id, action, feedback)
                except ReviewError as e:
                    _say(f"  {e}")
                    continue
                break


def gc_branches(workspace: Path, dry_run: bool) -> int:
    """Delete the branches parex kept (rejected, losing, conflicting, verify-failed, unfinished) of runs that
    are not running. The person's own branches are never touched: only `parex/<run>/...`."""
    out = subprocess.run(["git", "for-each-ref", "--format=%(refname:short)", "refs/heads/parex/"], cwd=workspace,
                         capture_output=True, text=True)
    if out.returncode != 0:
        print(f"parex: {out.stderr.strip() or 'not a git repository'}", file=sys.stderr)
        return 2
    branches = [b for b in out.stdout.split() if b.count("/") >= 2]
    live = {b.split("/")[1] for b in branches if find_run(workspace, b.split("/")[1]) is not None
            and is_running(workspace, b.split("/")[1])}
    gone = [b for b in branches if b.split("/")[1] not in live]
    for b in gone:
        if not dry_run:
            subprocess.run(["git", "branch", "-D", b], cwd=workspace, check=True, capture_output=True)
        _say(("would delete " if dry_run else "deleted ") + b)
    if not gone:
        _say("no kept branches to delete")
    return 0


def kept_of(workspace: Path, run_id: str) -> list[str]:
    """Branches of a run that still exist (for `status`)."""
    out = subprocess.run(["git", "for-each-ref", "--format=%(refname:short)", f"refs/heads/parex/{run_id}/"],
                         cwd=workspace, capture_output=True, text=True)
    return out.stdout.split() if out.returncode == 0 else []
