"""Attempts as local processes: the agent runs here, in the task's workdir (the workspace or its worktree)."""

from __future__ import annotations

from parex_lsp.agents import agent_for
from parex_lsp.agents.base import AgentContext, Outcome


class LocalExecutor:
    name = "local"
    runs_setup = False  # the engine runs `[run] setup` once in the task's checkout, here

    async def open(self) -> None:
        return None

    async def run(self, ctx: AgentContext) -> Outcome:
        return await agent_for(ctx.agent).run(ctx)

    async def close(self) -> None:
        return None
