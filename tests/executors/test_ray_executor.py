"""Attempts on a real Ray cluster (`[run] executor = "ray"`): two nodes on loopback, parex itself the driver.
The scheduler stays local; each attempt runs on a node in a worktree made from the run's bundle, streams its
output back, and returns its commits, which land like a local worktree task's."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import anyio
import pytest
import ray

from parex_lsp.contract import EventKind
from parex_lsp.engine import RunOptions
from parex_lsp.isolation.containment import tagged_processes
from tests.support.engine_helpers import Recorder, make_run, running, until
from tests.support.fake_openai import FakeOpenAI, rate_limited, text, tool_calls
from tests.support.processes import alive as _alive
from tests.support.ray_cluster import address, git, repository, session_logs, two_node_cluster

STEERED = """
    [agents.on_a]
    kind = "shell"
    resources = { node_a = 1 }

    [agents.on_b]
    kind = "shell"
    resources = { node_b = 1 }
"""


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory):
    with two_node_cluster(tmp_path_factory.mktemp("node-cache")) as c:
        yield c


def plan(cluster, body: str, run: str = "") -> str:
    return (f'[run]\nexecutor = "ray"\nray_address = "{address(cluster)}"\nretry_backoff = 0\nkill_grace = 1\n'
            f"{textwrap.dedent(run)}\n{textwrap.dedent(STEERED)}\n{textwrap.dedent(body)}")


async def run_plan(ws: Path, toml: str, options: RunOptions | None = None):
    run, rec = await make_run(ws, toml, options)
    return run, await run.execute(), rec


def nodes_of(ws: Path, run_id: str, task: str) -> list[str]:
    """The nodes the task's attempts ran on, from the banner parex writes into the task's log."""
    log = (ws / ".parex" / "runs" / run_id / f"{task}.log").read_text()
    return [line.split("(")[1].rstrip(")") for line in log.splitlines() if " on Ray node " in line]


def output_of(rec: Recorder, task: str) -> str:
    return "".join(e.data.text for e in rec.of(EventKind.OUTPUT) if e.task_id == task)


DAG = """
    [[task]]
    id = "schema"
    agent = "on_a"
    prompt = "echo 'CREATE TABLE users;' > schema.sql"

    [[task]]
    id = "docs"
    agent = "on_b"
    prompt = "mkdir -p docs && echo guide > docs/guide.md && rm old.txt"

    [[task]]
    id = "api"
    agent = "on_b"
    depends_on = ["schema"]
    prompt = "grep -q users schema.sql && echo routes > api.py"

    [[task]]
    id = "release"
    agent = "on_a"
    depends_on = ["api", "docs"]
    prompt = "cat schema.sql api.py docs/guide.md > release.txt"
"""


async def test_a_dag_over_two_nodes_lands_like_a_local_run(cluster, tmp_path: Path):
    files = {"old.txt": "gone soon\n", "README": "project\n"}
    remote_ws, local_ws = repository(tmp_path / "remote", files), repository(tmp_path / "local", files)
    toml = plan(cluster, DAG)
    run, result, _ = await run_plan(remote_ws, toml)
    _, local, _ = await run_plan(local_ws, toml, RunOptions(executor="local"))

    assert result.status == local.status == "succeeded", (result.to_wire(), local.to_wire())
    # the same merged tree, and the same tasks merged, as a run on this machine
    assert git(remote_ws, "rev-parse", "HEAD^{tree}") == git(local_ws, "rev-parse", "HEAD^{tree}")
    merged = {ws: sorted(git(ws, "log", "--merges", "--format=%s").replace(run_id, "R").splitlines())
              for ws, run_id in ((remote_ws, run.run_id), (local_ws, local.run_id))}
    assert merged[remote_ws] == merged[local_ws] and len(merged[remote_ws]) == 4
    assert (remote_ws / "release.txt").read_text() == "CREATE TABLE users;\nroutes\nguide\n"
    assert not git(remote_ws, "branch", "--list", "parex/*")  # every branch merged and deleted, as locally
    # steered over both nodes; each node cloned the run's history once, whatever number of tasks it ran
    on = {t: nodes_of(remote_ws, run.run_id, t) for t in ("schema", "docs", "api", "release")}
    assert on["schema"] == on["release"] and on["docs"] == on["api"] and on["schema"] != on["docs"], on
    logs = [(remote_ws / ".parex" / "runs" / run.run_id / f"{t}.log").read_text() for t in on]
    assert sum(log.count("this node cloned the run's repository") for log in logs) == 2
    # the dependents started from a base their dependencies' merges had moved: a thin bundle brought those
    moved = {t for t, log in zip(on, logs, strict=True) if "the base moved since the run began" in log}
    assert moved == {"api", "release"}, moved
    # when the run ended, every node it used removed its copy of the repository
    assert not (Path(os.environ["PAREX_RAY_CACHE"]) / run.run_id).exists()


async def test_output_arrives_while_the_remote_task_still_runs(cluster, tmp_path: Path):
    ws = repository(tmp_path / "ws", {"README": "x\n"})
    gate = tmp_path / "gate"
    run, rec = await make_run(ws, plan(cluster, f"""
        [[task]]
        id = "talk"
        agent = "on_b"
        prompt = "echo first line; while [ ! -e {gate} ]; do sleep 0.05; done; echo second line"
    """))
    seen_running = False
    async with running(run) as done:
        await until(lambda: "first line" in output_of(rec, "talk"))
        seen_running = not rec.of(EventKind.SUCCEEDED) and run.tasks["talk"].status == "running"
        gate.touch()
    assert seen_running and done[0].status == "succeeded"
    assert output_of(rec, "talk").index("first line") < output_of(rec, "talk").index("second line")


async def _gone(*pids: int, within: float = 10.0) -> bool:
    deadline = time.monotonic() + within
    while any(_alive(p) for p in pids) and time.monotonic() < deadline:
        await anyio.sleep(0.05)
    for p in pids:
        if _alive(p):
            os.kill(p, signal.SIGKILL)
            return False
    return True


async def test_cancel_ends_a_remote_grandchild_in_a_session_of_its_own(cluster, tmp_path: Path):
    ws = repository(tmp_path / "ws", {"README": "x\n"})
    pidfile = tmp_path / "daemon.pid"
    run, rec = await make_run(ws, plan(cluster, f"""
        [[task]]
        id = "daemon"
        agent = "on_b"
        prompt = "(setsid sleep 300 & echo $! > {pidfile}.tmp; mv {pidfile}.tmp {pidfile}); sleep 300"
    """))
    async with running(run) as done:
        await until(pidfile.exists)
        daemon = int(pidfile.read_text())
        assert _alive(daemon)
        assert nodes_of(ws, run.run_id, "daemon")  # it ran on a node
        run.cancel("daemon", "stopped by the test")
    # the run ended (the cancel did not wait for the 300 s agent), the task cancelled, its tree gone
    assert done[0].tasks[0].status == "cancelled"
    assert await _gone(daemon), "the remote agent's setsid grandchild outlived the cancel"


async def test_a_killed_worker_leaves_no_agent_behind(cluster, tmp_path: Path):
    """A worker killed outright (as `ray.cancel(force=True)` does) runs no cleanup: the node's watchdog ends
    the agent, which leads a session of its own, and its setsid grandchild."""
    ws = repository(tmp_path / "ws", {"README": "x\n"})
    pids = tmp_path / "pids"
    run, rec = await make_run(ws, plan(cluster, f"""
        [[task]]
        id = "orphaned"
        agent = "on_b"
        retries = 0
        prompt = "(setsid sleep 300 & echo $PPID $$ $! > {pids}.tmp; mv {pids}.tmp {pids}); sleep 300"
    """))
    async with running(run) as done:
        await until(pids.exists)
        worker, agent, daemon = (int(p) for p in pids.read_text().split())
        os.kill(worker, signal.SIGKILL)
    result = done[0].tasks[0]
    assert result.status == "failed" and "WorkerCrashedError" in (result.error or ""), result
    assert await _gone(agent, daemon, within=5), "the agent outlived its killed worker"


async def test_a_node_lost_mid_task_is_retried_on_another_node(cluster, tmp_path: Path):
    ws = repository(tmp_path / "ws", {"README": "x\n"})
    doomed = cluster.add_node(num_cpus=1, node_ip_address="127.0.0.1", resources={"spare": 1})
    cluster.wait_for_nodes()
    run, rec = await make_run(ws, plan(cluster, f"""
        [agents.spare]
        kind = "shell"
        resources = {{ spare = 1 }}

        [[task]]
        id = "long"
        agent = "spare"
        prompt = "echo working; if [ $PAREX_ATTEMPT = 1 ]; then echo $$ > {tmp_path}/first.pid; sleep 300; fi; echo finished > long.txt"
    """))
    replacement = None
    async with running(run) as done:
        await until(lambda: (tmp_path / "first.pid").exists())
        first = int((tmp_path / "first.pid").read_text())
        assert nodes_of(ws, run.run_id, "long") == [doomed.node_id[:12]]
        replacement = cluster.add_node(num_cpus=1, node_ip_address="127.0.0.1", resources={"spare": 1})
        cluster.remove_node(doomed, allow_graceful=False)
    try:
        result = done[0].tasks[0]
        assert result.status == "succeeded" and result.attempts == 2, result
        retry = rec.of(EventKind.RETRYING)[0].data
        assert retry.code == "internal-error" and doomed.node_id[:12] in retry.reason, retry
        assert nodes_of(ws, run.run_id, "long") == [doomed.node_id[:12], replacement.node_id[:12]]
        assert (ws / "long.txt").read_text() == "finished\n"
        assert not _alive(first)  # the first attempt's agent did not outlive its node
    finally:
        cluster.remove_node(replacement)


async def test_a_conflict_between_remote_tasks_is_a_merge_conflict_with_the_branch_kept(cluster, tmp_path: Path):
    ws = repository(tmp_path / "ws", {"shared.txt": "one\ntwo\nthree\n"})
    run, result, _ = await run_plan(ws, plan(cluster, """
        [[task]]
        id = "edit-a"
        agent = "on_a"
        prompt = "sed -i 's/two/two (a)/' shared.txt"

        [[task]]
        id = "edit-b"
        agent = "on_b"
        prompt = "sed -i 's/two/two (b)/' shared.txt"
    """))
    by_id = {t.id: t for t in result.tasks}
    assert sorted(t.status for t in result.tasks) == ["failed", "succeeded"], result.to_wire()
    loser = by_id["edit-a"] if by_id["edit-a"].status == "failed" else by_id["edit-b"]
    branch = f"parex/{run.run_id}/{loser.id}"
    assert loser.code == "merge-conflict" and "shared.txt" in (loser.error or "") and branch in (loser.error or "")
    assert git(ws, "branch", "--list", branch).strip().endswith(branch)
    assert f"two ({loser.id[-1]})" in git(ws, "show", f"{branch}:shared.txt")  # the remote work is on it
    assert git(ws, "status", "--porcelain", "--untracked-files=no") == ""


async def test_env_passthrough_reaches_the_agent_and_no_log(cluster, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch):
    secret = "sk-passthrough-7f3a9c1e5d"
    monkeypatch.setenv("PAREX_TEST_TOKEN", secret)
    monkeypatch.setenv("PAREX_TEST_UNLISTED", "not-passed-through-42")
    ws = repository(tmp_path / "ws", {"README": "x\n"})
    run, result, _ = await run_plan(ws, plan(cluster, """
        [[task]]
        id = "use-key"
        agent = "on_b"
        prompt = "printf %s \\"$PAREX_TEST_TOKEN\\" | sha256sum > proof.txt; echo \\"unlisted=[$PAREX_TEST_UNLISTED]\\"; echo \\"key is $PAREX_TEST_TOKEN\\""
    """, run='env_passthrough = ["PAREX_TEST_TOKEN"]'))
    assert result.status == "succeeded", result.to_wire()
    import hashlib
    assert (ws / "proof.txt").read_text().split()[0] == hashlib.sha256(secret.encode()).hexdigest()
    log = (ws / ".parex" / "runs" / run.run_id / "use-key.log").read_text()
    assert "key is ***" in log and "unlisted=[]" in log, log
    leaks = [p for root in (ws / ".parex", session_logs(cluster)) for p in root.rglob("*")
             if p.is_file() and secret.encode() in p.read_bytes()]
    assert not leaks, leaks


async def test_copy_files_reach_the_node_before_setup_and_never_a_commit(cluster, tmp_path: Path):
    """`.env` (untracked) is copied into the worktree on the other node before `[run] setup`; a copy_files match
    that is checked out there (a tracked file, edited in the workspace) is not copied over; the task's edit of
    `.env` stays out of its commit, the merge and every log."""
    secret = "copied-secret-5e1b7c20"
    ws = repository(tmp_path / "ws", {"README": "x\n", "config.toml": "committed\n"})
    (ws / ".env").write_text(f"TOKEN={secret}\n")
    (ws / "config.toml").write_text("edited, not committed\n")
    run, result, _ = await run_plan(ws, plan(cluster, """
        [[task]]
        id = "read-env"
        agent = "on_b"
        prompt = "sha256sum .env > proof.txt; cat config.toml >> proof.txt; echo changed >> .env"
    """, run="""
        copy_files = [".env", "config.toml"]
        allow_dirty = true
        setup = "test -f .env && echo setup sees the copied file"
    """))
    assert result.status == "succeeded", result.to_wire()
    assert nodes_of(ws, run.run_id, "read-env") == [cluster.list_all_nodes()[1].node_id[:12]]
    import hashlib
    digest = hashlib.sha256(f"TOKEN={secret}\n".encode()).hexdigest()
    assert (ws / "proof.txt").read_text().splitlines() == [f"{digest}  .env", "committed"]
    log = (ws / ".parex" / "runs" / run.run_id / "read-env.log").read_text()
    assert "setup sees the copied file" in log and "copy_files: .env\n" in log, log
    assert "this node received the run's copy_files" in log
    # neither the task's commit (merged, so in the history) nor anything else ever held it
    assert ".env" not in git(ws, "log", "--all", "--format=", "--name-only").split()
    assert secret not in git(ws, "log", "--all", "-p")
    assert git(ws, "status", "--porcelain", "--", ".env") == "?? .env\n"
    assert (ws / ".env").read_text() == f"TOKEN={secret}\n"  # the node's edit stayed there
    leaks = [p for root in (ws / ".parex" / "runs", session_logs(cluster)) for p in root.rglob("*")
             if p.is_file() and secret.encode() in p.read_bytes()]
    assert not leaks, leaks
    assert not (Path(os.environ["PAREX_RAY_CACHE"]) / run.run_id).exists()


async def test_copy_files_of_a_workspace_in_a_subfolder_land_in_that_subfolder_on_the_node(cluster, tmp_path: Path):
    repo = repository(tmp_path / "mono", {"svc/app.py": "a = 1\n", "lib/util.py": "u = 1\n"})
    ws = repo / "svc"
    (ws / "conf").mkdir()
    (ws / "conf" / "local.toml").write_text("debug = true\n")
    run, result, _ = await run_plan(ws, plan(cluster, """
        [[task]]
        id = "read"
        agent = "on_a"
        prompt = "cat conf/local.toml > seen.txt; test ! -e ../conf; echo edited >> conf/local.toml"
    """, run='copy_files = ["conf"]'))
    assert result.status == "succeeded", result.to_wire()
    assert (ws / "seen.txt").read_text() == "debug = true\n"
    assert "svc/seen.txt" in git(repo, "ls-files").split()
    assert "conf/local.toml" not in git(repo, "log", "--all", "--format=", "--name-only")
    assert (ws / "conf" / "local.toml").read_text() == "debug = true\n"


async def test_a_model_agent_runs_remotely_with_its_key_passed_through(cluster, tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch):
    """The node runs the same model agent: its requests carry the key named in env_passthrough, its file tool
    writes in the node's worktree (whose commit lands here), and its usage comes back to the run's spend."""
    monkeypatch.setenv("FAKE_MODEL_KEY", "fk-remote-model-key-91b2")
    ws = repository(tmp_path / "ws", {"README": "x\n"})
    script = [tool_calls(("write_file", {"path": "notes/plan.md", "content": "step one\n"})), text("wrote it")]
    with FakeOpenAI(script) as srv:
        run, result, rec = await run_plan(ws, plan(cluster, f"""
            [agents.model]
            kind = "openai"
            base_url = "{srv.base_url}"
            model = "fake"
            api_key_env = "FAKE_MODEL_KEY"
            prices = {{ input = 1.0, output = 2.0 }}
            resources = {{ node_b = 1 }}

            [[task]]
            id = "write"
            agent = "model"
            prompt = "write the plan"
        """, run='env_passthrough = ["FAKE_MODEL_KEY"]'))
    t = result.tasks[0]
    assert (t.status, t.answer) == ("succeeded", "wrote it"), result.to_wire()
    assert all(r.headers.get("authorization") == "Bearer fk-remote-model-key-91b2" for r in srv.received)
    assert (ws / "notes" / "plan.md").read_text() == "step one\n"
    assert result.usage["promptTokens"] == 20 and result.usage["completionTokens"] == 10
    assert rec.of(EventKind.USAGE) and nodes_of(ws, run.run_id, "write")


async def test_a_rate_limited_model_request_on_a_node_waits_and_goes_again(cluster, tmp_path: Path, monkeypatch):
    """A 429 mid-conversation on a node: the node waits the Retry-After and sends the request again, keeping the
    conversation and spending none of the task's retries (it has none)."""
    monkeypatch.setenv("FAKE_MODEL_KEY", "fk-paced")
    ws = repository(tmp_path / "ws", {"README": "x\n"})
    script = [tool_calls(("write_file", {"path": "a.txt", "content": "a\n"})), rate_limited(retry_after=1),
              text("done")]
    with FakeOpenAI(script) as srv:
        run, result, _ = await run_plan(ws, plan(cluster, f"""
            [agents.model]
            kind = "openai"
            base_url = "{srv.base_url}"
            model = "fake"
            api_key_env = "FAKE_MODEL_KEY"
            resources = {{ node_b = 1 }}

            [[task]]
            id = "paced"
            agent = "model"
            retries = 0
            prompt = "write a"
        """, run='env_passthrough = ["FAKE_MODEL_KEY"]'))
    t = result.tasks[0]
    assert (t.status, t.attempts, t.answer) == ("succeeded", 1, "done"), result.to_wire()
    assert len(srv.received) == 3  # the refused request went again, with the conversation so far
    assert srv.received[2].assistant_turns == srv.received[1].assistant_turns == 1
    log = (ws / ".parex" / "runs" / run.run_id / "paced.log").read_text()
    assert "sending the request again in 1s" in log, log
    assert (ws / "a.txt").read_text() == "a\n"


async def test_a_command_agent_with_setup_runs_on_its_node(cluster, tmp_path: Path):
    """A command template agent, after `[run] setup` in the node's fresh checkout; retry_on is matched on
    the output as it comes back, so a matching failure is retried."""
    ws = repository(tmp_path / "ws", {"tool.sh": """
        #!/bin/sh
        test -f .ready || { echo "setup did not run"; exit 3; }
        if [ "$PAREX_ATTEMPT" = 1 ]; then echo "server overloaded"; exit 1; fi
        echo "$1" > answer.txt
    """})
    (ws / "tool.sh").chmod(0o755)
    git(ws, "commit", "-qam", "executable")
    run, result, rec = await run_plan(ws, plan(cluster, """
        [agents.tool]
        command = ["./tool.sh", "{prompt}"]
        retry_on = ["overloaded"]
        resources = { node_a = 1, CPU = 1, memory = "1MB" }

        [[task]]
        id = "cmd"
        agent = "tool"
        prompt = "forty-two"
    """, run='setup = "touch .ready && echo setup done"'))
    t = result.tasks[0]
    assert (t.status, t.attempts) == ("succeeded", 2), result.to_wire()
    assert "overloaded" in rec.of(EventKind.RETRYING)[0].data.reason
    assert (ws / "answer.txt").read_text() == "forty-two\n"
    log = (ws / ".parex" / "runs" / run.run_id / "cmd.log").read_text()
    assert log.splitlines().count("setup done") == 2  # each attempt's checkout is fresh


async def test_runs_at_once_in_one_process_share_its_connection(cluster, tmp_path: Path):
    """As in the language server: two runs on the cluster at once; the one that ends first leaves the
    connection to the other, and the last one closes it."""
    gate = tmp_path / "gate"
    first = repository(tmp_path / "first", {"README": "x\n"})
    second = repository(tmp_path / "second", {"README": "x\n"})
    slow, _ = await make_run(first, plan(cluster, f"""
        [[task]]
        id = "slow"
        agent = "on_a"
        prompt = "while [ ! -e {gate} ]; do sleep 0.05; done; echo slow > slow.txt"
    """))
    quick, _ = await make_run(second, plan(cluster, """
        [[task]]
        id = "quick"
        agent = "on_b"
        prompt = "echo quick > quick.txt"
    """))
    results: dict[str, object] = {}
    async with anyio.create_task_group() as tg:
        async def go(name: str, run) -> None:
            results[name] = await run.execute()
        tg.start_soon(go, "slow", slow)
        tg.start_soon(go, "quick", quick)
        await until(lambda: "quick" in results)
        assert ray.is_initialized()  # the slow run still uses it
        gate.touch()
    assert results["slow"].status == results["quick"].status == "succeeded"
    assert (first / "slow.txt").exists() and (second / "quick.txt").exists()
    assert not ray.is_initialized()


async def test_a_driver_that_dies_leaves_nothing_running(cluster, tmp_path: Path):
    """parex killed outright mid-task: its Ray job ends, so does the worker, which kills its direct children as
    it exits; the node's watchdog ends the rest: the agent's own child and the setsid grandchild's child."""
    ws = repository(tmp_path / "ws", {"README": "x\n"})
    (ws / "parex.toml").write_text(plan(cluster, f"""
        [[task]]
        id = "stranded"
        agent = "on_b"
        prompt = "echo $PAREX_RUN_ID > {tmp_path}/run.id; (setsid sh -c 'sleep 300; true' &); echo $$ > {tmp_path}/agent.tmp; mv {tmp_path}/agent.tmp {tmp_path}/agent.pid; sleep 300; true"
    """))
    parex = subprocess.Popen([sys.executable, "-m", "parex_lsp", "run", "parex.toml", "--quiet"], cwd=ws,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while not (tmp_path / "agent.pid").exists() and time.monotonic() < deadline and parex.poll() is None:
            await anyio.sleep(0.05)
        run_id = (tmp_path / "run.id").read_text().strip()
        # the agent and its sleep, the setsid grandchild and its sleep (which may still be starting)
        await until(lambda: len(tagged_processes({run_id})) >= 4, within=30)
        left = tagged_processes({run_id})
        assert len(left) == 4, left
        parex.kill()
        parex.wait()
        # Ray notices the dead driver, ends its job and kills the worker: slow on a loaded 2-core machine
        assert await _gone(*left, within=90), "the remote agent outlived its driver"
    finally:
        if parex.poll() is None:
            parex.kill()
            parex.wait()
    await _a_later_run_removes_what_the_dead_driver_left(cluster, tmp_path, run_id)


async def _a_later_run_removes_what_the_dead_driver_left(cluster, tmp_path: Path, dead: str) -> None:
    """The dead driver never told the node its run was over, so its repository is still in the node's cache; the
    next run to start on this machine removes it. A run starting while that one still runs leaves its folder be:
    its driver's Ray job is alive."""
    cache = Path(os.environ["PAREX_RAY_CACHE"])
    assert any((cache / dead).iterdir())
    gate = tmp_path / "gate"
    live_ws = repository(tmp_path / "live", {"README": "x\n"})
    (live_ws / "parex.toml").write_text(plan(cluster, f"""
        [[task]]
        id = "waiting"
        agent = "on_b"
        prompt = "echo $PAREX_RUN_ID > {tmp_path}/live.tmp; mv {tmp_path}/live.tmp {tmp_path}/live.id; while [ ! -e {gate} ]; do sleep 0.05; done; echo done > waited.txt"
    """))
    live = subprocess.Popen([sys.executable, "-m", "parex_lsp", "run", "parex.toml", "--quiet"], cwd=live_ws,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        await until(lambda: (tmp_path / "live.id").exists() or live.poll() is not None, within=60)
        live_id = (tmp_path / "live.id").read_text().strip()
        log = (live_ws / ".parex" / "runs" / live_id / "waiting.log").read_text()
        assert f"this node removed the folders of runs whose driver died: {dead}" in log, log
        assert not (cache / dead).exists()
        assert (cache / live_id).is_dir()
        later_ws = repository(tmp_path / "later", {"README": "x\n"})
        run, result, _ = await run_plan(later_ws, plan(cluster, """
            [[task]]
            id = "later"
            agent = "on_a"
            prompt = "echo later > later.txt"
        """))
        assert result.status == "succeeded", result.to_wire()
        assert "removed the folders" not in (later_ws / ".parex" / "runs" / run.run_id / "later.log").read_text()
        assert (cache / live_id).is_dir()
        gate.touch()
        assert live.wait(timeout=60) == 0
        assert (live_ws / "waited.txt").read_text() == "done\n"  # its repository and worktree were there to the end
        assert not (cache / live_id).exists()  # and went when it ended
    finally:
        gate.touch()
        if live.poll() is None:
            live.kill()
            live.wait()
