"""`parex-lsp --tcp`: the same server on a socket, for clients that connect rather than spawn."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _send(sock: socket.socket, message: dict) -> None:
    body = json.dumps(message).encode()
    sock.sendall(b"Content-Length: %d\r\n\r\n" % len(body) + body)


def _receive(sock: socket.socket) -> dict:
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(4096)
    head, rest = data.split(b"\r\n\r\n", 1)
    length = int(next(h for h in head.split(b"\r\n") if h.lower().startswith(b"content-length")).split(b":")[1])
    while len(rest) < length:
        rest += sock.recv(4096)
    return json.loads(rest[:length])


def test_the_server_answers_over_tcp(tmp_path):
    port = _free_port()
    server = subprocess.Popen([sys.executable, "-m", "parex_lsp", "--tcp", "--host", "127.0.0.1", "--port", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                sock = socket.create_connection(("127.0.0.1", port), timeout=10)
                break
            except OSError:
                assert server.poll() is None, server.stderr.read().decode()
                assert time.monotonic() < deadline, "the server never listened"
                time.sleep(0.1)
        with sock:
            _send(sock, {"jsonrpc": "2.0", "id": 1, "method": "initialize",
                         "params": {"processId": None, "rootUri": tmp_path.as_uri(), "capabilities": {}}})
            answer = _receive(sock)
            assert answer["id"] == 1
            commands = answer["result"]["capabilities"]["executeCommandProvider"]["commands"]
            assert {"parex.run", "parex.cancel", "parex.retryTask", "parex.showLog"} <= set(commands)
            _send(sock, {"jsonrpc": "2.0", "id": 2, "method": "parex/status", "params": {}})
            assert _receive(sock) == {"jsonrpc": "2.0", "id": 2, "result": {"runs": []}}
    finally:
        server.kill()
        server.wait()
