"""`parex/review` and `parex/diff`, and predicted conflicts as warning diagnostics on both tasks.

A live review-mode run of this server takes the decision itself (accept merges, then the task's dependents
start); a run that has ended with tasks left `ready` is reviewed from its journal (engine/review_later.py), and
a retry of one of its tasks starts a new run here (resuming it, detached: the answer is the new run's id at once,
and the run streams progress like any other).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
from lsprotocol import types
from pygls.exceptions import JsonRpcException

from parex_lsp.contract import ENDINGS, ConflictPredicted, Event, EventKind, RunStarted
from parex_lsp.engine.journal import find_run
from parex_lsp.engine.review import ACTIONS, ReviewError
from parex_lsp.engine.review_later import diff_later, retry_of, review_later
from parex_lsp.lsp.diagnostics import SOURCE, DiagnosticStore, _range
from parex_lsp.lsp.params import RUN_ID, TASK_ID, PlanRef, RunRequest, invalid
from parex_lsp.plan import Plan

REQUEST_FAILED = -32803
REVIEW, DIFF = "parex/review", "parex/diff"
CONFLICTS = "\0conflicts"  # the store key's suffix: a task's predicted conflicts, apart from its failure


def review_params(params: Any, what: str, action: bool) -> tuple[str, str, str | None, str | None]:
    """(runId, taskId, action, feedback), every problem named at once."""
    if isinstance(params, (list, tuple)) and len(params) == 1:
        params = params[0]
    if not isinstance(params, dict):
        raise invalid([f"{what} params must be an object {{runId, taskId{', action, feedback?' if action else ''}}}"])
    problems = []
    known = {"runId", "taskId"} | ({"action", "feedback", "dependents", "workDoneToken"} if action else set())
    unknown = set(params) - known
    if unknown:
        problems.append(f"unknown field(s) {', '.join(sorted(unknown))} (known: {', '.join(sorted(known))})")
    run_id, task_id = params.get("runId"), params.get("taskId")
    if not (isinstance(run_id, str) and RUN_ID.match(run_id)):
        problems.append("`runId` must be a run id (string)")
    if not (isinstance(task_id, str) and TASK_ID.match(task_id)):
        problems.append("`taskId` must be a task id (string)")
    act, feedback = params.get("action"), params.get("feedback")
    if action:
        if act not in ACTIONS:
            problems.append(f"`action` must be one of {', '.join(repr(a) for a in ACTIONS)}")
        if feedback is not None and not isinstance(feedback, str):
            problems.append("`feedback` must be a string")
        if act == "retry" and not (isinstance(feedback, str) and feedback.strip()):
            problems.append("`feedback` is required for retry: what the agent should do differently")
        if not isinstance(params.get("dependents", False), bool):
            problems.append("`dependents` must be true or false")
        token = params.get("workDoneToken")
        if token is not None and (isinstance(token, bool) or not isinstance(token, (int, str))):
            problems.append("`workDoneToken` must be an integer or a string")
    if problems:
        raise invalid([f"{what}: {p}" for p in problems])
    return str(run_id), str(task_id), act, feedback


def retry_options(params: Any) -> tuple[bool, int | str | None]:
    """(dependents, workDoneToken) of a retry, once review_params has checked them."""
    if isinstance(params, (list, tuple)) and len(params) == 1:
        params = params[0]
    return bool(params.get("dependents", False)), params.get("workDoneToken")


def _failed(e: ReviewError, run_id: str) -> JsonRpcException:
    return JsonRpcException(code=REQUEST_FAILED, message=str(e), data={"runId": run_id})


class ConflictDiagnostics:
    """An event sink: each predicted conflict is a warning on both tasks' lines in the plan document, until
    the task ends."""

    def __init__(self, store: DiagnosticStore, plan: Plan, plan_uri: str | None, plan_key: str):
        self.store, self.plan, self.plan_uri, self.plan_key = store, plan, plan_uri, plan_key
        self.warnings: dict[str, list[types.Diagnostic]] = {}

    def __call__(self, ev: Event) -> None:
        if isinstance(ev.data, RunStarted):
            for t in ev.data.tasks:
                self._set(t.id, [])
        elif ev.task_id is None or self.plan_uri is None:
            return
        elif ev.kind == EventKind.CONFLICT_PREDICTED and isinstance(ev.data, ConflictPredicted):
            try:
                rng = self.plan.task(ev.task_id).range
            except KeyError:
                rng = None
            diag = types.Diagnostic(range=_range(rng), message=ev.data.message, source=SOURCE,
                                    severity=types.DiagnosticSeverity.Warning, code="conflict-predicted",
                                    data={"runId": ev.run_id, "taskId": ev.task_id, "other": ev.data.other,
                                          "files": list(ev.data.files)})
            self._set(ev.task_id, [*self.warnings.get(ev.task_id, []), diag])
        elif ev.kind in ENDINGS or ev.kind == EventKind.MERGED:
            self._set(ev.task_id, [])

    def _set(self, task_id: str, diags: list[types.Diagnostic]) -> None:
        if not diags and not self.warnings.get(task_id):
            return
        self.warnings[task_id] = diags
        uri = self.plan_uri
        self.store.set_task(self.plan_key, task_id + CONFLICTS, {uri: diags} if diags and uri else {})


def register(server: Any) -> None:
    @server.feature(REVIEW)  # type: ignore[untyped-decorator]
    async def review(ls: Any, params: Any) -> dict[str, Any]:
        run_id, task_id, action, feedback = review_params(params, REVIEW, action=True)
        assert action is not None
        live = ls.runs.live.get(run_id)
        try:
            if live is not None:
                got: dict[str, Any] = await live.run.review(task_id, action, feedback)
                return got
            workspace = _workspace_of(ls, run_id)
            if action == "retry":
                return await _retry_ended(ls, workspace, run_id, task_id, feedback, *retry_options(params))
            return await anyio.to_thread.run_sync(review_later, workspace, run_id, task_id, action, feedback)
        except ReviewError as e:
            raise _failed(e, run_id) from None

    @server.feature(DIFF)  # type: ignore[untyped-decorator]
    async def diff(ls: Any, params: Any) -> dict[str, Any]:
        run_id, task_id, _, _ = review_params(params, DIFF, action=False)
        known = ls.runs.get(run_id)
        try:
            if known is not None and known.run.landing is not None:
                landed = known.run.landing.landed.get(task_id)
                if landed is not None and landed.branch and landed.kept:
                    return await anyio.to_thread.run_sync(known.run.diff, task_id)
            return await anyio.to_thread.run_sync(diff_later, _workspace_of(ls, run_id), run_id, task_id)
        except ReviewError as e:
            raise _failed(e, run_id) from None


async def _retry_ended(ls: Any, workspace: Path, run_id: str, task_id: str, feedback: str | None, dependents: bool,
                       token: int | str | None) -> dict[str, Any]:
    """A retry of a ready task of a run that has ended: a new run of its plan resuming it, detached; the answer
    names the new run at once (`runId`; `resumedFrom` the ended one) and what still waits for the task."""
    got = await anyio.to_thread.run_sync(retry_of, workspace, run_id, task_id, feedback, dependents)
    request = RunRequest(plan=PlanRef(uri=(workspace / got.plan).resolve().as_uri()), only=[task_id, *got.dependents], resume=run_id,
                         detach=True, work_done_token=token)
    try:
        live = await ls.runs.start(request, retry=got.retry)
    except JsonRpcException as e:  # the plan is running, or does not validate now: nothing started
        raise JsonRpcException(code=REQUEST_FAILED, message=e.message, data=e.data or {"runId": run_id}) from None
    new = live.run.run_id
    return {"runId": new, "taskId": task_id, "status": "queued", "resumedFrom": run_id,
            "branch": got.retry.branch, "dependents": got.dependents, **got.next_for(new)}


def _workspace_of(ls: Any, run_id: str) -> Path:
    known = ls.runs.get(run_id)
    if known is not None:
        return Path(known.run.workspace)
    for root in ls.runs.roots() or [Path.cwd()]:
        if find_run(root, run_id) is not None:
            return Path(root)
    raise ReviewError(f"no run {run_id} in this workspace")
