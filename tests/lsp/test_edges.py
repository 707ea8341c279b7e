"""Small edges of the request surface, each against the real server: ids that are paths, empty plans,
absurd line numbers, and the agents a dead runner left behind."""

from __future__ import annotations

import signal
import subprocess

import pytest

from tests.lsp.raw import SERVER, StdioServer, initialize, journal, req, wait_for
from tests.support.processes import alive


@pytest.fixture
def server(tmp_path):
    s = StdioServer(tmp_path)
    s.send(initialize(1, tmp_path))
    s.out.answer(1)
    yield s
    s.close()


def error(server: StdioServer, msg_id: int, method: str, params) -> dict:
    server.send(req(msg_id, method, params))
    answer = server.out.answer(msg_id)
    assert "error" in answer, answer
    return answer["error"]


@pytest.mark.parametrize("run_id, task_id", [(".", "a"), ("..", "a"), ("r", "."), ("r", ".."), ("..", "..")])
def test_show_log_of_dot_ids_is_refused_and_creates_nothing(server, tmp_path, run_id, task_id):
    (tmp_path / ".parex" / "runs").mkdir(parents=True)
    before = sorted(p for p in (tmp_path / ".parex").rglob("*"))
    e = error(server, 5, "workspace/executeCommand",
              {"command": "parex.showLog", "arguments": [{"runId": run_id, "taskId": task_id}]})
    assert e["code"] == -32602
    assert sorted(p for p in (tmp_path / ".parex").rglob("*")) == before
    assert not list(tmp_path.glob("*.log"))


def test_an_empty_inline_plan_is_invalid_params(server):
    e = error(server, 5, "parex/run", {"plan": {"tasks": []}})
    assert e["code"] == -32602 and "no tasks" in e["message"]


def test_a_range_line_past_what_lsp_can_carry_is_invalid_params(server, tmp_path):
    doc = tmp_path / "notes.md"
    doc.write_text("call1: echo hi\n")
    line = {"line": 10**18, "character": 0}
    e = error(server, 5, "parex/run", {"plan": {"uri": doc.as_uri(), "range": {"start": line, "end": line}}})
    assert e["code"] == -32602 and "10000000000000" in e["message"]


def test_an_output_line_number_past_lsp_range_keeps_the_task_diagnostic(server, tmp_path):
    (tmp_path / "src.py").write_text("x = 1\n")
    plan = tmp_path / "parex.toml"
    plan.write_text('[[task]]\nid = "lint"\nprompt = "echo src.py:99999999999:1: too far; exit 1"\n')
    server.send(req(5, "parex/run", {"plan": {"uri": plan.as_uri()}}))
    assert server.out.answer(5)["result"]["status"] == "failed"
    published = {m["params"]["uri"]: m["params"]["diagnostics"] for m in server.out.seen
                 if m.get("method") == "textDocument/publishDiagnostics"}
    [task] = published[plan.as_uri()]
    assert task["code"] == "exit-code"
    [named] = published[(tmp_path / "src.py").as_uri()]
    assert named["range"]["start"]["line"] == 2**31 - 1 and named["message"] == "[lint] too far"


def test_agents_left_by_a_dead_runner_are_named_in_a_warning(server, tmp_path):
    pidfile = tmp_path / "agent.pid"
    plan = tmp_path / "other.parex.toml"
    plan.write_text(f'[[task]]\nid = "left"\nprompt = "echo $$ > {pidfile}; exec sleep 60"\n')
    runner = subprocess.Popen([*SERVER, "run", str(plan)], cwd=tmp_path, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: pidfile.exists() and pidfile.read_text().strip(), "the runner's agent to start")
        agent = int(pidfile.read_text())
        dead_run = next(p.name for p in (tmp_path / ".parex" / "runs").iterdir())
        wait_for(lambda: any(e["kind"] == "spawned" for e in journal(tmp_path, dead_run)), "the spawn journaled")
        runner.send_signal(signal.SIGKILL)
        runner.wait()
        assert alive(agent)
        server.send(req(5, "parex/run", {"plan": {"tasks": [{"id": "next", "prompt": "true"}]}}))
        assert server.out.answer(5)["result"]["status"] == "succeeded"
        [warning] = [m["params"] for m in server.out.seen if m.get("method") == "window/showMessage"]
        assert warning["type"] == 2  # Warning
        assert "ended 1 agent process" in warning["message"] and dead_run in warning["message"]
        assert not alive(agent)
    finally:
        runner.kill()
        runner.wait()
