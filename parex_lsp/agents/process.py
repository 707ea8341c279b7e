"""Run one agent process: its own process group, output pumped to the task's output, and the whole group
ended on exit, timeout or cancel (SIGTERM, then SIGKILL after a grace period) so no grandchild outlives it."""

from __future__ import annotations

import codecs
import os
import signal
import subprocess
from collections.abc import Callable

import anyio
from anyio.abc import Process

from parex_lsp.agents.base import AGENT_NOT_FOUND, EXIT_CODE, AgentContext, Outcome

LineFilter = Callable[[str], None]  # receives complete stdout lines instead of the raw stream


async def run_process(argv: list[str], ctx: AgentContext, line_filter: LineFilter | None = None) -> Outcome:
    env = {**os.environ, **ctx.agent.env, **ctx.env}
    try:
        # Shielded: a cancel landing between fork and return would leak a process we hold no handle to.
        with anyio.CancelScope(shield=True):
            proc = await anyio.open_process(argv, cwd=ctx.workdir, env=env, stdin=subprocess.DEVNULL,
                                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                            start_new_session=True)
    except FileNotFoundError:
        return Outcome(False, code=AGENT_NOT_FOUND,
                       reason=f"agent `{ctx.agent.name}`: executable `{argv[0]}` not found on PATH")
    except PermissionError:
        return Outcome(False, code=AGENT_NOT_FOUND,
                       reason=f"agent `{ctx.agent.name}`: `{argv[0]}` is not executable")
    try:
        if ctx.on_spawn is not None:
            ctx.on_spawn(proc.pid)
        async with anyio.create_task_group() as tg:
            tg.start_soon(_pump, proc, ctx, line_filter)
            rc = await proc.wait()
            # The leader is gone; whatever it left in its group (daemons, stray children) goes too,
            # which also closes the pipe so the pump sees EOF.
            _signal_group(proc, signal.SIGKILL)
    finally:
        with anyio.CancelScope(shield=True):
            await _end_group(proc, ctx.kill_grace)
            ctx.output.flush()
    if rc == 0:
        return Outcome(True, exit_code=0)
    reason = f"exited with code {rc}" if rc > 0 else f"killed by {signal.Signals(-rc).name}"
    transient = ctx.output.transient_match
    if transient is not None:
        reason += f" after `{transient[:200]}`"  # why it is worth another attempt
    return Outcome(False, exit_code=rc, code=EXIT_CODE, reason=reason, transient=transient is not None)


async def _pump(proc: Process, ctx: AgentContext, line_filter: LineFilter | None) -> None:
    decode = codecs.getincrementaldecoder("utf-8")(errors="replace").decode
    partial = ""
    assert proc.stdout is not None
    async for chunk in proc.stdout:
        text = decode(chunk)
        if line_filter is None:
            ctx.output.write(text)
            continue
        ctx.output.log(text)
        *lines, partial = (partial + text).split("\n")
        for line in lines:
            line_filter(line)
    if line_filter is not None and partial:
        line_filter(partial)


def _signal_group(proc: Process, sig: int) -> None:
    try:
        os.killpg(proc.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


async def _end_group(proc: Process, grace: float) -> None:
    """SIGTERM the group, wait up to `grace`, then SIGKILL whatever is left."""
    if proc.returncode is None:
        _signal_group(proc, signal.SIGTERM)
        with anyio.move_on_after(grace):
            await proc.wait()
    _signal_group(proc, signal.SIGKILL)
    if proc.returncode is None:
        await proc.wait()
    await proc.aclose()
