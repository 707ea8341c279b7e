"""A plan that is running in another process is not started again, nor resumed: `Run.prepare` raises PlanBusy
naming the running run and its pid, and a second `parex-lsp run` (or `--resume`) exits 2 saying so."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from parex_lsp.engine import Run, RunOptions
from parex_lsp.engine.run import plan_key
from parex_lsp.engine.selection import PlanBusy
from parex_lsp.plan import plan_from_text

PAREX = [sys.executable, "-m", "parex_lsp"]
PLAN = '[[task]]\nid = "quick"\nprompt = "true"\n\n[[task]]\nid = "long"\nprompt = "test -e stop || sleep 60"\n'


@pytest.fixture
def running(workspace: Path):
    """A run of the plan in another process, with its run id once its journal says it started."""
    (workspace / "parex.toml").write_text(PLAN)
    proc = subprocess.Popen([*PAREX, "run", "parex.toml"], cwd=workspace, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while True:
        journals = list((workspace / ".parex" / "runs").glob("*/journal.jsonl"))
        if journals and '"kind":"started"' in journals[0].read_text():
            break
        assert time.monotonic() < deadline and proc.poll() is None, "the first run did not start"
        time.sleep(0.05)
    yield journals[0].parent.name, proc.pid
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=30) == 130


@pytest.mark.parametrize("resume", [None, "last", "by-id"])
async def test_prepare_refuses_a_plan_running_in_another_process(workspace: Path, running, resume):
    run_id, pid = running
    plan = plan_from_text(PLAN, str(workspace / "parex.toml"), workspace)
    with pytest.raises(PlanBusy) as caught:
        await Run.prepare(plan, RunOptions(resume=run_id if resume == "by-id" else resume))
    assert (caught.value.run_id, caught.value.pid) == (run_id, pid)


@pytest.mark.parametrize("extra", [[], ["--resume", "last"]])
def test_a_second_cli_run_of_a_running_plan_exits_2_naming_it(workspace: Path, running, extra):
    run_id, pid = running
    p = subprocess.run([*PAREX, "run", "parex.toml", *extra], cwd=workspace, capture_output=True, text=True,
                       timeout=60)
    assert p.returncode == 2, p.stdout + p.stderr
    assert f"already running as run {run_id} (pid {pid})" in p.stderr, p.stderr
    assert "Traceback" not in p.stderr
    assert len(list((workspace / ".parex" / "runs").iterdir())) == 1  # nothing else started
    status = json.loads(subprocess.run([*PAREX, "status", "--json"], cwd=workspace, capture_output=True,
                                       text=True, timeout=60).stdout)
    assert [r["status"] for r in status["runs"]] == ["running"]


CLAIMER = """
import sys, time
from pathlib import Path
from parex_lsp.isolation.claims import PlanClaim
claim = PlanClaim(Path(sys.argv[1]), sys.argv[2])  # held while this process lives
assert claim.take("run-in-the-window")
print("claimed", flush=True)
time.sleep(60)
"""


async def test_a_run_between_its_prepare_and_its_first_journal_line_is_seen(workspace: Path):
    """Two runs started at once: the first has prepared (holds the plan's claim) but written no journal yet."""
    (workspace / "parex.toml").write_text(PLAN)
    plan = plan_from_text(PLAN, str(workspace / "parex.toml"), workspace)
    claimer = subprocess.Popen([sys.executable, "-c", CLAIMER, str(workspace.resolve()), plan_key(plan)],
                               stdout=subprocess.PIPE, text=True)
    try:
        assert claimer.stdout.readline() == "claimed\n"
        assert not (workspace / ".parex" / "runs").exists()
        with pytest.raises(PlanBusy) as caught:
            await Run.prepare(plan)
        assert (caught.value.run_id, caught.value.pid) == ("run-in-the-window", claimer.pid)
    finally:
        claimer.kill()
        claimer.wait()
    (workspace / "stop").touch()
    run = await Run.prepare(plan)  # the claim died with its holder
    assert (await run.execute()).status == "succeeded"
