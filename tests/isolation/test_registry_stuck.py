"""A registry lock held by a stopped process (SIGSTOP while holding `.parex/locks/registry.lock`): runs neither
crash nor freeze. The scheduler never blocks on the registry; tasks waiting on it fail with `lock-error` after
REGISTRY_STUCK; the language server answers meanwhile; a run goes on once the holder resumes."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import anyio
import filelock
import pytest
import pytest_lsp
from pytest_lsp import ClientServerConfig, LanguageClient

from parex_lsp.engine import run as run_module
from parex_lsp.isolation import table
from parex_lsp.state import locks_dir
from tests.support.engine_helpers import make_run
from tests.support.lsp_helpers import SERVER, events, first_run_id, initialize, make_client, request, write_plan

PAREX = [sys.executable, "-m", "parex_lsp"]
HOLDER = """
import os, signal, sys
from filelock import FileLock
lock = FileLock(sys.argv[1])
lock.acquire()
print("held", flush=True)
os.kill(os.getpid(), signal.SIGSTOP)  # stuck while holding it, until SIGCONT
lock.release()
"""
PLAN = """
[[task]]
id = "locked"
prompt = "echo wrote > a.txt"
files = ["a.txt"]

[[task]]
id = "free"
prompt = "echo free"
"""


class StoppedHolder:
    """A process that holds the registry lock and is stopped (SIGSTOP); `resume` lets it release and exit."""

    def __init__(self, workspace: Path):
        locks_dir(workspace).mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(locks_dir(workspace) / "registry.lock")],
                                     stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout.readline() == "held\n"
        deadline = time.monotonic() + 10
        while Path(f"/proc/{self.proc.pid}/stat").read_text().split(") ")[1][0] != "T":
            assert time.monotonic() < deadline
            time.sleep(0.01)

    def resume(self) -> None:
        os.kill(self.proc.pid, signal.SIGCONT)
        self.proc.wait(timeout=10)

    def close(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


@pytest.fixture
def holder(workspace: Path):
    h = StoppedHolder(workspace)
    yield h
    h.close()


async def test_tasks_waiting_on_a_stuck_registry_fail_with_lock_error(workspace: Path, holder, monkeypatch):
    monkeypatch.setattr(run_module, "REGISTRY_STUCK", 1.0)
    run, rec = await make_run(workspace, PLAN)
    started = time.monotonic()
    with anyio.fail_after(15):
        result = await run.execute()
    by_id = {t.id: t for t in result.tasks}
    assert by_id["free"].status == "succeeded"  # a task without files never looks at the registry
    assert by_id["locked"].status == "failed" and by_id["locked"].code == "lock-error", by_id["locked"]
    assert "lock registry" in by_id["locked"].error
    assert 1.0 <= time.monotonic() - started < 5
    waits = rec.of("lockWait")
    assert waits and "stuck process" in waits[0].data.to_wire()["message"]
    last = json.loads((workspace / ".parex" / "runs" / run.run_id / "journal.jsonl").read_text().splitlines()[-1])
    assert last["kind"] == "runFinished"
    assert not (workspace / "a.txt").exists()


def test_a_cli_run_outlasts_the_old_registry_timeout_and_goes_on_when_the_holder_resumes(workspace: Path, holder):
    (workspace / "parex.toml").write_text(PLAN)
    runner = subprocess.Popen([*PAREX, "run", "parex.toml", "--json"], cwd=workspace, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(11)  # past REGISTRY_TIMEOUT (10 s), where a blocking wait raised filelock.Timeout
        assert runner.poll() is None, runner.communicate()
        holder.resume()
        out, err = runner.communicate(timeout=30)
    finally:
        if runner.poll() is None:
            runner.kill()
    assert runner.returncode == 0, out + err
    assert "Traceback" not in err
    assert (workspace / "a.txt").read_text() == "wrote\n"


async def test_a_per_write_lock_waits_for_a_stuck_registry_without_freezing_the_loop(workspace: Path, holder,
                                                                                   monkeypatch):
    monkeypatch.setattr(table, "REGISTRY_TIMEOUT", 1.0)
    locks = table.WorkspaceLocks(workspace)
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            await anyio.sleep(0.01)
            ticks += 1

    async with anyio.create_task_group() as tg:
        tg.start_soon(tick)
        started = time.monotonic()
        with pytest.raises(filelock.Timeout):
            async with locks.hold("r", "t", ["a.txt"], timeout=30):
                pass
        waited = time.monotonic() - started
        tg.cancel_scope.cancel()
    assert 1.0 <= waited < 3
    assert ticks >= 50 * waited * 0.5, f"the loop ticked {ticks} times in {waited:.1f}s: it was blocked"
    locks.close()


def test_status_answers_at_once_while_the_registry_is_stuck(workspace: Path, holder):
    (workspace / "parex.toml").write_text(PLAN)
    started = time.monotonic()
    p = subprocess.run([*PAREX, "status"], cwd=workspace, capture_output=True, text=True, timeout=60)
    assert p.returncode == 0 and "Traceback" not in p.stderr, p.stderr
    assert time.monotonic() - started < 8  # a blocking wait on the registry lock took 10 s, then crashed


@pytest_lsp.fixture(config=ClientServerConfig(server_command=SERVER, client_factory=make_client))
async def client(lsp_client: LanguageClient):
    yield
    await lsp_client.shutdown_session()


async def test_the_server_answers_while_the_registry_is_stuck(client: LanguageClient, tmp_path: Path):
    holder = StoppedHolder(tmp_path)
    try:
        plan = write_plan(tmp_path, PLAN)
        await initialize(client, tmp_path)
        pending = asyncio.ensure_future(request(client, "parex/run", {"plan": {"uri": plan.as_uri()}}))
        run_id = await first_run_id(client)
        slowest = 0.0
        for _ in range(15):  # 3 s of status requests while `locked` waits on the registry
            t0 = time.monotonic()
            status = await request(client, "parex/status", {"runId": run_id})
            slowest = max(slowest, time.monotonic() - t0)
            await asyncio.sleep(0.2)
        assert slowest < 1.0, f"a status request took {slowest:.2f}s: the loop was blocked"
        assert {t["id"]: t["status"] for t in status["runs"][0]["tasks"]}["locked"] == "waiting", status
        assert events(client, run_id, "locked", "lockWait")
        holder.resume()
        result = await pending
        assert result["status"] == "succeeded", result
    finally:
        holder.close()
