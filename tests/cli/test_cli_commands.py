"""Everyday commands on runs: `log` (and `-f`), `show`, `cancel` from another terminal, log paths in --json."""

from __future__ import annotations

import json
import signal
import subprocess
from pathlib import Path

from tests.cli.cli_helpers import PAREX, ended, kill_if_alive, parex, read_pid, wait_for, write_plan


def _last_json(p: subprocess.CompletedProcess) -> dict:
    return json.loads(p.stdout.strip().splitlines()[-1])


def test_log_prints_an_ended_tasks_output_as_written(workspace: Path):
    write_plan(workspace, '[[task]]\nid = "a"\nprompt = "echo \'one [red]\'; echo two >&2; exit 1"\n'
                          '[[task]]\nid = "quiet"\nprompt = "true"\n')
    run_id = _last_json(parex("run", "parex.toml", "--json", cwd=workspace))["runId"]
    for refs in (["a"], ["last", "a"], [run_id, "a"]):
        p = parex("log", *refs, cwd=workspace)
        assert p.returncode == 0, p.stderr
        assert p.stdout.splitlines()[:2] == ["one [red]", "two"], p.stdout
        assert "a: failed" in p.stderr
    quiet = parex("log", "quiet", cwd=workspace)
    assert quiet.returncode == 0 and quiet.stdout == "" and "printed nothing" in quiet.stderr
    unknown = parex("log", "ghost", cwd=workspace)
    assert unknown.returncode == 2 and "no task ghost" in unknown.stderr and "a, quiet" in unknown.stderr


def test_log_follow_prints_a_running_tasks_lines_until_it_ends(workspace: Path):
    write_plan(workspace, '[[task]]\nid = "slow"\nprompt = "echo first; while [ ! -e go ]; do sleep 0.05; done; '
                          'echo second"\n')
    runner = subprocess.Popen([*PAREX, "run", "parex.toml"], cwd=workspace, stdout=subprocess.DEVNULL)
    try:
        wait_for(lambda: (workspace / ".parex" / "runs").is_dir() and b"first\n" in b"".join(
            p.read_bytes() for p in (workspace / ".parex" / "runs").glob("*/slow.log")))
        follow = subprocess.Popen([*PAREX, "log", "-f", "slow"], cwd=workspace, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True)
        assert follow.stdout is not None
        assert follow.stdout.readline() == "first\n"  # shown while the task still runs
        assert follow.poll() is None
        (workspace / "go").touch()
        out, err = follow.communicate(timeout=30)
        assert follow.returncode == 0 and out == "second\n" and "slow: succeeded" in err, (out, err)
    finally:
        (workspace / "go").touch()
        runner.wait(30)


def test_show_gives_the_result_as_the_run_ended(workspace: Path):
    write_plan(workspace, """
        [[task]]
        id = "ok"
        prompt = "echo fine"
        [[task]]
        id = "bad"
        prompt = "echo 'err [bold]here'; exit 2"
    """)
    ran = _last_json(parex("run", "parex.toml", "--json", cwd=workspace))
    shown = parex("show", "--json", cwd=workspace)
    assert shown.returncode == 0, shown.stderr
    result = json.loads(shown.stdout)
    assert {k: v for k, v in result.items() if k not in ("plan", "workspace")} == ran
    for t in result["tasks"]:
        assert t["logPath"] == str(workspace / ".parex" / "runs" / ran["runId"] / f"{t['id']}.log")
    text = parex("show", ran["runId"], cwd=workspace)
    assert "bad failed (exit-code): exited with code 2" in text.stdout and "err [bold]here" in text.stdout
    assert parex("show", "nope", cwd=workspace).returncode == 2


def test_run_json_gives_every_tasks_log_path_reused_ones_too(workspace: Path):
    write_plan(workspace, '[[task]]\nid = "a"\nprompt = "echo a"\n[[task]]\nid = "b"\nprompt = "test -e fixed"\n')
    first = _last_json(parex("run", "parex.toml", "--json", cwd=workspace))
    (workspace / "fixed").touch()
    second = _last_json(parex("run", "parex.toml", "--resume", "last", "--json", cwd=workspace))
    paths = {t["id"]: t["logPath"] for t in second["tasks"]}
    runs = workspace / ".parex" / "runs"
    assert paths == {"a": str(runs / first["runId"] / "a.log"), "b": str(runs / second["runId"] / "b.log")}
    assert Path(paths["a"]).read_text() == "a\n"


def test_cancel_stops_a_run_in_another_terminal_cleanly(workspace: Path):
    write_plan(workspace, '[[task]]\nid = "long"\nprompt = "echo $$ > long.pid; exec sleep 60"\nfiles = ["x"]\n')
    runner = subprocess.Popen([*PAREX, "run", "parex.toml"], cwd=workspace, stdout=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: read_pid(workspace / "long.pid"))
        p = parex("cancel", cwd=workspace)
        assert p.returncode == 0, p.stdout + p.stderr
        assert "cancelled" in p.stdout
        out, _ = runner.communicate(timeout=30)
        assert runner.returncode == 143, out
        assert "stopping 1 task" in out
    finally:
        kill_if_alive(read_pid(workspace / "long.pid"))
    assert ended(read_pid(workspace / "long.pid"))
    assert not list((workspace / ".parex" / "locks").glob("*.json"))  # no lock owner is left (lock files stay, unlocked)
    again = parex("cancel", cwd=workspace)
    assert again.returncode == 2 and "not running" in again.stderr


def test_cancel_one_task_leaves_the_others_running(workspace: Path):
    write_plan(workspace, """
        [run]
        max_concurrency = 2
        [[task]]
        id = "stuck"
        prompt = "echo $$ > stuck.pid; exec sleep 60"
        [[task]]
        id = "work"
        prompt = "while [ ! -e go ]; do sleep 0.05; done; echo done"
    """)
    runner = subprocess.Popen([*PAREX, "run", "parex.toml", "--json"], cwd=workspace, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: read_pid(workspace / "stuck.pid"))
        p = parex("cancel", "last", "stuck", cwd=workspace)
        assert p.returncode == 0, p.stdout + p.stderr
        assert "stuck: cancelled" in p.stdout
        assert ended(read_pid(workspace / "stuck.pid"))
        assert runner.poll() is None  # the rest of the run goes on
        (workspace / "go").touch()
        out, err = runner.communicate(timeout=30)
    finally:
        (workspace / "go").touch()
        kill_if_alive(read_pid(workspace / "stuck.pid"))
        if runner.poll() is None:
            runner.send_signal(signal.SIGINT)
    tasks = {t["id"]: t for t in json.loads(out.splitlines()[-1])["tasks"]}
    assert tasks["work"]["status"] == "succeeded"
    assert tasks["stuck"]["status"] == "cancelled" and "parex-lsp cancel" in tasks["stuck"]["error"]
