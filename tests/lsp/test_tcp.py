"""`parex-lsp --tcp`: the same server on a socket, for clients that connect rather than spawn; only for
clients holding the token, and a client that goes away has its runs ended."""

from __future__ import annotations

import stat
import subprocess
import sys

import pytest

from tests.lsp.raw import (
    connect,
    frame,
    free_port,
    initialize,
    journal,
    req,
    socket_reader,
    wait_for,
)
from tests.support.processes import alive


@pytest.fixture
def tcp_server(tmp_path):
    port = free_port()
    token_file = tmp_path / "secret" / "tcp-token"
    proc = subprocess.Popen([sys.executable, "-m", "parex_lsp", "--tcp", "--host", "127.0.0.1", "--port", str(port),
                             "--token-file", str(token_file)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        connect(port, proc).close()
        yield port, token_file, proc
    finally:
        proc.kill()
        proc.wait()
        proc.stderr.close()


def test_the_server_answers_over_tcp_with_the_token(tcp_server, tmp_path):
    port, token_file, proc = tcp_server
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    token = token_file.read_text().strip()
    assert len(token) >= 32
    with connect(port, proc) as sock:
        out = socket_reader(sock)
        sock.sendall(frame(initialize(1, tmp_path, token=token)))
        answer = out.answer(1)
        commands = answer["result"]["capabilities"]["executeCommandProvider"]["commands"]
        assert {"parex.run", "parex.cancel", "parex.retryTask", "parex.showLog"} <= set(commands)
        sock.sendall(frame(req(2, "parex/status")))
        assert out.answer(2) == {"jsonrpc": "2.0", "id": 2, "result": {"runs": []}}


@pytest.mark.parametrize("first", [
    "no token", "wrong token", "a request before initialize",
])
def test_a_client_without_the_token_is_refused_and_disconnected(tcp_server, tmp_path, first):
    port, token_file, proc = tcp_server
    message = {"no token": initialize(1, tmp_path),
               "wrong token": initialize(1, tmp_path, token="x" * 43),
               "a request before initialize": req(1, "parex/run", {"plan": {"tasks": [
                   {"id": "pwn", "prompt": f"touch {tmp_path / 'pwned'}"}]}})}[first]
    with connect(port, proc) as sock:
        out = socket_reader(sock)
        sock.sendall(frame(message))
        answer = out.answer(1)
        assert answer["error"]["code"] == -32001 and "unauthorized" in answer["error"]["message"]
        # the connection is closed: nothing more is read from it
        sock.sendall(frame(req(2, "parex/run", {"plan": {"tasks": [{"id": "pwn", "prompt": f"touch {tmp_path / 'pwned'}"}]}})))
        assert out.at_end()
    assert not (tmp_path / "pwned").exists()
    # the server still serves the owner
    with connect(port, proc) as sock:
        out = socket_reader(sock)
        sock.sendall(frame(initialize(1, tmp_path, token=token_file.read_text().strip())))
        assert "result" in out.answer(1)


def test_a_client_that_disconnects_has_its_runs_ended(tcp_server, tmp_path):
    port, token_file, proc = tcp_server
    pidfile = tmp_path / "agent.pid"
    with connect(port, proc) as sock:
        out = socket_reader(sock)
        sock.sendall(frame(initialize(1, tmp_path, token=token_file.read_text().strip())))
        out.answer(1)
        sock.sendall(frame(req(2, "parex/run", {"detach": True, "plan": {"tasks": [
            {"id": "long", "prompt": f"echo $$ > {pidfile}; exec sleep 60"}]}})))
        run_id = out.answer(2)["result"]["runId"]
        wait_for(lambda: pidfile.exists() and pidfile.read_text().strip(), "the agent to start")
        agent = int(pidfile.read_text())
        assert alive(agent)
    # the socket is closed: the agent is ended and the journal closed as after a cancel
    wait_for(lambda: not alive(agent), "the agent to be ended")
    wait_for(lambda: journal(tmp_path, run_id)[-1]["kind"] == "runFinished", "the journal's runFinished")
    assert journal(tmp_path, run_id)[-1]["data"]["status"] == "cancelled"
    assert proc.poll() is None  # the server goes on serving others
