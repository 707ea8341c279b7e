"""Run one agent process and contain everything it starts.

The agent leads a process group of its own, but a group is not a container: a daemon (`setsid`, double fork,
`nohup ... &`) leaves it. The runner adopts such orphans as subreaper and knows them by the `PAREX_RUN_ID` and
`PAREX_TASK_ID` they inherit (isolation/containment.py). When the leader exits, whatever it left is killed;
on timeout or cancel the whole tree gets SIGTERM, then SIGKILL after the grace period. Output is read until
the tree is gone, never until end-of-file on a pipe that something outside the tree may still hold."""

from __future__ import annotations

import codecs
import os
import shutil
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path

import anyio
from anyio.abc import Process

from parex_lsp.agents.base import AGENT_NOT_FOUND, EXIT_CODE, AgentContext, Outcome
from parex_lsp.isolation import containment
from parex_lsp.isolation.cgroups import TaskCgroup
from parex_lsp.isolation.containment import ProcessTree

LineFilter = Callable[[str], None]  # receives complete stdout lines instead of the raw stream
DRAIN = 0.5  # seconds to read what the tree wrote before it ended, once it has
TREE_POLL = 0.02  # seconds between looks at a tree that is being ended


async def run_process(argv: list[str], ctx: AgentContext, line_filter: LineFilter | None = None) -> Outcome:
    containment.become_subreaper()
    env = {**os.environ, **ctx.agent.env, **ctx.env}
    cgroup = TaskCgroup.create()
    if cgroup is not None:
        # Started through a shell that enters the cgroup first: check here what exec would report.
        refused = _unstartable(argv, ctx, env.get("PATH"))
        if refused is not None:
            cgroup.release()
            return refused
    proc: Process | None = None
    try:
        # Shielded: a cancel landing between fork and return would leak a process we hold no handle to.
        with anyio.CancelScope(shield=True), containment.Spawning():
            proc = await anyio.open_process(argv if cgroup is None else cgroup.wrap(argv), cwd=ctx.workdir,
                                            env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                            stderr=subprocess.STDOUT, start_new_session=True)
            containment.add_leader(proc.pid)
    except FileNotFoundError:
        return _not_found(argv, ctx)
    except PermissionError:
        return _not_executable(argv, ctx)
    finally:
        if proc is None and cgroup is not None:
            cgroup.release()
    assert proc is not None
    tree = ProcessTree(proc.pid, env.get("PAREX_RUN_ID", ""), env.get("PAREX_TASK_ID", ""), cgroup)
    pump = _Pump(ctx, line_filter)
    try:
        if ctx.on_spawn is not None:
            ctx.on_spawn(proc.pid)
        async with anyio.create_task_group() as tg:
            tg.start_soon(pump.run, proc, tg.cancel_scope)
            rc = await proc.wait()
            tree.reaped = True
            # The leader is gone; whatever it left (daemons, stray children) goes too, which also closes the
            # pipe for them. What still holds it is outside the tree: stop reading after a short drain.
            if tree.settle():
                await anyio.to_thread.run_sync(tree.kill)
            with anyio.move_on_after(DRAIN):
                await pump.done.wait()
            tg.cancel_scope.cancel()
    finally:
        with anyio.CancelScope(shield=True):
            await _end_tree(proc, tree, ctx.kill_grace)
            if pump.error is None:
                pump.finish()
                ctx.output.flush()
    if pump.error is not None:
        raise pump.error  # the task's output cannot be kept (its log folder became unwritable): the task fails
    if rc == 0:
        return Outcome(True, exit_code=0)
    reason = f"exited with code {rc}" if rc > 0 else f"killed by {signal.Signals(-rc).name}"
    transient = ctx.output.transient_match
    if transient is not None:
        reason += f" after `{transient[:200]}`"  # why it is worth another attempt
    return Outcome(False, exit_code=rc, code=EXIT_CODE, reason=reason, transient=transient is not None)


def _not_found(argv: list[str], ctx: AgentContext) -> Outcome:
    return Outcome(False, code=AGENT_NOT_FOUND,
                   reason=f"agent `{ctx.agent.name}`: executable `{argv[0]}` not found on PATH")


def _not_executable(argv: list[str], ctx: AgentContext) -> Outcome:
    return Outcome(False, code=AGENT_NOT_FOUND, reason=f"agent `{ctx.agent.name}`: `{argv[0]}` is not executable")


def _unstartable(argv: list[str], ctx: AgentContext, path: str | None) -> Outcome | None:
    """What starting `argv` directly would fail with (not found, not executable), or None."""
    if "/" not in argv[0]:
        return None if shutil.which(argv[0], path=path) else _not_found(argv, ctx)
    exe = Path(ctx.workdir, argv[0])
    if not exe.exists():
        return _not_found(argv, ctx)
    return None if os.access(exe, os.X_OK) and not exe.is_dir() else _not_executable(argv, ctx)


class _Pump:
    """Copies the agent's output to the task's output; `finish` delivers a last partial line."""

    def __init__(self, ctx: AgentContext, line_filter: LineFilter | None):
        self.ctx, self.line_filter = ctx, line_filter
        self.decode = codecs.getincrementaldecoder("utf-8")(errors="replace").decode
        self.partial = ""
        self.done = anyio.Event()
        self.error: OSError | None = None

    async def run(self, proc: Process, scope: anyio.CancelScope) -> None:
        assert proc.stdout is not None
        try:
            async for chunk in proc.stdout:
                self._feed(self.decode(chunk))
        except OSError as e:
            self.error = e
            scope.cancel()  # stop waiting for the agent: it is ended like a cancelled one
        finally:
            self.done.set()

    def _feed(self, text: str) -> None:
        if self.line_filter is None:
            self.ctx.output.write(text)
            return
        self.ctx.output.log(text)
        *lines, self.partial = (self.partial + text).split("\n")
        for line in lines:
            self.line_filter(line)

    def finish(self) -> None:
        rest = self.decode(b"", final=True)  # an incomplete UTF-8 sequence at the very end
        if rest:
            self._feed(rest)
        if self.line_filter is not None and self.partial:
            self.line_filter(self.partial)
            self.partial = ""


async def _end_tree(proc: Process, tree: ProcessTree, grace: float) -> None:
    """SIGTERM the whole tree, give it up to `grace` to go, then SIGKILL whatever is left."""
    try:
        if proc.returncode is None or (not tree.ended and tree.alive()):
            tree.signal(signal.SIGTERM)
            with anyio.move_on_after(grace):
                await proc.wait()
                tree.reaped = True
                while tree.alive():
                    await anyio.sleep(TREE_POLL)
            await anyio.to_thread.run_sync(tree.kill)
        if proc.returncode is None:
            await proc.wait()
        tree.reaped = True
    finally:
        containment.drop_leader(proc.pid)
        tree.close()
        await proc.aclose()
