"""However the server's client goes — shutdown, end of input, a signal, Ctrl-C, its parent gone — every run is
ended cleanly: agents' process groups gone, journals closed with runFinished."""

from __future__ import annotations

import signal
import subprocess
import time

import pytest

from tests.lsp.raw import SERVER, Reader, StdioServer, frame, initialize, journal, note, req, wait_for
from tests.support.processes import alive

AGENT = """
[run]
kill_grace = {grace}

[[task]]
id = "stubborn"
prompt = "trap '' TERM; echo $$ > {pidfile}; while true; do sleep 0.1; done"
"""


def start_agent(server: StdioServer, tmp_path, grace: float = 1) -> tuple[str, int]:
    """A detached run whose agent ignores SIGTERM; (run id, the agent's pid)."""
    pidfile = tmp_path / "agent.pid"
    plan = tmp_path / "parex.toml"
    plan.write_text(AGENT.format(grace=grace, pidfile=pidfile))
    server.send(initialize(1, tmp_path))
    server.out.answer(1)
    server.send(req(2, "parex/run", {"plan": {"uri": plan.as_uri()}, "detach": True}))
    run_id = server.out.answer(2)["result"]["runId"]
    wait_for(lambda: pidfile.exists() and pidfile.read_text().strip(), "the agent to start")
    return run_id, int(pidfile.read_text())


def ended_cleanly(tmp_path, run_id: str, agent: int) -> None:
    assert not alive(agent)
    last = journal(tmp_path, run_id)[-1]
    assert last["kind"] == "runFinished" and last["data"]["status"] == "cancelled"


def test_shutdown_answers_only_after_an_agent_that_ignores_sigterm_is_gone(tmp_path):
    server = StdioServer(tmp_path)
    try:
        run_id, agent = start_agent(server, tmp_path, grace=11)  # longer than the 10 s shutdown once waited
        start = time.monotonic()
        server.send(req(3, "shutdown", None))
        server.out.answer(3, timeout=60)
        assert time.monotonic() - start >= 10  # it waited out the grace...
        ended_cleanly(tmp_path, run_id, agent)  # ...and the agent was killed before the answer
        server.send(note("exit"))
        assert server.wait() == 0
    finally:
        server.close()


@pytest.mark.parametrize("how, code", [("stdin closed", 0), ("SIGTERM", 143), ("SIGHUP", 129), ("SIGINT", 130)])
def test_the_server_stops_cleanly_when_its_client_goes(tmp_path, how, code):
    server = StdioServer(tmp_path)
    try:
        run_id, agent = start_agent(server, tmp_path)
        if how == "stdin closed":
            server.proc.stdin.close()
        else:
            server.proc.send_signal(getattr(signal, how))
        assert server.wait() == code
        ended_cleanly(tmp_path, run_id, agent)
        err = server.stderr()
        assert "Traceback" not in err and "Fatal Python error" not in err, err
    finally:
        server.close()


def test_the_server_stops_when_the_process_that_started_it_is_gone(tmp_path):
    # sh starts the server and waits for it; killing sh leaves the server's stdin open (this test holds it)
    shell = subprocess.Popen(["sh", "-c", " ".join(SERVER) + " --stdio; true"], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    out = Reader(shell.stdout.fileno(), shell.stdout.raw.read, lambda b: (shell.stdin.write(b), shell.stdin.flush()))

    class Via:
        def send(self, *ms):
            for m in ms:
                shell.stdin.write(frame(m))
                shell.stdin.flush()

    via = Via()
    via.out = out  # type: ignore[attr-defined]
    try:
        run_id, agent = start_agent(via, tmp_path)  # type: ignore[arg-type]
        server_pid = next(e for e in journal(tmp_path, run_id) if e["kind"] == "runStarted")["data"]["pid"]
        shell.kill()
        shell.wait()
        wait_for(lambda: not alive(server_pid), "the server to notice its parent is gone")
        ended_cleanly(tmp_path, run_id, agent)
    finally:
        shell.kill()
        shell.stdin.close()
        shell.stdout.close()


def test_ctrl_c_on_a_server_started_by_hand_exits_without_a_traceback(tmp_path):
    proc = subprocess.Popen([*SERVER, "--stdio"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, cwd=tmp_path)
    try:
        proc.stdin.write(frame(initialize(1, tmp_path)))
        proc.stdin.flush()
        Reader(proc.stdout.fileno(), proc.stdout.raw.read).answer(1)  # up and idle, waiting for input
        proc.send_signal(signal.SIGINT)
        assert proc.wait(30) == 130
        err = proc.stderr.read().decode()
        assert "Traceback" not in err and "Fatal Python error" not in err, err
    finally:
        proc.kill()
        proc.wait()
        for f in (proc.stdin, proc.stdout, proc.stderr):
            f.close()
