"""`workspace/executeCommand` entry points (for clients that cannot send custom requests) and code actions.

Commands take one argument, the same object the matching request takes.
"""

from __future__ import annotations

import asyncio
import logging

from lsprotocol import types

from parex_lsp.lsp.diagnostics import SOURCE
from parex_lsp.lsp.params import run_request, task_ref

log = logging.getLogger(__name__)

RUN, CANCEL, RETRY_TASK, SHOW_LOG = "parex.run", "parex.cancel", "parex.retryTask", "parex.showLog"


def _cancel_with_request(ls, live) -> None:
    """`$/cancelRequest` on an executeCommand cancels pygls' future of that request, not this handler's
    task (commands run one step removed); watch that future so the run is cancelled with it."""
    request = getattr(ls.protocol, "_request_futures", {}).get(ls.protocol.msg_id)
    if request is not None:
        request.add_done_callback(lambda f: live.run.cancel() if f.cancelled() else None)


def register(server) -> None:
    # Handlers carry no annotations: pygls reads them to convert arguments, and these take raw JSON.

    @server.command(RUN)
    async def run(ls, *args):
        return await ls.runs.handle(run_request(list(args)), watch=lambda live: _cancel_with_request(ls, live))

    @server.command(CANCEL)
    def cancel(ls, *args):
        return ls.runs.cancel(task_ref(list(args), CANCEL), CANCEL)

    @server.command(RETRY_TASK)
    async def retry_task(ls, *args):
        """A new run of the task's plan that resumes its run and runs only that task; answers {runId} at once."""
        ref = task_ref(list(args), RETRY_TASK, need_task=True)
        live = await ls.runs.start(ls.runs.retry_request(ref))
        return {"runId": live.run.run_id}

    @server.command(SHOW_LOG)
    async def show_log(ls, *args):
        ref = task_ref(list(args), SHOW_LOG, need_task=True)
        uri = ls.runs.log_path(ref).as_uri()
        caps = ls.client_capabilities.window
        if caps is not None and caps.show_document is not None and caps.show_document.support:
            try:
                await asyncio.wait_for(ls.window_show_document_async(
                    types.ShowDocumentParams(uri=uri, take_focus=True)), timeout=5)
            except Exception as e:  # the editor could not open it; the uri is still the answer
                log.info("showDocument %s: %s", uri, e)
        return {"uri": uri}

    @server.feature(types.TEXT_DOCUMENT_CODE_ACTION,
                    types.CodeActionOptions(code_action_kinds=[types.CodeActionKind.QuickFix]))
    def code_actions(ls, params: types.CodeActionParams) -> list[types.CodeAction]:
        actions: list[types.CodeAction] = []
        seen: set[tuple[str, str]] = set()
        for diag in params.context.diagnostics:
            data = diag.data
            if diag.source != SOURCE or not isinstance(data, dict):
                continue
            run_id, task_id = data.get("runId"), data.get("taskId")
            if not isinstance(run_id, str) or not isinstance(task_id, str) or (run_id, task_id) in seen:
                continue
            seen.add((run_id, task_id))
            arg = {"runId": run_id, "taskId": task_id}
            for title, command in ((f"Retry task {task_id}", RETRY_TASK), ("Show log", SHOW_LOG)):
                actions.append(types.CodeAction(
                    title=title, kind=types.CodeActionKind.QuickFix, diagnostics=[diag],
                    command=types.Command(title=title, command=command, arguments=[arg])))
        return actions
