"""The Executor seam: the engine hands over one attempt and gets back its events and its Outcome.

An attempt is data (`Attempt`): the task (its prompt with shared context and reviewer feedback already put
in), the agent, the commit it starts from, the environment it gets, and `[run] setup`. Output and events
come back through the attempt's `AgentContext` (its `output` and `emit`), as from an agent run here. Process
ids and /proc belong to the local executor: nothing above this seam assumes the attempt's process is local."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from parex_lsp.agents.base import AgentContext, Outcome
from parex_lsp.plan.model import AgentSpec, TaskSpec


class ExecutorError(Exception):
    """The executor cannot start (Ray missing, the cluster unreachable); the message says what to do."""


class Executor(Protocol):
    @property
    def name(self) -> str: ...  # "local" | "ray": the plan's word for it

    @property
    def runs_setup(self) -> bool: ...  # each attempt gets a fresh checkout elsewhere and runs `[run] setup` there

    async def open(self) -> None: ...  # ExecutorError when it cannot be used
    async def run(self, ctx: AgentContext) -> Outcome: ...  # one attempt; never raises for the agent's failure
    async def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class Attempt:
    """One attempt as data a remote node can run (picklable: plain dataclasses and strings)."""

    run_id: str
    task: TaskSpec  # the prompt as the agent gets it: shared context and feedback already applied
    agent: AgentSpec
    number: int  # 1 for the first attempt
    env: dict[str, str]  # PAREX_* and the like; never secrets (those travel apart, see `secret_names`)
    base: str  # the commit the attempt's checkout starts at
    sub: str  # the workspace's folder inside the repository ("." at its root)
    setup: str | None  # `[run] setup`, run in the fresh checkout before the agent
    kill_grace: float
    shared_context: str | None  # model agents: the `context` files for their system message
    secret_names: tuple[str, ...] = ()  # `[run] env_passthrough`: their values are a separate argument
    copy_files: tuple[str, ...] = ()  # `[run] copy_files` patterns: the files themselves travel apart
    rate_limit_wait_max: float = 0.0  # model agents: seconds a node may wait out 429s (executors/ray/pacing.py)

    @classmethod
    def of(cls, ctx: AgentContext, base: str, sub: str, setup: str | None,
           secret_names: tuple[str, ...] = (), copy_files: tuple[str, ...] = (),
           rate_limit_wait_max: float = 0.0) -> Attempt:
        return cls(ctx.run_id, ctx.task, ctx.agent, ctx.attempt, dict(ctx.env), base, sub, setup, ctx.kill_grace,
                   ctx.shared_context, secret_names, copy_files, rate_limit_wait_max)
