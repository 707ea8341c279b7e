"""Agents run one attempt of one task: `agent_for(spec).run(ctx) -> Outcome`."""

from __future__ import annotations

from parex_lsp.agents.base import Agent, AgentContext, Outcome
from parex_lsp.agents.command import CommandAgent, ShellAgent
from parex_lsp.plan.model import AgentSpec

__all__ = ["Agent", "AgentContext", "Outcome", "agent_for"]


def agent_for(spec: AgentSpec) -> Agent:
    if spec.kind == "shell":
        return ShellAgent()
    if spec.kind == "openai":
        from parex_lsp.agents.openai_agent import OpenAIAgent  # httpx is loaded only by plans that use it

        return OpenAIAgent()
    return CommandAgent()
