"""The parex language server: requests in, engine runs, events out as progress, taskEvents and diagnostics.

Handlers parse their params (params.py), call the engine through `Runs` (runs.py) and return; what a
run reports reaches the client through event sinks (notify.py, progress.py, diagnostics.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lsprotocol import types
from pygls.lsp.server import LanguageServer
from pygls.uris import to_fs_path

from parex_lsp import __version__
from parex_lsp.lsp.diagnostics import DiagnosticStore
from parex_lsp.lsp.params import invalid, plain_converter, run_request, task_ref
from parex_lsp.lsp.runs import Runs
from parex_lsp.plan import is_plan_file, resolve


class ParexServer(LanguageServer):
    def __init__(self) -> None:
        super().__init__("parex-lsp", __version__, converter_factory=plain_converter)
        self.diagnostics = DiagnosticStore(self)
        self.runs = Runs(self, self.diagnostics)

    def validate_later(self, uri: str) -> None:
        """Validate a plan document once its edits pause (debounced)."""
        path = to_fs_path(uri) if uri.startswith("file:") else None
        if path is not None and is_plan_file(path):
            self.diagnostics.debounce(uri, lambda: self.validate(uri))
        elif uri in self.diagnostics.validation:  # a `callN:` document edited after a failed run request
            self.diagnostics.set_validation(uri, [])

    def validate(self, uri: str) -> None:
        path = to_fs_path(uri)
        text = self.runs.document_text(uri)
        if path is None or text is None:
            self.diagnostics.set_validation(uri, [])
            return
        got = resolve(path, editor_root=self.runs.editor_root(Path(path)), text=text, running=False)
        self.diagnostics.set_problems(uri, got.problems, always=True)


def build_server() -> ParexServer:
    server = ParexServer()

    @server.feature("parex/run")
    async def run(ls: ParexServer, params: Any) -> dict[str, Any]:
        return await ls.runs.handle(run_request(params))

    @server.feature("parex/cancel")
    def cancel(ls: ParexServer, params: Any) -> dict[str, Any]:
        return ls.runs.cancel(task_ref(params, "parex/cancel"), "parex/cancel")

    @server.feature("parex/status")
    def status(ls: ParexServer, params: Any) -> dict[str, Any]:
        ref = task_ref(params, "parex/status", need_run=False)
        if ref.task_id is not None:
            raise invalid(["parex/status: takes only `runId`"])
        if ref.run_id is None:
            return {"runs": [live.run.status() for live in ls.runs.live.values()]}
        live = ls.runs.get(ref.run_id)
        if live is None:
            raise invalid([f"parex/status: no run {ref.run_id} in this server"])
        return {"runs": [live.run.status()]}

    @server.feature(types.WINDOW_WORK_DONE_PROGRESS_CANCEL)
    def progress_cancel(ls: ParexServer, params: types.WorkDoneProgressCancelParams) -> None:
        found = ls.runs.by_token(params.token)
        if found is not None:
            live, task_id = found
            live.run.cancel(task_id)

    @server.feature(types.TEXT_DOCUMENT_DID_OPEN)
    def did_open(ls: ParexServer, params: types.DidOpenTextDocumentParams) -> None:
        ls.validate_later(params.text_document.uri)

    @server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
    def did_change(ls: ParexServer, params: types.DidChangeTextDocumentParams) -> None:
        ls.validate_later(params.text_document.uri)

    @server.feature(types.TEXT_DOCUMENT_DID_SAVE)
    def did_save(ls: ParexServer, params: types.DidSaveTextDocumentParams) -> None:
        ls.validate_later(params.text_document.uri)

    @server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
    def did_close(ls: ParexServer, params: types.DidCloseTextDocumentParams) -> None:
        ls.validate_later(params.text_document.uri)  # now from the file on disk

    @server.feature(types.SHUTDOWN)
    async def shutdown(ls: ParexServer, params: Any) -> None:
        await ls.runs.cancel_all()  # agents' process groups ended, locks released, journals closed

    from parex_lsp.lsp.commands import register
    from parex_lsp.lsp.review import register as register_review

    register(server)
    register_review(server)
    return server
