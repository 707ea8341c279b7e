"""What runs on a cluster node for one attempt: the run's repository (cloned once per run and node from the
run's bundle, in the node's cache: cache.py), a worktree at the attempt's start commit with the run's
`copy_files` copied in, `[run] setup` then the agent (the same agents code as a local run), its work committed
with parex's identity (the copied files left out), and the commits `start..HEAD` sent back as a bundle.

`stream_attempt` is the Ray task (a streaming generator): it yields the node it runs on, then the agent's
output and events while it runs, then `("outcome", Outcome, (head, bundle) | None)`. A cancel (`ray.cancel`,
a KeyboardInterrupt here) cancels the attempt, whose process runner ends the agent's whole tree."""

from __future__ import annotations

import queue
from collections.abc import Callable, Iterator
from pathlib import Path, PurePosixPath
from typing import Any

import anyio
import ray
from anyio.from_thread import start_blocking_portal

from parex_lsp.agents import agent_for
from parex_lsp.agents.base import SETUP_FAILED, AgentContext, Outcome
from parex_lsp.agents.command import SHELL
from parex_lsp.agents.process import run_process
from parex_lsp.contract import EventKind, Payload
from parex_lsp.executors.base import Attempt
from parex_lsp.executors.ray import bundle, cache, watchdog
from parex_lsp.executors.ray.cache import Job, NodeRepo
from parex_lsp.executors.ray.pacing import PacedGate
from parex_lsp.isolation.worktree import commit_all, copy_in

POLL = 0.05  # seconds between looks for the attempt's next item

Item = tuple[Any, ...]
Send = Callable[[Item], None]


def current_job() -> Job:
    context = ray.get_runtime_context()
    return Job(context.get_session_name(), context.get_job_id())


def ended_jobs() -> set[str]:
    """The ids of the cluster's jobs that have ended, from the GCS's job table (no dashboard needed, as for
    `ray.nodes()`, which reads its node table beside it); none when it cannot be read, so that nothing is removed."""
    from ray._private import state

    try:
        return {job["JobID"] for job in state.jobs() if job["IsDead"]}  # type: ignore[no-untyped-call]
    except Exception:
        return set()


def sweep_ended_runs(keep: str) -> list[str]:
    """Remove this machine's folders of runs whose driver died (see cache.py): the run ids removed."""
    return cache.sweep(current_job(), ended_jobs(), keep)


def forget_run(run_id: str) -> None:
    """A Ray task, one per node the run used, when the run ends; ended runs' folders go with it."""
    NodeRepo(run_id, ray.get_runtime_context().get_node_id()).forget()
    sweep_ended_runs(run_id)


def commits_back(tree: Path, start: str, message: str) -> tuple[str, bytes] | None:
    """Commit everything in the worktree (parex's identity) but the copied-in files, as a local worktree's
    work is committed, then the bundle `start..HEAD`; None when the attempt changed nothing."""
    commit_all(tree, message)
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
                       StreamOutput(send), emit=emit, kill_grace=attempt.kill_grace, env=env,
                       gate=PacedGate(attempt.rate_limit_wait_max, lambda text: send(("mark", text))),
                       shared_context=attempt.shared_context)
    if attempt.setup:
        ctx.output.mark(f"setup: {attempt.setup}")
        done = await run_process([SHELL, "-c", attempt.setup], ctx)
        if not done.ok:
            return Outcome(False, exit_code=done.exit_code, code=SETUP_FAILED,
                           reason=f"setup command `{attempt.setup}` {done.reason}")
    return await agent_for(attempt.agent).run(ctx)


async def _attempt_here(attempt: Attempt, secrets: dict[str, str], repo: NodeRepo, run_bundle: list[Any],
                        delta: bytes | None, files: list[Any], send: Send) -> tuple[Outcome, tuple[str, bytes] | None]:
    cloned = await anyio.to_thread.run_sync(repo.ensure, lambda: ray.get(run_bundle[0]))
    if cloned is not None:
        send(("mark", f"this node cloned the run's repository from its bundle ({cloned} bytes)"))
        swept = await anyio.to_thread.run_sync(sweep_ended_runs, attempt.run_id)
        if swept:
            send(("mark", f"this node removed the folders of runs whose driver died: {', '.join(swept)}"))
    if files:
        unpacked = await anyio.to_thread.run_sync(repo.ensure_copied, lambda: ray.get(files[0]))
        if unpacked is not None:
            send(("mark", f"this node received the run's copy_files ({unpacked} bytes)"))
    if delta is not None:
        send(("mark", f"the base moved since the run began: {len(delta)} bytes of new commits fetched"))
    tree = await anyio.to_thread.run_sync(repo.checkout, attempt.base, delta,
                                          f"{attempt.task.id}-a{attempt.number}")
    try:
        workdir = tree / attempt.sub if attempt.sub != "." else tree
        if files:
            names = await anyio.to_thread.run_sync(copy_in, repo.copied, tree, PurePosixPath(attempt.sub),
                                                   attempt.copy_files)
            send(("mark", f"copy_files: {', '.join(names) if names else 'nothing to copy'}"))
        outcome = await run_attempt(attempt, secrets, workdir, send)
        back = await anyio.to_thread.run_sync(
            commits_back, tree, attempt.base, f"parex: task {attempt.task.id} (run {attempt.run_id})")
        return outcome, back
    finally:
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(repo.remove, tree)


def stream_attempt(attempt: Attempt, secrets: dict[str, str], run_bundle: list[Any],
                   delta: bytes | None, files: list[Any]) -> Iterator[Item]:
    """The Ray task: `run_bundle` is `[ObjectRef]` of the run's bundle, `files` `[ObjectRef]` of its copy_files'
    archive, or `[]` (nested, so Ray sends neither to a node that has it already)."""
    context = ray.get_runtime_context()
    node_id = context.get_node_id()
    yield ("node", node_id, ray.util.get_node_ip_address())  # type: ignore[no-untyped-call]
    items: queue.Queue[Item] = queue.Queue()
    # ends the attempt's processes, which are in sessions of their own, if this worker dies before it ends
    watching = watchdog.spawn(attempt.run_id, attempt.task.id, str(attempt.number))
    try:
        with start_blocking_portal() as portal:
            repo = NodeRepo(attempt.run_id, node_id, current_job())
            future = portal.start_task_soon(_attempt_here, attempt, secrets, repo, run_bundle, delta, files,
                                            items.put)
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
