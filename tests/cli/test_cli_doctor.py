"""`parex-lsp doctor`: real agent executables (the fake CLI agent), the local OpenAI stand-in, real git and locks."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

from tests.cli.cli_helpers import parex, wait_for, write_plan
from tests.support.fake_openai import FakeOpenAI

FAKE_AGENT = Path(__file__).resolve().parents[1] / "support" / "fake_cli_agent.py"
GIT = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com"]
KEY = "sk-doctor-0123456789"


def _bin(tmp: Path) -> Path:
    """A PATH folder with `fake-claude` (the fake CLI agent) and `stuck-agent` (never answers)."""
    folder = tmp / "bin"
    folder.mkdir()
    for name, body in (("fake-claude", f'exec "{sys.executable}" "{FAKE_AGENT}" claude "$@"'),
                       ("stuck-agent", "sleep 30")):
        (folder / name).write_text(f"#!/bin/sh\n{body}\n")
        (folder / name).chmod(0o755)
    return folder


def _repo(ws: Path, plan: str) -> None:
    write_plan(ws, plan)
    (ws / "README").write_text("hello\n")
    subprocess.run([*GIT, "init", "-q", "-b", "main"], cwd=ws, check=True)
    subprocess.run([*GIT, "add", "."], cwd=ws, check=True)
    subprocess.run([*GIT, "commit", "-qm", "start"], cwd=ws, check=True)


def _plan(base_url: str, coder: str = '["fake-claude", "-p", "{prompt}"]') -> str:
    return textwrap.dedent(f"""
        [run]
        isolation = "worktree"
        [agents.coder]
        command = {coder}
        [agents.model]
        kind = "openai"
        base_url = "{base_url}"
        model = "fake-model"
        api_key_env = "DOCTOR_TEST_KEY"
        [[task]]
        id = "a"
        agent = "coder"
        prompt = "add a test"
        [[task]]
        id = "b"
        agent = "model"
        prompt = "explain"
        [[task]]
        id = "c"
        prompt = "echo c"
    """)


def _lines(out: str) -> dict[str, str]:
    """check name → its line (`ok    name: detail`)."""
    return {ln[6:].split(":", 1)[0]: ln for ln in out.splitlines() if ln[:4] in ("ok  ", "FAIL", "warn")}


def test_a_healthy_setup_passes_every_check_and_never_prints_the_key(tmp_path: Path, workspace: Path):
    env = {"PATH": f"{_bin(tmp_path)}{os.pathsep}{os.environ['PATH']}", "DOCTOR_TEST_KEY": KEY}
    with FakeOpenAI([]) as fake:
        _repo(workspace, _plan(fake.base_url))
        p = parex("doctor", cwd=workspace, env=env)
        assert p.returncode == 0, p.stdout + p.stderr
        lines = _lines(p.stdout)
        assert set(lines) == {"agent coder", "agent model key", "agent model endpoint", "agent shell",
                              "git repository", "git commit", "git branch", "git clean", "lock registry"}, p.stdout
        assert all(line.startswith("ok") for line in lines.values()), p.stdout
        assert "fake-claude (1.0.42 (fake claude))" in lines["agent coder"]
        assert "DOCTOR_TEST_KEY is set" in lines["agent model key"]
        assert f"GET {fake.base_url}/models answered 200" in lines["agent model endpoint"]
        assert "main" in lines["git branch"]
        assert KEY not in p.stdout + p.stderr
        assert fake.model_lists and fake.model_lists[-1]["authorization"] == f"Bearer {KEY}"


def test_every_problem_is_one_failing_line_saying_what_to_fix(tmp_path: Path, workspace: Path):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}/v1"
    _repo(workspace, _plan(dead, coder='["stuck-agent"]').replace('id = "c"\nprompt = "echo c"',
                                                                   'id = "c"\nagent = "gone"\nprompt = "x"')
          + '[agents.gone]\ncommand = ["no-such-agent-cli", "{prompt}"]\n')
    subprocess.run([*GIT, "checkout", "-q", "--detach"], cwd=workspace, check=True)
    (workspace / "README").write_text("changed\n")
    # an owner file left by a process that is gone, written by the real registry code
    subprocess.run([sys.executable, "-c", textwrap.dedent(f"""
        import os, time
        from pathlib import Path
        from parex_lsp.isolation.registry import HOST, LockOwner, Registry
        Registry(Path({str(workspace)!r})).publish(("r1", "t1"), LockOwner(os.getpid(), HOST, "r1", "t1", time.time()),
                                                   frozenset({{"src/a.py"}}))
    """)], check=True)
    env = {"PATH": f"{_bin(tmp_path)}{os.pathsep}{os.environ['PATH']}", "DOCTOR_TEST_KEY": ""}
    p = parex("doctor", "--timeout", "1", cwd=workspace, env=env)
    assert p.returncode == 1, p.stdout + p.stderr
    lines = _lines(p.stdout)
    fails = {name for name, line in lines.items() if line.startswith("FAIL")}
    assert fails == {"agent coder", "agent gone", "agent model key", "agent model endpoint", "git branch",
                     "git clean", "lock registry"}, p.stdout
    assert "did not answer `--version` within 1s" in lines["agent coder"]
    assert "`no-such-agent-cli` not found on PATH" in lines["agent gone"]
    assert "DOCTOR_TEST_KEY is not set" in lines["agent model key"]
    assert "is the server running" in lines["agent model endpoint"]
    assert "detached" in lines["git branch"] and "README" in lines["git clean"]
    assert "1 stale owner file(s)" in lines["lock registry"] and "task t1 of run r1" in lines["lock registry"]
    assert "7 problem(s) to fix" in p.stdout


def test_a_registry_lock_held_too_long_is_named(workspace: Path):
    (workspace / ".parex" / "locks").mkdir(parents=True)
    lock = workspace / ".parex" / "locks" / "registry.lock"
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time\nfrom filelock import FileLock\n"
                               f"with FileLock({str(lock)!r}):\n    print('held', flush=True)\n    time.sleep(60)\n"],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        p = parex("doctor", cwd=workspace)
        assert p.returncode == 1 and "FAIL  lock registry: " in p.stdout and "stayed locked for 1s" in p.stdout, p.stdout
    finally:
        holder.kill()
        holder.wait()
    wait_for(lambda: holder.poll() is not None)
    assert parex("doctor", cwd=workspace).returncode == 0  # not a git repository is only a warning without worktrees


def test_an_invalid_plan_is_exit_2_with_its_problems(workspace: Path):
    write_plan(workspace, '[run]\nkeep_runs = "many"\n[[task]]\nid = "a"\nprompt = "echo a"\n')
    p = parex("doctor", cwd=workspace)
    assert p.returncode == 2 and "parex.toml:2:" in p.stderr and "keep_runs" in p.stderr, p.stderr


def test_json_has_every_check_and_the_plans_problems(tmp_path: Path, workspace: Path):
    """What the editors read: the same checks as the lines, and an invalid plan's problems with their places."""
    env = {"PATH": f"{_bin(tmp_path)}{os.pathsep}{os.environ['PATH']}", "DOCTOR_TEST_KEY": ""}
    with FakeOpenAI([]) as fake:
        _repo(workspace, _plan(fake.base_url))
        p = parex("doctor", "--json", cwd=workspace, env=env)
    assert p.returncode == 1, p.stdout + p.stderr
    report = json.loads(p.stdout)
    checks = {c["name"]: c for c in report["checks"]}
    assert report["ok"] is False and report["problems"] == [] and report["workspace"] == str(workspace)
    assert checks["agent model key"]["ok"] is False and "DOCTOR_TEST_KEY is not set" in checks["agent model key"]["detail"]
    assert checks["git clean"] == {"name": "git clean", "ok": True, "required": True,  # the plan uses worktrees
                                   "detail": "no uncommitted changes to tracked files"}
    assert all(c["ok"] for name, c in checks.items() if name != "agent model key"), checks

    write_plan(workspace, '[run]\nkeep_runs = "many"\n[[task]]\nid = "a"\nprompt = "echo a"\n')
    p = parex("doctor", "--json", cwd=workspace)
    report = json.loads(p.stdout)
    assert p.returncode == 2 and report["ok"] is False and report["checks"] == []
    assert len(report["problems"]) == 1 and "parex.toml:2:" in report["problems"][0], report


def test_a_ray_plan_checks_ray_and_that_its_cluster_answers(workspace: Path):
    """executor = "ray": Ray installed (CI installs the extra) and a listener at ray_address; a dead port fails."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        up = f"127.0.0.1:{listener.getsockname()[1]}"
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            down = f"127.0.0.1:{s.getsockname()[1]}"  # bound, never listening: refused
            for address, ok in ((up, True), (down, False)):
                _repo(workspace, f'[run]\nexecutor = "ray"\nray_address = "{address}"\n'
                                 '[[task]]\nid = "a"\nprompt = "echo a"\n')
                report = json.loads(parex("doctor", "--json", "--timeout", "2", cwd=workspace).stdout)
                checks = {c["name"]: c for c in report["checks"]}
                assert checks["ray"]["ok"] and checks["ray"]["detail"].startswith("Ray 2."), checks
                assert checks["ray cluster"]["ok"] is ok and report["ok"] is ok, checks
                assert (f"{address} answers" if ok else f"nothing answers at {address}") in checks["ray cluster"]["detail"]
