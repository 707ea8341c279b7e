"""What runs on a cluster node for one attempt: the run's repository (cloned once per run and node from the
run's bundle, under a node-local cache guarded by a file lock), a worktree at the attempt's start commit,
`[run] setup` then the agent (the same agents code as a local run), its work committed with parex's identity,
and the commits `start..HEAD` sent back as a bundle.

`stream_attempt` is the Ray task (a streaming generator): it yields the node it runs on, then the agent's
output and events while it runs, then `("outcome", Outcome, (head, bundle) | None)`. A cancel (`ray.cancel`,
a KeyboardInterrupt here) cancels the attempt, whose process runner ends the agent's whole tree."""

from __future__ import annotations

import os
import queue
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anyio
import ray
from anyio.from_thread import start_blocking_portal
from filelock import FileLock

from parex_lsp.agents import agent_for
from parex_lsp.agents.base import SETUP_FAILED, AgentContext, DirectGate, Outcome
from parex_lsp.agents.command import SHELL
from parex_lsp.agents.process import run_process
from parex_lsp.contract import EventKind, Payload
from parex_lsp.executors.base import Attempt
from parex_lsp.executors.ray import bundle, watchdog

CACHE_VAR = "PAREX_RAY_CACHE"  # where a node keeps the runs' repositories (default: <tmp>/parex-ray)
READY = "parex-ready"  # written once the run's bundle is in the node's repository
POLL = 0.05  # seconds between looks for the attempt's next item

Item = tuple[Any, ...]
Send = Callable[[Item], None]


def cache_root() -> Path:
    return Path(os.environ.get(CACHE_VAR) or Path(tempfile.gettempdir(), "parex-ray"))


class NodeRepo:
    """One run's repository on this node, shared by the run's attempts here; its worktrees are theirs."""

    def __init__(self, run_id: str, node_id: str):
        self.root = cache_root() / run_id / node_id[:16]
        self.git_dir = self.root / "repo.git"
        self.lock = FileLock(str(self.root) + ".lock")  # other workers on this node, the same run

    def ensure(self, run_bundle: Callable[[], bytes]) -> int | None:
        """Clone the run's history from its bundle, once (`run_bundle` is fetched only then): its size in
        bytes when this call cloned it, None when it was there."""
        self.root.parent.mkdir(parents=True, exist_ok=True)
        with self.lock:
            if (self.git_dir / READY).exists():
                return None
            shutil.rmtree(self.git_dir, ignore_errors=True)  # a clone cut short by a dead worker
            self.git_dir.mkdir(parents=True)
            bundle.git_in(self.git_dir).init("--quiet", "--bare")
            data = run_bundle()
            bundle.fetch(self.git_dir, data)
            bundle.git_in(self.git_dir).update_ref("refs/parex/initial", "FETCH_HEAD")
            (self.git_dir / READY).write_text("")
            return len(data)

    def checkout(self, start: str, delta: bytes | None, name: str) -> Path:
        """A worktree at `start` (fetched first from `delta` when the base moved since the run began)."""
        path = self.root / "trees" / f"{name}-{uuid.uuid4().hex[:8]}"
        path.parent.mkdir(parents=True, exist_ok=True)
        g = bundle.git_in(self.git_dir)
        with self.lock:  # FETCH_HEAD and the worktree list are the repository's, not the attempt's
            if delta is not None:
                bundle.fetch(self.git_dir, delta)
                g.update_ref(f"refs/parex/starts/{start}", start)  # keeps the objects referenced
            g.worktree("add", "--quiet", "--detach", str(path), start)
        return path

    def remove(self, path: Path) -> None:
        with self.lock:
            shutil.rmtree(path, ignore_errors=True)
            bundle.git_in(self.git_dir).worktree("prune")

    def forget(self) -> None:
        """The run is over: its repository and worktrees on this node go."""
        with self.lock:
            shutil.rmtree(self.root, ignore_errors=True)
        Path(self.lock.lock_file).unlink(missing_ok=True)
        try:
            self.root.parent.rmdir()  # the run's folder, once no node of this machine has anything in it
        except OSError:
            pass


def forget_run(run_id: str) -> None:
    """A Ray task, one per node the run used, when the run ends."""
    NodeRepo(run_id, ray.get_runtime_context().get_node_id()).forget()


def commits_back(tree: Path, start: str, message: str) -> tuple[str, bytes] | None:
    """Commit everything in the worktree (parex's identity), then the bundle `start..HEAD`; None when the
    attempt changed nothing."""
    g = bundle.git_in(tree)
    g.add("-A")
    if g.diff("--cached", "--name-only"):
        g.commit("-q", "--no-verify", "-m", message)
    data = bundle.create(tree, "HEAD", f"^{start}")
    return None if data is None else (bundle.head(tree), data)


class StreamOutput:
    """The task's output on the node: every call goes back to parex, where the task's own output takes it."""

    transient_match: str | None = None  # matched against `retry_on` where the output lands (parex's side)

    def __init__(self, send: Send):
        self.send = send

    def write(self, text: str) -> None:
        self.send(("write", text))

    def log(self, text: str) -> None:
        self.send(("log", text))

    def show(self, text: str) -> None:
        self.send(("show", text))

    def mark(self, text: str) -> None:
        self.send(("mark", text))

    def flush(self) -> None:
        return None


async def run_attempt(attempt: Attempt, secrets: dict[str, str], workdir: Path, send: Send) -> Outcome:
    """`[run] setup` then the agent, in `workdir`, reporting through `send`."""
    def emit(kind: EventKind, payload: Payload) -> None:
        send(("event", kind, payload))

    env = {**attempt.env, "PAREX_WORKSPACE": str(workdir), **secrets}  # the workspace is this checkout here
    ctx = AgentContext(attempt.run_id, attempt.task, attempt.agent, workdir, workdir, attempt.number,
                       StreamOutput(send), emit=emit, kill_grace=attempt.kill_grace, env=env, gate=DirectGate(),
                       shared_context=attempt.shared_context)
    if attempt.setup:
        ctx.output.mark(f"setup: {attempt.setup}")
        done = await run_process([SHELL, "-c", attempt.setup], ctx)
        if not done.ok:
            return Outcome(False, exit_code=done.exit_code, code=SETUP_FAILED,
                           reason=f"setup command `{attempt.setup}` {done.reason}")
    return await agent_for(attempt.agent).run(ctx)


async def _attempt_here(attempt: Attempt, secrets: dict[str, str], repo: NodeRepo, run_bundle: list[Any],
                        delta: bytes | None, send: Send) -> tuple[Outcome, tuple[str, bytes] | None]:
    cloned = await anyio.to_thread.run_sync(repo.ensure, lambda: ray.get(run_bundle[0]))
    if cloned is not None:
        send(("mark", f"this node cloned the run's repository from its bundle ({cloned} bytes)"))
    if delta is not None:
        send(("mark", f"the base moved since the run began: {len(delta)} bytes of new commits fetched"))
    tree = await anyio.to_thread.run_sync(repo.checkout, attempt.base, delta,
                                          f"{attempt.task.id}-a{attempt.number}")
    try:
        workdir = tree / attempt.sub if attempt.sub != "." else tree
        outcome = await run_attempt(attempt, secrets, workdir, send)
        back = await anyio.to_thread.run_sync(
            commits_back, tree, attempt.base, f"parex: task {attempt.task.id} (run {attempt.run_id})")
        return outcome, back
    finally:
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(repo.remove, tree)


def stream_attempt(attempt: Attempt, secrets: dict[str, str], run_bundle: list[Any],
                   delta: bytes | None) -> Iterator[Item]:
    """The Ray task: `run_bundle` is `[ObjectRef]` (nested, so Ray does not send it unless this node needs it)."""
    context = ray.get_runtime_context()
    node_id = context.get_node_id()
    yield ("node", node_id, ray.util.get_node_ip_address())  # type: ignore[no-untyped-call]
    items: queue.Queue[Item] = queue.Queue()
    # ends the attempt's processes, which are in sessions of their own, if this worker dies before it ends
    watching = watchdog.spawn(attempt.run_id, attempt.task.id, str(attempt.number))
    try:
        with start_blocking_portal() as portal:
            future = portal.start_task_soon(_attempt_here, attempt, secrets, NodeRepo(attempt.run_id, node_id),
                                            run_bundle, delta, items.put)
            try:
                while not (future.done() and items.empty()):
                    try:
                        yield items.get(timeout=POLL)
                    except queue.Empty:
                        pass
            finally:
                if not future.done():
                    future.cancel()  # the portal's task is cancelled; its process runner ends the agent's tree
        outcome, back = future.result()
        yield ("outcome", outcome, back)
    finally:
        watchdog.stand_down(watching)
