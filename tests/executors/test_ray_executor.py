"""Attempts on a real Ray cluster (`[run] executor = "ray"`): two nodes on loopback, parex itself the driver.
The scheduler stays local; each attempt runs on a node in a worktree made from the run's bundle, streams its
output back, and returns its commits, which land like a local worktree task's."""

from __future__ import annotations

import os
import signal
import textwrap
import time
from pathlib import Path

import anyio
import pytest

from tests.support.ray_cluster import address, git, repository, session_logs, two_node_cluster

ray = pytest.importorskip("ray", reason="the ray extra is part of the test install (.ci/run)")

from parex_lsp.contract import EventKind  # noqa: E402
from parex_lsp.engine import RunOptions  # noqa: E402
from tests.support.engine_helpers import Recorder, make_run  # noqa: E402

pytestmark = pytest.mark.anyio
STEERED = """
    [agents.on_a]
    kind = "shell"
    resources = { node_a = 1 }

    [agents.on_b]
    kind = "shell"
    resources = { node_b = 1 }
"""


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


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
    clones = [p for p in (Path(os.environ["PAREX_RAY_CACHE"]) / run.run_id).iterdir() if p.is_dir()]
    assert len(clones) == 2 and all((c / "repo.git" / "parex-ready").exists() for c in clones)
    assert not list(clones[0].glob("trees/*/*")), "a node's attempt worktrees are removed"


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
    async with anyio.create_task_group() as tg:
        done: list = []

        async def go() -> None:
            done.append(await run.execute())
        tg.start_soon(go)
        with anyio.fail_after(60):
            while "first line" not in output_of(rec, "talk"):
                await anyio.sleep(0.05)
        seen_running = not rec.of(EventKind.SUCCEEDED) and run.tasks["talk"].status == "running"
        gate.touch()
    assert seen_running and done[0].status == "succeeded"
    assert output_of(rec, "talk").index("first line") < output_of(rec, "talk").index("second line")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat[stat.rfind(")") + 2] != "Z"


async def test_cancel_ends_a_remote_grandchild_in_a_session_of_its_own(cluster, tmp_path: Path):
    ws = repository(tmp_path / "ws", {"README": "x\n"})
    pidfile = tmp_path / "daemon.pid"
    run, rec = await make_run(ws, plan(cluster, f"""
        [[task]]
        id = "daemon"
        agent = "on_b"
        prompt = "(setsid sleep 300 & echo $! > {pidfile}.tmp; mv {pidfile}.tmp {pidfile}); sleep 300"
    """))
    async with anyio.create_task_group() as tg:
        done: list = []

        async def go() -> None:
            done.append(await run.execute())
        tg.start_soon(go)
        with anyio.fail_after(60):
            while not pidfile.exists():
                await anyio.sleep(0.05)
        daemon = int(pidfile.read_text())
        assert _alive(daemon)
        run.cancel("daemon", "stopped by the test")
    assert done[0].tasks[0].status == "cancelled"
    deadline = time.monotonic() + 10
    while _alive(daemon) and time.monotonic() < deadline:
        await anyio.sleep(0.05)
    if _alive(daemon):
        os.kill(daemon, signal.SIGKILL)
        pytest.fail("the remote agent's setsid grandchild outlived the cancel")


async def test_a_node_lost_mid_task_is_retried_on_another_node(cluster, tmp_path: Path):
    ws = repository(tmp_path / "ws", {"README": "x\n"})
    doomed = cluster.add_node(num_cpus=1, node_ip_address="127.0.0.1", resources={"spare": 1})
    cluster.wait_for_nodes()
    gate = tmp_path / "gate"
    run, rec = await make_run(ws, plan(cluster, f"""
        [agents.spare]
        kind = "shell"
        resources = {{ spare = 1 }}

        [[task]]
        id = "long"
        agent = "spare"
        prompt = "echo working; while [ ! -e {gate} ]; do sleep 0.05; done; echo finished > long.txt"
    """))
    replacement = None
    async with anyio.create_task_group() as tg:
        done: list = []

        async def go() -> None:
            done.append(await run.execute())
        tg.start_soon(go)
        with anyio.fail_after(60):
            while "working" not in output_of(rec, "long"):
                await anyio.sleep(0.05)
        assert nodes_of(ws, run.run_id, "long") == [doomed.node_id[:12]]
        replacement = cluster.add_node(num_cpus=1, node_ip_address="127.0.0.1", resources={"spare": 1})
        cluster.remove_node(doomed, allow_graceful=False)
        gate.touch()
    try:
        result = done[0].tasks[0]
        assert result.status == "succeeded" and result.attempts == 2, result
        retry = rec.of(EventKind.RETRYING)[0].data
        assert retry.code == "internal-error" and doomed.node_id[:12] in retry.reason, retry
        assert nodes_of(ws, run.run_id, "long") == [doomed.node_id[:12], replacement.node_id[:12]]
        assert (ws / "long.txt").read_text() == "finished\n"
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
