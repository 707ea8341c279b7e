"""The server's live runs: resolve a plan reference, start a `Run` with its LSP sinks, keep it until it ends.

No scheduling here: the engine decides everything; this module only wires a run's events to the
client (taskEvent notifications, progress, diagnostics) and remembers recent runs for retry and logs.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from lsprotocol import types
from pygls.exceptions import JsonRpcException
from pygls.lsp.server import LanguageServer
from pygls.uris import to_fs_path

from parex_lsp import state
from parex_lsp.contract import Event, EventKind, OrphansEnded
from parex_lsp.engine import PlanBusy, Run, RunError, RunOptions
from parex_lsp.engine.journal import find_run, replay
from parex_lsp.engine.review import RetryOf
from parex_lsp.lsp.diagnostics import DiagnosticStore, TaskDiagnostics
from parex_lsp.lsp.notify import TaskEventNotifier
from parex_lsp.lsp.params import MAX_TASKS, PlanRef, RunRequest, TaskRef, invalid, too_many
from parex_lsp.lsp.progress import RunProgress, client_supports_progress
from parex_lsp.lsp.review import ConflictDiagnostics
from parex_lsp.plan import Plan, Problem, resolve, resolve_inline

log = logging.getLogger(__name__)

REQUEST_FAILED = -32803  # LSP's RequestFailed: the request was valid but cannot be done now
KEEP_FINISHED = 50  # finished runs remembered for status, retry and logs


@dataclass(eq=False)
class LiveRun:
    run: Run
    request: RunRequest
    plan_uri: str | None  # the document the plan came from (None for inline plans)
    plan_key: str  # what "the same plan" means: the resolved file path, or the uri
    progress: RunProgress
    task: asyncio.Task[dict[str, Any]] | None = None


class Runs:
    def __init__(self, ls: LanguageServer, diagnostics: DiagnosticStore):
        self.ls, self.diagnostics = ls, diagnostics
        self.live: dict[str, LiveRun] = {}
        self.finished: OrderedDict[str, LiveRun] = OrderedDict()

    # -- where things are -----------------------------------------------------------------------

    def roots(self) -> list[Path]:
        try:
            ws = self.ls.workspace
        except RuntimeError:  # not initialized yet
            return []
        uris = [ws.root_uri] if ws.root_uri else []
        uris += [f.uri for f in ws.folders.values()]
        return [Path(p).resolve() for u in uris if (p := to_fs_path(u))]

    def editor_root(self, path: Path) -> Path | None:
        """The deepest of the editor's folders holding `path`, if any."""
        holding = [r for r in self.roots() if path.resolve().is_relative_to(r)]
        return max(holding, key=lambda r: len(r.parts)) if holding else None

    def workspace_for(self, path: Path | None) -> Path:
        """The workspace folder holding `path` (the deepest), else the root, else the file's folder."""
        roots = self.roots()
        if path is not None:
            holding = [r for r in roots if path.resolve().is_relative_to(r)]
            if holding:
                return max(holding, key=lambda r: len(r.parts))
            if not roots:
                return path.resolve().parent
        return roots[0] if roots else Path.cwd()

    def document_text(self, uri: str) -> str | None:
        """The editor's text of an open document, else the file's text, else None."""
        doc = self.ls.workspace.text_documents.get(unquote(uri))
        if doc is not None:
            return str(doc.source)
        path = to_fs_path(uri) if uri.startswith("file:") else None
        if path is None or not Path(path).is_file():
            return None
        try:
            return Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            return None

    # -- plans ----------------------------------------------------------------------------------

    def load(self, ref: PlanRef) -> tuple[Plan, str | None, str]:
        """(plan, plan document uri, plan key) by the one workspace rule (plan.resolve); InvalidParams naming
        every problem of a plan that does not validate, each also published at its place."""
        if ref.tasks is not None:
            got = resolve_inline(ref.tasks, self.workspace_for(None))
            if got.plan is None:
                raise _plan_invalid("inline plan", got.errors)
            if len(got.plan.tasks) > MAX_TASKS:
                raise invalid([f"inline plan: {too_many(len(got.plan.tasks))}"])
            return got.plan, None, "<inline>"
        uri = ref.uri or ""
        text = self.document_text(uri)
        if text is None:
            raise invalid([f"unknown document {uri}: it is not open in the editor and no such file exists"])
        path = to_fs_path(uri) if uri.startswith("file:") else None
        root = self.editor_root(Path(path)) if path else self.workspace_for(None)
        got = resolve(path or uri, ref.lines, editor_root=root, text=text)
        self.diagnostics.set_problems(uri, got.problems)
        if got.plan is None:
            raise _plan_invalid(uri, got.errors)
        if len(got.plan.tasks) > MAX_TASKS:
            raise invalid([f"{uri}: {too_many(len(got.plan.tasks))}"])
        return got.plan, uri, str(Path(path).resolve()) if path else uri

    # -- running --------------------------------------------------------------------------------

    async def handle(self, req: RunRequest, watch: Callable[[LiveRun], None] | None = None) -> dict[str, Any]:
        """A run request, from `parex/run` or `parex.run`: the result when the run ends, or {runId} at once
        when detached. `watch` sees the live run first (executeCommand ties it to its request's cancel)."""
        live = await self.start(req)
        if req.detach:
            return {"runId": live.run.run_id}
        if watch is not None:
            watch(live)
        return await self.wait(live)

    async def start(self, req: RunRequest, retry: RetryOf | None = None) -> LiveRun:
        """`retry`: the run retries a ready task of an ended run (parex/review of it, lsp/review.py)."""
        plan, uri, key = self.load(req.plan)
        options = RunOptions(max_concurrency=req.max_concurrency, isolation=req.isolation, only=req.only,
                             resume=req.resume, merge=req.merge, executor=req.executor,
                             ray_address=req.ray_address, hold_for_review=True,  # ready tasks wait for parex/review
                             retry=retry)
        try:
            run = await Run.prepare(plan, options)
        except PlanBusy as e:
            raise JsonRpcException(code=REQUEST_FAILED, data={"runId": e.run_id}, message=str(e)) from None
        except RunError as e:
            raise invalid([str(e)]) from None
        progress = RunProgress(self.ls, run.run_id, req.work_done_token, client_supports_progress(self.ls))
        live = LiveRun(run, req, uri, key, progress)
        congested = getattr(self.ls, "congested", lambda: False)
        send = getattr(self.ls, "notify_json", self.ls.protocol.notify)
        run.add_sink(TaskEventNotifier(send, congested=congested))
        run.add_sink(self._orphans_ended)
        run.add_sink(progress)
        run.add_sink(TaskDiagnostics(self.diagnostics, plan, uri, key))
        run.add_sink(ConflictDiagnostics(self.diagnostics, plan, uri, key))
        self.live[run.run_id] = live
        live.task = asyncio.ensure_future(self._execute(live))
        if req.detach:
            live.task.add_done_callback(self._detached_done)
        return live

    def _orphans_ended(self, ev: Event) -> None:
        """Agents a dead runner left behind were ended at this run's start: a person should know."""
        if ev.kind != EventKind.ORPHANS_ENDED or not isinstance(ev.data, OrphansEnded) or not ev.data.processes:
            return
        by_run: dict[str, int] = {}
        for p in ev.data.processes:
            by_run[str(p.get("runId"))] = by_run.get(str(p.get("runId")), 0) + 1
        runs = ", ".join(f"{n} of run {rid}" for rid, n in by_run.items())
        total = len(ev.data.processes)
        self.ls.window_show_message(types.ShowMessageParams(
            type=types.MessageType.Warning,
            message=f"parex: ended {total} agent process{'es' if total != 1 else ''} left running by a runner "
                    f"that died ({runs}) before starting run {ev.run_id}"))

    async def _execute(self, live: LiveRun) -> dict[str, Any]:
        run = live.run
        summary = "cancelled"
        try:
            result = await run.execute()
            summary = result.status
            return result.to_wire()
        except RunError as e:  # e.g. worktree isolation could not be set up; nothing ran
            summary = f"failed: {e}"
            raise JsonRpcException(code=REQUEST_FAILED, message=str(e), data={"runId": run.run_id}) from None
        except Exception as e:
            log.exception("run %s crashed", run.run_id)
            summary = f"failed: {type(e).__name__}: {e}"
            raise
        finally:
            live.progress.close(summary)  # a no-op when runFinished already ended it
            self.diagnostics.flush(force=True)  # the run's diagnostics reach the client before its answer
            self.live.pop(run.run_id, None)
            self.finished[run.run_id] = live
            while len(self.finished) > KEEP_FINISHED:
                self.finished.popitem(last=False)
            await live.progress.settle()

    def _detached_done(self, task: asyncio.Task[Any]) -> None:
        if not task.cancelled() and (e := task.exception()) is not None:
            self.ls.window_show_message(types.ShowMessageParams(type=types.MessageType.Error,
                                                                message=f"parex: run failed: {e}"))

    async def wait(self, live: LiveRun) -> dict[str, Any]:
        """The run's result. If the waiting request is cancelled, the run is cancelled and ends cleanly first."""
        assert live.task is not None
        try:
            return await asyncio.shield(live.task)
        except asyncio.CancelledError:
            live.run.cancel()
            try:
                await asyncio.shield(live.task)
            except Exception:
                pass
            raise

    def cancel(self, ref: TaskRef, what: str) -> dict[str, Any]:
        live = self.live.get(ref.run_id or "")
        if live is None:
            if self.get(ref.run_id or "") is not None:
                return {"cancelled": []}  # it has ended already
            raise invalid([f"{what}: no run {ref.run_id} in this server"])
        if ref.task_id is not None and ref.task_id not in {t.id for t in live.run.plan.tasks}:
            raise invalid([f"{what}: run {ref.run_id} has no task {ref.task_id}"])
        return {"cancelled": live.run.cancel(ref.task_id)}

    async def cancel_all(self) -> None:
        """Cancel every live run and wait until each has ended: agents' process groups gone (SIGKILL after
        kill_grace), locks released, journals closed with runFinished. No timeout: the engine's kill is one."""
        tasks = [live.task for live in self.live.values() if live.task is not None]
        for live in list(self.live.values()):
            live.run.cancel()
        if tasks:
            await asyncio.wait(tasks)

    # -- finding runs ---------------------------------------------------------------------------

    def get(self, run_id: str) -> LiveRun | None:
        return self.live.get(run_id) or self.finished.get(run_id)

    def by_token(self, token: int | str) -> tuple[LiveRun, str | None] | None:
        for live in self.live.values():
            mine, task_id = live.progress.owner(token)
            if mine:
                return live, task_id
        return None

    def retry_request(self, ref: TaskRef) -> RunRequest:
        """A new run of the plan of run `ref.run_id`, resuming it, running only `ref.task_id`."""
        known = self.get(ref.run_id or "")
        if known is not None:
            plan_ref = known.request.plan
        else:
            plan_ref = self._plan_of_journal(ref.run_id or "")
        return RunRequest(plan=plan_ref, only=[ref.task_id or ""], resume=ref.run_id, detach=True)

    def _plan_of_journal(self, run_id: str) -> PlanRef:
        """The plan file of a run this server did not start, from its journal."""
        for root in self.roots() or [Path.cwd()]:
            journal = find_run(root, run_id)
            if journal is not None:
                plan = replay(journal).plan
                if plan and Path(plan).is_file():
                    return PlanRef(uri=Path(plan).as_uri())
                raise invalid([f"run {run_id} did not run a plan file; run its tasks again with parex/run"])
        raise invalid([f"no run {run_id} in this workspace"])

    def log_path(self, ref: TaskRef) -> Path:
        known = self.get(ref.run_id or "")
        if known is not None:
            path = known.run.log_path(ref.task_id or "")
        else:
            found = [j for root in self.roots() or [Path.cwd()] if (j := find_run(root, ref.run_id or ""))]
            if not found or not state.is_task_id(ref.task_id or ""):
                raise invalid([f"no log for task {ref.task_id} in run {ref.run_id}"])
            path = found[0].parent / f"{ref.task_id}.log"
        if not path.is_file():
            if not path.parent.is_dir() or not self._has_task(known, ref):
                raise invalid([f"no log for task {ref.task_id} in run {ref.run_id}"])
            path.touch()  # the task printed nothing: its log is empty
        return path

    @staticmethod
    def _has_task(known: LiveRun | None, ref: TaskRef) -> bool:
        if known is not None:
            return any(t.id == ref.task_id for t in known.run.plan.tasks)
        return ref.task_id is not None  # a run of another process: its folder exists, trust the id


def _plan_invalid(where: str, problems: list[Problem]) -> JsonRpcException:
    lines = [p.format() for p in problems]
    return invalid([f"invalid plan {where} ({len(lines)} problem{'s' if len(lines) != 1 else ''}):\n"
                    + "\n".join(lines)])
