"""Helpers for the end-to-end tests: client capabilities, plan files, waiting on what the client received."""

from __future__ import annotations

import asyncio
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lsprotocol import types
from pygls.protocol import JsonRPCNotification, JsonRPCRequestMessage, JsonRPCResponseMessage, default_converter
from pytest_lsp import LanguageClient
from pytest_lsp.client import register_lsp_features

SERVER = [sys.executable, "-m", "parex_lsp", "--stdio"]
WAIT = 30.0  # seconds before a wait gives up: a guard against hangs, never a measurement


def _plain_converter():
    """Keep parex's custom params and results as plain dicts on the client side too."""
    converter = default_converter()
    for cls in (JsonRPCRequestMessage, JsonRPCNotification):
        converter.register_structure_hook(cls, lambda obj, c: c(**{"params": None, **obj}))
    converter.register_structure_hook(JsonRPCResponseMessage, lambda obj, c: c(**{"result": None, **obj}))
    return converter


def make_client() -> LanguageClient:
    client = LanguageClient(converter_factory=_plain_converter)
    register_lsp_features(client)
    # lsprotocol structures a CodeAction result as a Command on the client side: keep the raw JSON instead
    typed = client.protocol.get_result_type
    client.protocol.get_result_type = lambda method: None if method == types.TEXT_DOCUMENT_CODE_ACTION else typed(method)
    client.events = []  # every parex/taskEvent, in arrival order

    @client.feature("parex/taskEvent")
    def task_event(ls: LanguageClient, params: dict[str, Any]) -> None:
        ls.events.append(params)

    return client


def capabilities(progress: bool = True, show_document: bool = True) -> types.ClientCapabilities:
    return types.ClientCapabilities(
        window=types.WindowClientCapabilities(
            work_done_progress=progress,
            show_document=types.ShowDocumentClientCapabilities(support=show_document)),
        text_document=types.TextDocumentClientCapabilities(
            publish_diagnostics=types.PublishDiagnosticsClientCapabilities(related_information=True),
            code_action=types.CodeActionClientCapabilities()))


async def initialize(client: LanguageClient, workspace: Path, **caps: bool) -> types.InitializeResult:
    return await client.initialize_session(types.InitializeParams(
        capabilities=capabilities(**caps), root_uri=workspace.as_uri(),
        workspace_folders=[types.WorkspaceFolder(uri=workspace.as_uri(), name=workspace.name)]))


def write_plan(workspace: Path, body: str, name: str = "parex.toml") -> Path:
    path = workspace / name
    path.write_text(textwrap.dedent(body).lstrip())
    return path


def line_of(path: Path, needle: str) -> int:
    """Zero-based line of the first line of `path` containing `needle`."""
    return next(n for n, line in enumerate(path.read_text().splitlines()) if needle in line)


async def request(client: LanguageClient, method: str, params: Any) -> Any:
    return await asyncio.wait_for(client.protocol.send_request_async(method, params), WAIT)


async def wait_until(cond: Callable[[], Any], what: str = "condition") -> Any:
    async def poll() -> Any:
        while not (value := cond()):
            await asyncio.sleep(0.02)
        return value

    try:
        return await asyncio.wait_for(poll(), WAIT)
    except TimeoutError:
        raise AssertionError(f"timed out waiting for {what}") from None


def events(client: LanguageClient, run_id: str | None = None, task_id: str | None = None,
           kind: str | None = None) -> list[dict[str, Any]]:
    return [e for e in client.events
            if (run_id is None or e["runId"] == run_id) and (task_id is None or e["taskId"] == task_id)
            and (kind is None or e["kind"] == kind)]


async def first_run_id(client: LanguageClient, skip: set[str] = frozenset()) -> str:
    ev = await wait_until(lambda: next((e for e in events(client, kind="runStarted") if e["runId"] not in skip), None),
                          "runStarted")
    return ev["runId"]


def kinds(reports: list[Any]) -> list[str]:
    return [r.kind for r in reports]
