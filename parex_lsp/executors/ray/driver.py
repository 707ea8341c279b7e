"""The Ray executor, on parex's side: connects to the cluster, sends the run's history once (`ray.put` of a
bundle of the base branch) and its `copy_files` once (`ray.put` of an archive, copied.py), submits each
attempt as a streaming Ray task, hands its output and events to the task's own output and events while it
runs, and fetches the commits it returns into the task's branch.

The scheduler, its limits, locks, retries, journal, review and merges stay local and unchanged: the task's
local worktree is its branch, and after an attempt it holds the attempt's commits as if the agent had run in
it. Faults: a cancel or timeout cancels the Ray task (the node ends the agent's tree), then kills its worker
after the kill grace; a node lost mid-attempt is a transient failure naming the node (retried elsewhere)."""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path, PurePosixPath
from typing import Any

import anyio
import git
import ray
import ray.exceptions

from parex_lsp.agents.base import EXIT_CODE, AgentContext, Outcome
from parex_lsp.contract import Reason
from parex_lsp.executors.address import unreachable
from parex_lsp.executors.base import Attempt, ExecutorError
from parex_lsp.executors.ray import bundle, copied, node
from parex_lsp.plan.model import AgentSpec, Plan

STOP_MARGIN = 3.0  # seconds beyond the kill grace a cancelled attempt's node side gets before its worker is killed
LOST = (ray.exceptions.NodeDiedError, ray.exceptions.WorkerCrashedError, ray.exceptions.ObjectLostError,
        ray.exceptions.ActorDiedError, ray.exceptions.LocalRayletDiedError, ray.exceptions.RaySystemError,
        ray.exceptions.OutOfMemoryError)
CONNECT_TIMEOUT = 5.0  # seconds to reach a cluster's GCS before Ray is asked to connect
FORGET_TIMEOUT = 30.0  # seconds the nodes get to remove the run's repositories when it ends
_remote: Any = None  # the Ray task, made once per process
_forget: Any = None


def _attempt_task() -> Any:
    global _remote
    if _remote is None:
        # max_retries=0: parex's own retries decide (with its backoff, journal and limits)
        _remote = ray.remote(num_returns="streaming", max_retries=0)(node.stream_attempt)
    return _remote


def _forget_task() -> Any:
    global _forget
    if _forget is None:
        _forget = ray.remote(num_cpus=0, max_retries=0)(node.forget_run)
    return _forget


def ray_options(agent: AgentSpec) -> dict[str, Any]:
    """An agent's `resources` as Ray's resource requests: CPU, GPU, memory (bytes), custom resources."""
    wanted = dict(agent.resources)
    options: dict[str, Any] = {}
    if "CPU" in wanted:
        options["num_cpus"] = wanted.pop("CPU")
    if "GPU" in wanted:
        options["num_gpus"] = wanted.pop("GPU")
    if "memory" in wanted:
        options["memory"] = int(wanted.pop("memory"))
    if wanted:
        options["resources"] = wanted
    return options


class _Connection:
    """The process's one connection to a cluster, shared by its runs (a language server may run several at
    once): made by the first, closed by the last. Ray connected by whoever embeds parex is used as it is."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.users = 0
        self.address: str | None = None  # the address this process connected to (None: not ours to close)

    def join(self, address: str) -> None:
        with self.lock:
            if self.users == 0 and not ray.is_initialized():
                try:
                    _connect(address)
                except Exception as e:  # ConnectionError, a bad address (ValueError), a version mismatch ...
                    why = str(e).strip().rstrip(".")
                    raise ExecutorError(f"cannot connect to the Ray cluster at {address!r}: {why}. Start one "
                                        "(ray start --head) or set [run] ray_address / --ray-address") from e
                self.address = address
            elif self.address is not None and self.address != address:
                raise ExecutorError(f"this process is connected to the Ray cluster at {self.address!r} for a run "
                                    f"still going: a run on {address!r} can start once it has ended")
            self.users += 1

    def leave(self) -> None:
        with self.lock:
            self.users -= 1
            if self.users == 0 and self.address is not None:
                self.address = None
                ray.shutdown()


_CONNECTION = _Connection()


def _connect(address: str) -> None:
    _check_reachable(address)
    # Connected off the event loop, so Ray leaves the signal handlers alone (parex has its own) and says so.
    logging.getLogger("ray._private.worker").addFilter(
        lambda record: "SIGTERM handler is not set" not in record.getMessage())
    ray.init(address=address, logging_level=logging.WARNING, log_to_driver=False)


class RayExecutor:
    name = "ray"
    runs_setup = True  # each attempt's checkout is made on its node, and `[run] setup` runs there

    def __init__(self, plan: Plan, run_id: str, workspace: Path, address: str):
        self.plan, self.run_id, self.workspace, self.address = plan, run_id, workspace, address
        self.secret_names = tuple(plan.run.env_passthrough)
        self._joined = False  # this run uses the process's connection (and leaves it at the end)
        self.initial = ""  # the base branch's commit when the run began: every node has its history
        self.sub = "."  # the workspace's folder inside the repository
        self._run_bundle: list[Any] = []  # [ObjectRef]: nested, so Ray sends it only to a node that asks
        self._copy_files: list[Any] = []  # [ObjectRef] of the copy_files' archive (nested too), [] for none
        self._nodes: set[str] = set()  # the nodes the run's attempts ran on: each keeps a copy of its repository

    async def open(self) -> None:
        files = await anyio.to_thread.run_sync(copied.pack, self.workspace, self.plan.run.copy_files)
        await anyio.to_thread.run_sync(_CONNECTION.join, self.address)
        self._joined = True
        await anyio.to_thread.run_sync(self._send_history)
        if files is not None:
            self._copy_files = [await anyio.to_thread.run_sync(ray.put, files)]

    def _send_history(self) -> None:
        repo = git.Repo(self.workspace, search_parent_directories=True)
        root = Path(str(repo.working_tree_dir)).resolve()
        self.sub = PurePosixPath(self.workspace.resolve().relative_to(root).as_posix()).as_posix()
        self.initial = bundle.head(root)
        data = bundle.create(root, "HEAD")
        assert data is not None  # worktree isolation checked that there is a commit
        self._run_bundle = [ray.put(data)]

    async def close(self) -> None:
        self._run_bundle, self._copy_files = [], []
        if self._nodes:
            await anyio.to_thread.run_sync(self._forget_run)
        if self._joined:
            self._joined = False
            await anyio.to_thread.run_sync(_CONNECTION.leave)

    def _forget_run(self) -> None:
        """Each node the run used removes its copy of the run's repository (a node gone since has none left)."""
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        # only live nodes: a task pinned to a dead one would wait for it

        alive = {n["NodeID"] for n in ray.nodes() if n.get("Alive")}  # type: ignore[no-untyped-call]
        refs = [_forget_task().options(scheduling_strategy=NodeAffinitySchedulingStrategy(n, soft=False))
                .remote(self.run_id) for n in sorted(self._nodes & alive)]
        self._nodes.clear()
        ray.wait(refs, num_returns=len(refs), timeout=FORGET_TIMEOUT)

    async def run(self, ctx: AgentContext) -> Outcome:
        tree = ctx.workdir  # the task's local worktree: its branch receives the attempt's commits
        start = await anyio.to_thread.run_sync(bundle.head, tree)
        delta = None if start == self.initial else await anyio.to_thread.run_sync(
            bundle.create, tree, "HEAD", f"^{self.initial}")
        own_wait = ctx.agent.rate_limit_wait_max
        attempt = Attempt.of(ctx, start, self.sub, self.plan.run.setup, self.secret_names,
                             tuple(self.plan.run.copy_files),
                             self.plan.run.rate_limit_wait_max if own_wait is None else own_wait)
        secrets = {name: os.environ[name] for name in self.secret_names if name in os.environ}
        stream = _attempt_task().options(**ray_options(ctx.agent)).remote(attempt, secrets, self._run_bundle, delta,
                                                                          self._copy_files)
        where = "a Ray node"
        outcome: Outcome | None = None
        back: tuple[str, bytes] | None = None
        try:
            async for ref in stream:
                item = await ref
                kind = item[0]
                if kind == "node":
                    where = f"Ray node {item[2]} ({item[1][:12]})"
                    self._nodes.add(item[1])
                    ctx.output.mark(f"attempt {ctx.attempt} on {where}")
                elif kind == "event":
                    ctx.emit(item[1], item[2])
                elif kind == "outcome":
                    outcome, back = item[1], item[2]
                else:
                    getattr(ctx.output, kind)(item[1])  # write, log, show, mark
        except anyio.get_cancelled_exc_class():
            with anyio.CancelScope(shield=True):
                await self._stop(stream, ctx.kill_grace)
            raise
        except LOST as e:
            return Outcome(False, code=Reason.INTERNAL_ERROR, transient=True,
                           reason=f"{where} was lost during the attempt ({type(e).__name__}): "
                                  f"{_first_line(e)}")
        except ray.exceptions.RayTaskError as e:  # the node side failed (a bug, git): this attempt fails
            return Outcome(False, code=Reason.INTERNAL_ERROR, reason=f"the attempt failed on {where}: "
                                                                      f"{_first_line(e.as_instanceof_cause())}")  # type: ignore[no-untyped-call]
        if outcome is None:
            return Outcome(False, code=Reason.INTERNAL_ERROR, transient=True,
                           reason=f"the attempt on {where} ended without an outcome")
        if back is not None:
            await anyio.to_thread.run_sync(_take_commits, tree, start, back)
        return _with_transient_match(outcome, ctx)

    async def _stop(self, stream: Any, grace: float) -> None:
        """Cancel the Ray task: its node side ends the agent's tree (SIGTERM, SIGKILL after `grace`); a worker
        that has not ended by then is killed, and the node's watchdog ends what the agent left."""
        ray.cancel(stream)
        with anyio.move_on_after(grace + STOP_MARGIN):
            try:
                await stream.completed()
            except Exception:
                pass  # TaskCancelledError: it ended
            return
        ray.cancel(stream, force=True)


def _check_reachable(address: str) -> None:
    """A `host:port` GCS address that refuses connections: Ray itself would keep retrying for minutes."""
    if "://" in address:
        return  # Ray client has its own timeout
    why = unreachable(address, CONNECT_TIMEOUT)
    if why is not None:
        raise ConnectionError(why)


def _take_commits(tree: Path, start: str, back: tuple[str, bytes]) -> None:
    """The attempt's commits onto the task's branch, and its local worktree updated to them."""
    commit, data = back
    bundle.fetch(tree, data)
    g = bundle.git_in(tree)
    g.merge_base("--is-ancestor", start, commit)  # raises unless they continue the branch
    g.reset("--quiet", "--hard", commit)


def _with_transient_match(outcome: Outcome, ctx: AgentContext) -> Outcome:
    """`retry_on` is matched where the output lands (here): a failure after a matching line is transient,
    as process.py decides for a local agent."""
    match = ctx.output.transient_match
    if outcome.ok or outcome.transient or match is None or outcome.code != EXIT_CODE:
        return outcome
    outcome.transient = True
    outcome.reason = f"{outcome.reason} after `{match[:200]}`"
    return outcome


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[-1][:300] if text else type(error).__name__
