"""The parex language server: requests in, engine runs, events out as progress, taskEvents and diagnostics.

Handlers parse their params (params.py), call the engine through `Runs` (runs.py) and return; what a
run reports reaches the client through event sinks (notify.py, progress.py, diagnostics.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from lsprotocol import types
from pygls.lsp.server import LanguageServer
from pygls.protocol import JsonRPCResponseMessage, LanguageServerProtocol
from pygls.protocol.language_server import lsp_method
from pygls.uris import to_fs_path

from parex_lsp import __version__
from parex_lsp.lsp.diagnostics import DiagnosticStore
from parex_lsp.lsp.params import invalid, plain_converter, run_request, task_ref
from parex_lsp.lsp.runs import Runs
from parex_lsp.plan import is_plan_file, resolve

if TYPE_CHECKING:
    from parex_lsp.lsp.connection import Connection


class ParexProtocol(LanguageServerProtocol):
    def _serialize_message(self, data: Any) -> Any:
        """parex's own answers are plain JSON already (a status of 10,000 tasks): send them as they are
        instead of letting cattrs walk every row."""
        if isinstance(data, JsonRPCResponseMessage) and isinstance(data.result, dict):
            return {"jsonrpc": data.jsonrpc, "id": data.id, "result": data.result}
        return super()._serialize_message(data)

    @lsp_method(types.EXIT)
    def lsp_exit(self, *args: Any) -> None:  # type: ignore[override]
        """End the connection (its runs ended first) instead of pygls' `sys.exit` in the middle of the loop."""
        conn = getattr(self._server, "connection", None)
        if conn is not None:
            conn.end("exit", 0 if self._shutdown else 1)


class ParexServer(LanguageServer):
    def __init__(self) -> None:
        super().__init__("parex-lsp", __version__, protocol_cls=ParexProtocol, converter_factory=plain_converter)
        self.connection: Connection | None = None  # set by the Connection serving this server
        self.diagnostics = DiagnosticStore(self, self.congested)
        self.runs = Runs(self, self.diagnostics)

    def notify_json(self, method: str, params: dict[str, Any]) -> None:
        """A notification whose params are plain JSON already: pygls' `notify` would wrap them in an attrs
        message and walk them again with cattrs, which is most of the cost of a taskEvent."""
        self.protocol._send_data({"jsonrpc": "2.0", "method": method, "params": params})

    def congested(self) -> bool:
        """Whether the client is behind reading what was sent: merge more, send less often."""
        return self.connection is not None and self.connection.writer.congested()

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
        # answered once every agent is gone, however long their kill_grace: an `exit` right after it must not
        # leave an agent that ignores SIGTERM running
        await ls.runs.cancel_all()

    from parex_lsp.lsp.commands import register
    from parex_lsp.lsp.plan_request import register as register_plan
    from parex_lsp.lsp.review import register as register_review

    register(server)
    register_review(server)
    register_plan(server)
    return server
