"""Serving: `--stdio` (one client, the process that started us) and `--tcp` (clients holding the token).

Both read and write through asyncio transports (no thread blocked in a read, no write that waits for the
client), stop cleanly on SIGINT, SIGTERM and SIGHUP (a second signal kills the agents at once), and end every
run of a client that goes away. Exit codes: 0 after `shutdown` + `exit` or the client closing its end, 1 on
`exit` without `shutdown` (LSP), 128+N on signal N (Ctrl-C: 130).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from parex_lsp.lsp import token as tokens
from parex_lsp.lsp.connection import Connection
from parex_lsp.lsp.server import ParexServer, build_server
from parex_lsp.lsp.writer import TransportWriter

log = logging.getLogger(__name__)

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class _Output(asyncio.Protocol):
    """The write end's protocol: tells the connection when the client closed its side."""

    def __init__(self) -> None:
        self.on_lost: Callable[[], None] = lambda: None

    def connection_lost(self, exc: Exception | None) -> None:
        self.on_lost()


class _FileTransport(asyncio.WriteTransport):
    """stdout redirected to a regular file (asyncio pipes refuse files): writes to a file never wait long."""

    def __init__(self, f: BinaryIO) -> None:
        super().__init__()
        self._f, self._closing = f, False

    def write(self, data: bytes) -> None:  # type: ignore[override]
        self._f.write(data)
        self._f.flush()

    def get_write_buffer_size(self) -> int:
        return 0

    def is_closing(self) -> bool:
        return self._closing

    def close(self) -> None:
        self._closing = True
        self._f.close()

    abort = close


def _on_signals(stop: Callable[[int], None]) -> None:
    loop = asyncio.get_running_loop()
    for sig in STOP_SIGNALS:
        loop.add_signal_handler(sig, stop, sig)


def _kill_now(server: ParexServer) -> int:
    return sum(live.run.kill_now() for live in list(server.runs.live.values()))


# -- stdio ----------------------------------------------------------------------------------------------

def serve_stdio() -> int:
    try:
        return asyncio.run(_stdio())
    finally:
        for fd in (0, 1):  # asyncio made them non-blocking; a terminal shares them with the shell
            with contextlib.suppress(OSError):
                os.set_blocking(fd, True)


async def _stdio() -> int:
    loop = asyncio.get_running_loop()
    parent = os.getppid()
    stdin = os.fdopen(os.dup(0), "rb", buffering=0)
    stdout = os.fdopen(os.dup(1), "wb", buffering=0)
    sys.stdout = sys.stderr  # a stray print must never land inside the protocol stream

    reader = asyncio.StreamReader()
    try:
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), stdin)
        read = reader.read
    except ValueError:  # a regular file: reading it never waits for anyone
        def read(n: int) -> asyncio.Future[bytes]:  # type: ignore[misc]
            return loop.run_in_executor(None, stdin.read, n)
    output = _Output()
    try:
        transport, _ = await loop.connect_write_pipe(lambda: output, stdout)
    except ValueError:
        transport = _FileTransport(stdout)

    server = build_server()
    conn = Connection(server, TransportWriter(transport, lambda: conn.end("the client stopped reading")))
    output.on_lost = lambda: conn.end("the client closed its end of the connection")

    def stop(sig: int) -> None:
        name = signal.Signals(sig).name
        if conn.why is None:
            runs = len(server.runs.live)
            _say(f"parex-lsp: {name}: stopping ({runs} run(s) to end){'; again to kill the agents now' if runs else ''}")
            conn.end(f"stopped by {name}", 128 + sig)
        else:
            _say(f"parex-lsp: {name} again: killed {_kill_now(server)} agent process group(s)")

    _on_signals(stop)
    return await conn.serve(read, parent_pid=parent)


# -- tcp ------------------------------------------------------------------------------------------------

def serve_tcp(host: str, port: int, token_file: Path | None) -> int:
    path = token_file or tokens.default_path()
    try:
        token = tokens.issue(path)
    except (OSError, tokens.TokenFileError) as e:
        _say(f"parex-lsp: cannot write the TCP token to {path}: {e}")
        return 2
    try:
        return asyncio.run(_tcp(host, port, token, path))
    finally:
        tokens.revoke(path, token)


async def _tcp(host: str, port: int, token: str, path: Path) -> int:
    stopping = asyncio.Event()
    code = [0]
    conns: set[Connection] = set()

    async def client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        server = build_server()  # each connection its own session: its workspace, its runs
        conn = Connection(server, TransportWriter(writer.transport, lambda: conn.end("the client stopped reading")),
                          token)
        conns.add(conn)
        try:
            await conn.serve(reader.read)
        finally:
            conns.discard(conn)

    def stop(sig: int) -> None:
        name = signal.Signals(sig).name
        if not stopping.is_set():
            code[0] = 128 + sig
            _say(f"parex-lsp: {name}: stopping")
            stopping.set()
            for conn in list(conns):
                conn.end(f"stopped by {name}", 128 + sig)
        else:
            killed = sum(_kill_now(conn.server) for conn in list(conns))
            _say(f"parex-lsp: {name} again: killed {killed} agent process group(s)")

    try:
        listener = await asyncio.start_server(client, host, port)
    except OSError as e:
        _say(f"parex-lsp: cannot listen on {host}:{port}: {e.strerror or e}")
        return 2
    if not _loopback(host):
        _say(f"parex-lsp: warning: {host} is reachable from other machines; the token is all that guards it, "
             "and it travels unencrypted")
    _say(f"parex-lsp: serving LSP on {host}:{port}; clients pass the token in {path} "
         "as initializationOptions.token")
    _on_signals(stop)
    async with listener:
        await stopping.wait()
        listener.close()
        while conns:  # each ends its runs first
            await asyncio.sleep(0.05)
    return code[0]


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def _say(text: str) -> None:
    with contextlib.suppress(OSError):
        print(text, file=sys.__stderr__, flush=True)
