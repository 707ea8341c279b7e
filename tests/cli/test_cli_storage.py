"""What runs leave under `.parex/runs/`: output kept once (the log), old runs pruned (`[run] keep_runs`, `gc`)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from tests.cli.cli_helpers import PAREX, kill_if_alive, parex, read_pid, wait_for, write_plan


def _runs(ws: Path) -> list[str]:
    return sorted(p.name for p in (ws / ".parex" / "runs").iterdir() if p.is_dir())


def _run_id(p: subprocess.CompletedProcess) -> str:
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout.strip().splitlines()[-1])["runId"]


def test_output_is_kept_once_in_the_log_and_the_journal_keeps_only_the_last_line(workspace: Path):
    write_plan(workspace, '[[task]]\nid = "chatty"\nprompt = "seq -f \'line %g\' 3000; printf \'no newline\'"\n')
    run_id = _run_id(parex("run", "--json", "parex.toml", cwd=workspace))
    folder = workspace / ".parex" / "runs" / run_id
    log = (folder / "chatty.log").read_text()
    assert log.splitlines()[:2] == ["line 1", "line 2"] and log.endswith("line 3000\nno newline")
    events = [json.loads(line) for line in (folder / "journal.jsonl").read_text().splitlines()]
    outputs = [e for e in events if e["kind"] == "output"]
    assert outputs and all(set(e["data"]) == {"last"} for e in outputs)
    assert outputs[-1]["data"]["last"] == "no newline"
    assert "line 1500" not in (folder / "journal.jsonl").read_text()
    # `log` still gives every byte, from the file
    assert parex("log", "chatty", cwd=workspace).stdout == log


def test_each_run_prunes_to_keep_runs_sparing_the_latest_run_of_every_plan(workspace: Path):
    write_plan(workspace, '[run]\nkeep_runs = 2\n[[task]]\nid = "a"\nprompt = "echo a"\n', name="a.parex.toml")
    write_plan(workspace, '[run]\nkeep_runs = 2\n[[task]]\nid = "b"\nprompt = "echo b"\n', name="b.parex.toml")
    first_a = _run_id(parex("run", "--json", "a.parex.toml", cwd=workspace))
    bs = [_run_id(parex("run", "--json", "b.parex.toml", cwd=workspace)) for _ in range(5)]
    # the fifth run of b found a, b1..b4: it kept the newest two (b3, b4) and a (the latest of its plan)
    assert _runs(workspace) == sorted([first_a, *bs[2:]])
    resumed = parex("run", "--resume", "last", "--json", "a.parex.toml", cwd=workspace)
    assert resumed.returncode == 0 and json.loads(resumed.stdout.splitlines()[-1])["tasks"][0]["reusedFrom"] == first_a


def test_gc_by_hand_dry_run_first_and_never_a_live_run(workspace: Path):
    write_plan(workspace, '[[task]]\nid = "b"\nprompt = "echo b"\n', name="b.parex.toml")
    write_plan(workspace, '[[task]]\nid = "slow"\nprompt = "echo $$ > slow.pid; sleep 60"\n', name="c.parex.toml")
    bs = [_run_id(parex("run", "--json", "b.parex.toml", cwd=workspace)) for _ in range(3)]
    live = subprocess.Popen([*PAREX, "run", "c.parex.toml"], cwd=workspace, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: read_pid(workspace / "slow.pid"))
        newest = _run_id(parex("run", "--json", "b.parex.toml", cwd=workspace))
        before = _runs(workspace)
        dry = parex("gc", "--keep", "1", "--dry-run", cwd=workspace)
        assert dry.returncode == 0, dry.stderr
        assert [ln.split()[-1] for ln in dry.stdout.splitlines() if ln.startswith("would remove run")] == bs
        assert "still running" in dry.stdout and _runs(workspace) == before
        done = parex("gc", "--keep", "1", cwd=workspace)
        assert done.returncode == 0 and "removed 3 run(s)" in done.stdout, done.stdout
        assert newest in _runs(workspace) and len(_runs(workspace)) == 2  # the newest and the live one
        assert parex("gc", "--keep", "0", cwd=workspace).returncode == 2
    finally:
        live.terminate()
        live.wait(30)
        kill_if_alive(read_pid(workspace / "slow.pid"))


def test_gc_spares_runs_with_kept_branches_until_gc_branches(workspace: Path):
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run([*git, "init", "-q", "-b", "main"], cwd=workspace, check=True)
    write_plan(workspace, '[[task]]\nid = "b"\nprompt = "echo b"\n')
    subprocess.run([*git, "add", "parex.toml"], cwd=workspace, check=True)
    subprocess.run([*git, "commit", "-qm", "plan"], cwd=workspace, check=True)
    old, _, _ = [_run_id(parex("run", "--json", cwd=workspace)) for _ in range(3)]
    subprocess.run(["git", "branch", f"parex/{old}/b"], cwd=workspace, check=True)  # as a rejected task leaves it
    kept = parex("gc", "--keep", "1", cwd=workspace)
    assert f"kept run {old}: review branches kept" in kept.stdout and old in _runs(workspace), kept.stdout
    both = parex("gc", "--keep", "1", "--branches", cwd=workspace)
    assert both.returncode == 0 and f"deleted parex/{old}/b" in both.stdout and f"removed run {old}" in both.stdout
    assert old not in _runs(workspace) and len(_runs(workspace)) == 1


def test_keep_runs_out_of_range_is_a_plan_problem(workspace: Path):
    write_plan(workspace, '[run]\nkeep_runs = 0\n[[task]]\nid = "a"\nprompt = "echo a"\n')
    p = parex("run", cwd=workspace)
    assert p.returncode == 2 and "keep_runs" in p.stderr and "parex.toml:2:" in p.stderr, p.stderr


def test_log_of_a_running_task_prints_its_log_so_far_even_a_partial_line(workspace: Path):
    write_plan(workspace, '[[task]]\nid = "slow"\nprompt = "echo first; printf half; while [ ! -e go ]; do sleep 0.05; '
                          'done"\n')
    runner = subprocess.Popen([*PAREX, "run", "parex.toml"], cwd=workspace, stdout=subprocess.DEVNULL)
    try:
        logs = workspace / ".parex" / "runs"
        wait_for(lambda: logs.is_dir() and any(p.read_bytes() == b"first\nhalf" for p in logs.glob("*/slow.log")))
        p = parex("log", "slow", cwd=workspace)
        assert p.returncode == 0 and p.stdout == "first\nhalf", (p.stdout, p.stderr)
        assert "slow is running; follow it with: parex-lsp log -f" in p.stderr
    finally:
        (workspace / "go").touch()
        runner.wait(30)
