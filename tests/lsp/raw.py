"""A raw JSON-RPC peer for the attacks pytest-lsp cannot express: wrong framing, no token, a client that stops
reading, a client that vanishes. It speaks to the real `parex-lsp` process over a pipe or a socket."""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

SERVER = [sys.executable, "-m", "parex_lsp"]
WAIT = 30.0  # a guard against hangs, never a measurement


def frame(message: Any, length_delta: int = 0, header: bytes = b"Content-Length") -> bytes:
    body = json.dumps(message).encode()
    return header + b": %d\r\n\r\n" % (len(body) + length_delta) + body


def initialize(msg_id: int, root: Path, **options: Any) -> dict[str, Any]:
    params: dict[str, Any] = {"processId": None, "rootUri": root.as_uri(), "capabilities": {}}
    if options:
        params["initializationOptions"] = options
    return {"jsonrpc": "2.0", "id": msg_id, "method": "initialize", "params": params}


def req(msg_id: int, method: str, params: Any = None) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": msg_id, "method": method, "params": params if params is not None else {}}


def note(method: str, params: Any = None) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "method": method, "params": params if params is not None else {}}


class Reader:
    """Messages out of a byte source, with a deadline on every wait."""

    def __init__(self, fileno: int, recv: Callable[[int], bytes], reply: Callable[[bytes], None] | None = None):
        self.fileno, self.recv, self.reply = fileno, recv, reply
        self.buf = bytearray()
        self.pos = 0
        self.seen: list[dict[str, Any]] = []

    def _more(self, deadline: float) -> bool:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("no message from the server in time")
        ready, _, _ = select.select([self.fileno], [], [], left)
        if not ready:
            raise TimeoutError("no message from the server in time")
        data = self.recv(1 << 16)
        if not data:
            return False
        self.buf += data
        return True

    def next(self, timeout: float = WAIT) -> dict[str, Any] | None:
        """The next message, or None at end of stream."""
        deadline = time.monotonic() + timeout
        while True:
            end = self.buf.find(b"\r\n\r\n", self.pos)
            if end >= 0:
                head = self.buf[self.pos:end]
                length = int(next(h for h in head.split(b"\r\n")
                                  if h.lower().startswith(b"content-length")).split(b":")[1])
                if len(self.buf) >= end + 4 + length:
                    body = self.buf[end + 4:end + 4 + length]
                    self.pos = end + 4 + length
                    if self.pos > 1 << 20:  # drop what was read, now and then (not per message: that is O(n^2))
                        del self.buf[:self.pos]
                        self.pos = 0
                    break
            if not self._more(deadline):
                return None
        message = json.loads(body)
        self.seen.append(message)
        if self.reply is not None and "method" in message and "id" in message:  # the server's own requests
            self.reply(frame({"jsonrpc": "2.0", "id": message["id"], "result": None}))
        return message

    def answer(self, msg_id: Any, timeout: float = WAIT) -> dict[str, Any]:
        """The response to `msg_id`; the server's own requests (progress tokens) are skipped."""
        deadline = time.monotonic() + timeout
        while True:
            m = self.next(max(0.01, deadline - time.monotonic()))
            if m is None:
                raise EOFError(f"the stream ended before the answer to {msg_id}")
            if m.get("id") == msg_id and "method" not in m:
                return m

    def until(self, cond: Callable[[dict[str, Any]], bool], timeout: float = WAIT) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            m = self.next(max(0.01, deadline - time.monotonic()))
            if m is None:
                raise EOFError("the stream ended first")
            if cond(m):
                return m

    def at_end(self, timeout: float = WAIT) -> bool:
        """Whether the stream ends, or the peer resets it (messages before the end are read and kept)."""
        deadline = time.monotonic() + timeout
        try:
            while self.next(max(0.01, deadline - time.monotonic())) is not None:
                pass
        except ConnectionError:
            return True
        except TimeoutError:
            return False
        return True


class StdioServer:
    """`parex-lsp --stdio` as a child process with raw pipes."""

    def __init__(self, cwd: Path, *args: str, stdout: Any = subprocess.PIPE, env: dict[str, str] | None = None):
        self.proc = subprocess.Popen([*SERVER, "--stdio", *args], stdin=subprocess.PIPE, stdout=stdout,
                                     stderr=subprocess.PIPE, cwd=cwd, env=env)
        assert self.proc.stdin is not None
        self.out = Reader(self.proc.stdout.fileno(), lambda n: os.read(self.proc.stdout.fileno(), n), self.write) \
            if self.proc.stdout is not None else None

    def send(self, *messages: Any) -> None:
        for m in messages:
            self.write(m if isinstance(m, bytes) else frame(m))

    def write(self, data: bytes) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(data)
        self.proc.stdin.flush()

    def wait(self, timeout: float = WAIT) -> int:
        return self.proc.wait(timeout)

    def stderr(self) -> str:
        assert self.proc.stderr is not None
        return self.proc.stderr.read().decode(errors="replace")

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()
        for f in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if f is not None:
                try:
                    f.close()
                except OSError:
                    pass


def connect(port: int, proc: subprocess.Popen[bytes]) -> socket.socket:
    deadline = time.monotonic() + WAIT
    while True:
        try:
            return socket.create_connection(("127.0.0.1", port), timeout=WAIT)
        except OSError:
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else "the server exited"
            assert time.monotonic() < deadline, "the server never listened"
            time.sleep(0.05)


def socket_reader(sock: socket.socket) -> Reader:
    return Reader(sock.fileno(), sock.recv)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def journal(workspace: Path, run_id: str) -> list[dict[str, Any]]:
    path = workspace / ".parex" / "runs" / run_id / "journal.jsonl"
    complete = path.read_text().split("\n")[:-1]  # a line still being written is not read
    return [json.loads(line) for line in complete if line.strip()]


def wait_for(cond: Callable[[], Any], what: str, timeout: float = WAIT) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := cond()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)
    return value
