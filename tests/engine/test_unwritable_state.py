"""Unwritable run state: `.parex/` or `.parex/runs/` not writable is a clear error before anything starts
(exit 2, no traceback); a log folder made read-only mid-run fails the tasks that cannot keep their output, and
the run still ends with `runFinished` in its journal.

Root ignores permissions, so as root the run under test is started without capabilities (setpriv: uid 0 with
no CAP_DAC_OVERRIDE is held to the permission bits like anyone else)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

PAREX = [sys.executable, "-m", "parex_lsp"]
NO_CAPS = ["setpriv", "--securebits=+noroot,+noroot_locked", "--bounding-set=-all", "--inh-caps=-all", "--"]


def _unprivileged() -> list[str] | None:
    """The prefix that runs a command held to permission bits; None when that cannot be done here."""
    if os.geteuid() != 0:
        return []
    if shutil.which("setpriv") is None:
        return None
    probe = subprocess.run([*NO_CAPS, sys.executable, "-c",
                            "print(open('/proc/self/status').read().split('CapEff:')[1].split()[0])"],
                           capture_output=True, text=True)
    return NO_CAPS if probe.returncode == 0 and int(probe.stdout.strip() or "1", 16) == 0 else None


PREFIX = _unprivileged()
pytestmark = pytest.mark.skipif(PREFIX is None, reason="running as root without setpriv to drop capabilities: "
                                                       "root would write through any permission")


def parex(ws: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*PREFIX, *PAREX, *args], cwd=ws, capture_output=True, text=True, timeout=60)


@pytest.fixture
def ws(workspace: Path):
    (workspace / "parex.toml").write_text('[[task]]\nid = "a"\nprompt = "echo ran > ran.txt"\n')
    yield workspace
    for d in [workspace, *workspace.rglob("*")]:  # let pytest clean up
        if d.is_dir():
            d.chmod(0o755)


@pytest.mark.parametrize("folder", [".parex", ".parex/runs"])
def test_an_unwritable_state_folder_is_a_clear_error_before_anything_runs(ws: Path, folder: str):
    (ws / folder).mkdir(parents=True)
    (ws / folder).chmod(0o555)
    p = parex(ws, "run", "parex.toml")
    assert p.returncode == 2, p.stdout + p.stderr
    assert f"cannot write run state under {ws / '.parex'}" in p.stderr and "Permission denied" in p.stderr
    assert "Traceback" not in p.stderr, p.stderr
    assert not (ws / "ran.txt").exists()


def test_a_log_folder_made_read_only_mid_run_fails_tasks_not_the_run(ws: Path):
    (ws / "parex.toml").write_text("""
[run]
max_concurrency = 2
[[task]]
id = "lock-out"
prompt = "chmod a-w \\"$PAREX_WORKSPACE/.parex/runs/$PAREX_RUN_ID\\""
[[task]]
id = "talks"
prompt = "echo some output; sleep 0.2"
depends_on = ["lock-out"]
[[task]]
id = "fails"
prompt = "exit 4"
depends_on = ["lock-out"]
""")
    p = parex(ws, "run", "parex.toml", "--json")
    assert p.returncode == 1, p.stdout + p.stderr
    assert "Traceback" not in p.stderr, p.stderr
    tasks = {t["id"]: t for t in json.loads(p.stdout.splitlines()[-1])["tasks"]}
    assert tasks["lock-out"]["status"] == "succeeded"
    assert tasks["talks"]["status"] == "failed"
    assert "talks.log: Permission denied" in tasks["talks"]["error"], tasks["talks"]
    assert tasks["fails"]["status"] == "failed" and tasks["fails"]["exitCode"] == 4  # its empty log: a warning
    journal = next((ws / ".parex" / "runs").glob("*/journal.jsonl"))
    last = json.loads(journal.read_text().splitlines()[-1])
    assert last["kind"] == "runFinished" and last["data"]["status"] == "failed"
