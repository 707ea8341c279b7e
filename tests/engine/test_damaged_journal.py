"""One non-UTF-8 byte in a journal (any line: the run's start, a task's event, its end) never crashes `run`,
`run --resume`, `status` or `parex/run` in that workspace: the damaged line is skipped with a warning."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest
import pytest_lsp
from pytest_lsp import ClientServerConfig, LanguageClient

from tests.support.lsp_helpers import SERVER, initialize, make_client, request

PAREX = [sys.executable, "-m", "parex_lsp"]
PLAN = '[[task]]\nid = "a"\nprompt = "echo a"\n\n[[task]]\nid = "b"\nprompt = "exit 3"\n'
WHERE = {"first": lambda lines: 0, "middle": lambda lines: len(lines) // 2, "last": lambda lines: len(lines) - 1}


def parex(ws: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*PAREX, *args], cwd=ws, capture_output=True, text=True, timeout=60)


def damaged_workspace(ws: Path, where: str) -> Path:
    """A workspace with one finished run whose journal has a 0xff byte in its `where` line."""
    (ws / "parex.toml").write_text(PLAN)
    assert parex(ws, "run", "parex.toml").returncode == 1
    journal = next((ws / ".parex" / "runs").glob("*/journal.jsonl"))
    lines = journal.read_bytes().splitlines(keepends=True)
    n = WHERE[where](lines)
    lines[n] = lines[n][:12] + b"\xff" + lines[n][12:]
    journal.write_bytes(b"".join(lines))
    with pytest.raises(UnicodeDecodeError):
        journal.read_text(encoding="utf-8")
    return journal


@pytest.mark.parametrize("where", list(WHERE))
def test_cli_run_resume_and_status_survive_a_damaged_journal(workspace: Path, where: str):
    journal = damaged_workspace(workspace, where)
    run_id = journal.parent.name
    p = parex(workspace, "status")
    assert p.returncode == 0 and run_id in p.stdout and "Traceback" not in p.stderr, p.stderr
    p = parex(workspace, "status", run_id, "--json")
    assert p.returncode == 0 and "Traceback" not in p.stderr, p.stderr
    p = parex(workspace, "run", "parex.toml", "--resume", run_id, "--json")
    assert "Traceback" not in p.stderr, p.stderr
    if where == "first":  # the line naming the run's plan is lost: a clear refusal
        assert p.returncode == 2 and f"no run to resume: {run_id}" in p.stderr, p.stderr
    else:
        assert p.returncode in (0, 1) and json.loads(p.stdout.splitlines()[-1])["tasks"], p.stderr
    p = parex(workspace, "run", "parex.toml", "--json")
    assert p.returncode == 1 and "Traceback" not in p.stderr, p.stderr
    assert {t["id"]: t["status"] for t in json.loads(p.stdout.splitlines()[-1])["tasks"]} == {
        "a": "succeeded", "b": "failed"}


@pytest_lsp.fixture(config=ClientServerConfig(server_command=SERVER, client_factory=make_client))
async def client(lsp_client: LanguageClient):
    yield
    await lsp_client.shutdown_session()


@pytest.mark.parametrize("where", ["first", "last"])
async def test_parex_run_survives_a_damaged_journal(client: LanguageClient, tmp_path: Path, where: str):
    await asyncio.to_thread(damaged_workspace, tmp_path, where)
    await initialize(client, tmp_path)
    plan = {"plan": {"uri": (tmp_path / "parex.toml").as_uri()}}
    result = await request(client, "parex/run", plan)
    assert {t["id"]: t["status"] for t in result["tasks"]} == {"a": "succeeded", "b": "failed"}
    resumed = await request(client, "parex/run", {**plan, "resume": "last"})
    assert resumed["tasks"], resumed
