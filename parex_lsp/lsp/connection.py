"""One client's connection, from its first byte to its runs' end.

Bytes are framed by `Framer` and handed to pygls' JSON-RPC (`structure_message`, `handle_message`); what pygls
cannot answer because the message never became a request (bad framing, invalid JSON, a malformed request) is
answered here when it carries an id. However the client goes — `exit`, end of input, its process gone, a
signal, a connection that stopped reading — the connection ends the same way: every run it started is
cancelled and awaited (agents' process groups ended, locks released, journals closed with `runFinished`).
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from pygls.exceptions import JsonRpcException

from parex_lsp.isolation.processes import pid_alive
from parex_lsp.lsp import token as tokens
from parex_lsp.lsp.framing import INVALID_REQUEST, Bad, Framer, Message
from parex_lsp.lsp.writer import TransportWriter

if TYPE_CHECKING:
    from parex_lsp.lsp.server import ParexServer

log = logging.getLogger(__name__)

STALL = 0.5  # seconds of silence inside a body before the framer takes the JSON value it already holds
PARENT_POLL = 1.0  # seconds between looks at whether the client process is still there
READ_SIZE = 1 << 16

Read = Callable[[int], Awaitable[bytes]]


class Connection:
    def __init__(self, server: ParexServer, writer: TransportWriter, token: str | None = None):
        self.server, self.writer, self.token = server, writer, token
        self.framer = Framer()
        self.ended = asyncio.Event()
        self.why: str | None = None
        self.exit_code = 0
        server.connection = self
        server.protocol.set_writer(writer)

    def end(self, why: str, exit_code: int = 0) -> None:
        """Stop reading; `serve` then ends the runs and returns. The first reason given is the one kept."""
        if self.why is None:
            self.why, self.exit_code = why, exit_code
            log.info("connection ending: %s", why)
        self.ended.set()

    async def serve(self, read: Read, parent_pid: int | None = None) -> int:
        """Serve until the connection ends; then end its runs. `parent_pid`: end when that process is gone."""
        tasks = [asyncio.ensure_future(self._read(read)), asyncio.ensure_future(self._watch(parent_pid))]
        try:
            await self.ended.wait()
        finally:
            for t in tasks:
                t.cancel()
            await self.server.runs.cancel_all()
            await self.writer.drain(2.0)  # the runs' last events, for a client still reading
            self.writer.close()
        return self.exit_code

    # -- input ----------------------------------------------------------------------------------

    async def _read(self, read: Read) -> None:
        try:
            while True:
                try:
                    data = await asyncio.wait_for(read(READ_SIZE), STALL if self.framer.in_body else None)
                except TimeoutError:
                    self._handle(self.framer.stalled())
                    continue
                if not data:
                    self.end("the client closed its end of the connection")
                    return
                self._handle(self.framer.feed(data))
        except (ConnectionError, OSError) as e:
            self.end(f"reading from the client failed: {e}")

    def _handle(self, frames: list[Message | Bad]) -> None:
        for frame in frames:
            if self.why is not None:
                return
            if isinstance(frame, Bad):
                log.warning("unreadable message: %s", frame.message)
                self._error(frame.id, frame.code, frame.message)
            elif self.token is not None:
                self._authenticate(frame.value)
            else:
                self._deliver(frame.value)

    def _authenticate(self, value: Any) -> None:
        assert self.token is not None
        if tokens.matches(tokens.given(value), self.token):
            self.token = None
            self._deliver(value)
            return
        what = ("a wrong token" if tokens.given(value) is not None
                else "no token: pass it as initializationOptions.token of initialize")
        self._error(_id(value), tokens.UNAUTHORIZED, f"unauthorized: {what}; the connection is closed")
        self.end("unauthorized")

    def _deliver(self, value: Any) -> None:
        protocol = self.server.protocol
        msg_id = _id(value)
        if not isinstance(value, dict) or value.get("jsonrpc") != "2.0" or not isinstance(value.get("method", ""), str):
            self._error(msg_id, INVALID_REQUEST, "not a JSON-RPC 2.0 message object")
            return
        try:
            message = protocol.structure_message(value)
        except JsonRpcException as e:
            if "method" in value:
                cause = f": {e.__cause__}" if e.__cause__ is not None else ""
                self._error(msg_id, e.code, f"{value['method']}: {e.message}{cause}"[:2000])
            return
        try:
            protocol.handle_message(message)
        except Exception:
            log.exception("handling %s failed", value.get("method", "a response"))

    def _error(self, msg_id: int | str | None, code: int, message: str) -> None:
        """An error answer, sent only to a message that has an id (a notification gets no answer)."""
        if msg_id is not None:
            self.server.protocol._send_response(msg_id, None, JsonRpcException(message, code).to_response_error())

    # -- the client process ---------------------------------------------------------------------

    async def _watch(self, parent_pid: int | None) -> None:
        """End when the client's process (initialize's processId) or the process that started us is gone."""
        while True:
            await asyncio.sleep(PARENT_POLL)
            if parent_pid is not None and os.getppid() != parent_pid:
                self.end(f"the process that started the server ({parent_pid}) is gone")
            client = self.server.process_id
            if isinstance(client, int) and client > 0 and not pid_alive(client):
                self.end(f"the client process {client} is gone")


def _id(value: Any) -> int | str | None:
    if isinstance(value, dict):
        i = value.get("id")
        if isinstance(i, (int, str)) and not isinstance(i, bool):
            return i
    return None
