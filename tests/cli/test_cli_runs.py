"""What a run is made of, as the command line is used: --only, --resume over the whole history, fail_fast,
a plan that is running already, bad options."""

from __future__ import annotations

import json
import signal
import subprocess
from pathlib import Path

import pytest

from tests.cli.cli_helpers import PAREX, kill_if_alive, parex, read_pid, wait_for, write_plan

HISTORY_PLAN = """
    [[task]]
    id = "gen"
    prompt = "echo gen >> ran; echo generated > gen.txt"
    [[task]]
    id = "lint"
    prompt = "echo lint >> ran; test -e fixed"
    [[task]]
    id = "report"
    prompt = "echo report >> ran; cat gen.txt"
    depends_on = ["gen"]
    [[task]]
    id = "docs"
    prompt = "echo docs >> ran"
    depends_on = ["lint"]
"""


def _result(p: subprocess.CompletedProcess) -> dict:
    return json.loads(p.stdout.strip().splitlines()[-1])


def _ran(ws: Path) -> list[str]:
    text = (ws / "ran").read_text() if (ws / "ran").exists() else ""
    (ws / "ran").write_text("")
    return text.split()


def test_history_is_every_earlier_run_of_the_plan(workspace: Path):
    write_plan(workspace, HISTORY_PLAN.replace("[[task]]", "[run]\nmax_concurrency = 1\n[[task]]", 1))
    first = parex("run", "parex.toml", "--json", cwd=workspace)
    assert first.returncode == 1
    assert {t["id"]: t["status"] for t in _result(first)["tasks"]} == {
        "gen": "succeeded", "lint": "failed", "report": "succeeded", "docs": "skipped"}
    assert sorted(_ran(workspace)) == ["gen", "lint", "report"]
    (workspace / "fixed").touch()

    lint = parex("run", "--only", "lint", "parex.toml", "--json", cwd=workspace)
    assert lint.returncode == 0, lint.stdout + lint.stderr
    assert _ran(workspace) == ["lint"]

    report = parex("run", "--only", "report", "parex.toml", "--json", cwd=workspace)
    assert report.returncode == 0, report.stdout + report.stderr  # gen succeeded two runs ago: enough
    assert _ran(workspace) == ["report"]

    resumed = parex("run", "parex.toml", "--resume", "last", "--json", cwd=workspace)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert _ran(workspace) == ["docs"]  # everything else succeeded in some earlier run
    reused = {t["id"]: t.get("reusedFrom") for t in _result(resumed)["tasks"]}
    first_id, lint_id, report_id = (_result(p)["runId"] for p in (first, lint, report))
    assert reused == {"gen": first_id, "lint": lint_id, "report": report_id, "docs": None}


def test_fail_fast_is_a_failure_naming_the_task_that_failed(workspace: Path):
    write_plan(workspace, """
        [run]
        fail_fast = true
        max_concurrency = 2
        [[task]]
        id = "broken"
        prompt = "sleep 0.3; exit 4"
        [[task]]
        id = "slow"
        prompt = "sleep 30"
        [[task]]
        id = "queued"
        prompt = "true"
        depends_on = ["slow"]
    """)
    p = parex("run", "parex.toml", "--json", cwd=workspace)
    assert p.returncode == 1, p.stdout + p.stderr
    result = _result(p)
    assert result["status"] == "failed"
    tasks = {t["id"]: t for t in result["tasks"]}
    assert tasks["broken"]["status"] == "failed"
    for tid in ("slow", "queued"):
        assert tasks[tid]["status"] == "cancelled", tasks[tid]
        assert "broken" in tasks[tid]["error"] and "fail_fast" in tasks[tid]["error"], tasks[tid]
    status = json.loads(parex("status", "last", "--json", cwd=workspace).stdout)
    assert status["status"] == "failed"


def test_a_plan_that_is_running_is_not_started_twice(workspace: Path):
    write_plan(workspace, '[[task]]\nid = "long"\nprompt = "echo $$ > long.pid; exec sleep 60"\n')
    first = subprocess.Popen([*PAREX, "run", "parex.toml"], cwd=workspace, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: read_pid(workspace / "long.pid"))
        run_id = json.loads(parex("status", "last", "--json", cwd=workspace).stdout)["runId"]
        second = parex("run", "parex.toml", cwd=workspace)
        assert second.returncode == 2, second.stdout + second.stderr
        assert run_id in second.stderr and f"pid {first.pid}" in second.stderr, second.stderr
        assert f"parex-lsp cancel {run_id}" in second.stderr
        assert len(list((workspace / ".parex" / "runs").iterdir())) == 1  # nothing of a second run was made
    finally:
        first.send_signal(signal.SIGINT)
        first.communicate(timeout=30)
        kill_if_alive(read_pid(workspace / "long.pid"))


@pytest.mark.parametrize("only", [["--only", "a", "--only", "b"], ["--only", "a,b"], ["--only=a,b"]],
                         ids=["repeated", "commas", "equals"])
def test_only_takes_ids_and_leaves_the_plan_argument_alone(tmp_path: Path, only):
    ws = tmp_path / "project"
    ws.mkdir()
    write_plan(ws, "".join(f'[[task]]\nid = "{t}"\nprompt = "echo {t} >> ran"\n' for t in "abc"))
    p = parex("run", *only, "project", "--json", cwd=tmp_path)  # --only before the plan
    assert p.returncode == 0, p.stdout + p.stderr
    assert sorted((ws / "ran").read_text().split()) == ["a", "b"]
    single = parex("run", "--only", "c", "project", cwd=tmp_path)
    assert single.returncode == 0, single.stderr
    assert sorted((ws / "ran").read_text().split()) == ["a", "b", "c"]


@pytest.mark.parametrize("value", ["0", "-1", "two"])
def test_max_concurrency_below_one_is_refused(workspace: Path, value):
    write_plan(workspace, '[[task]]\nid = "a"\nprompt = "echo ran > ran"\n')
    p = parex("run", "parex.toml", f"--max-concurrency={value}", cwd=workspace)
    assert p.returncode == 2
    assert "--max-concurrency" in p.stderr and value in p.stderr, p.stderr
    assert not (workspace / "ran").exists()
