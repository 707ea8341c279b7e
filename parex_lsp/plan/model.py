"""The one in-memory shape of a plan, whichever way it was written (TOML, callN:, inline)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True, slots=True)
class SourceRange:
    """A zero-based, end-exclusive range in a plan document (LSP convention)."""

    start_line: int
    start_col: int
    end_line: int
    end_col: int

    @classmethod
    def line(cls, line: int, start_col: int = 0, end_col: int | None = None, text: str = "") -> SourceRange:
        return cls(line, start_col, line, end_col if end_col is not None else max(start_col, len(text)))

    def to_lsp(self) -> dict[str, Any]:
        return {
            "start": {"line": self.start_line, "character": self.start_col},
            "end": {"line": self.end_line, "character": self.end_col},
        }


ERROR, WARNING = "error", "warning"


@dataclass(frozen=True, slots=True)
class Problem:
    """One reason a plan cannot run (severity "error"), or something worth a look ("warning"), with where it is."""

    code: str
    message: str
    range: SourceRange | None = None
    path: str | None = None  # file path (or uri) of the plan document
    severity: str = ERROR

    @property
    def is_error(self) -> bool:
        return self.severity == ERROR

    def format(self) -> str:
        """`path:line:col: message`, one-based, as compilers print it (`warning: ` before a warning's message)."""
        line, col = (self.range.start_line + 1, self.range.start_col + 1) if self.range else (1, 1)
        kind = "" if self.is_error else f"{self.severity}: "
        return f"{self.path or '<plan>'}:{line}:{col}: {kind}{self.message}"



def in_order(problems: list[Problem]) -> list[Problem]:
    """Each problem once, by position within each document (those without a position first, as found);
    documents in the order they first appear."""
    unique = list(dict.fromkeys(problems))
    docs: dict[str | None, int] = {}
    for p in unique:
        docs.setdefault(p.path, len(docs))

    def key(p: Problem) -> tuple[int, tuple[int, int]]:
        r = p.range
        return docs[p.path], (r.start_line, r.start_col) if r else (-1, -1)
    return sorted(unique, key=key)


class PlanError(Exception):
    """A plan that does not validate; carries every problem at once."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("; ".join(p.format() for p in problems))


@dataclass(slots=True)
class AgentSpec:
    """How to run a task's prompt: a built-in shell, a command template, or a model endpoint."""

    name: str
    kind: str = "command"  # "shell" | "command" | "openai"
    command: list[str] = field(default_factory=list)
    max_concurrency: int | None = None
    retry_on: list[str] = field(default_factory=list)
    retry_timeouts: bool = False  # a timeout counts as transient for this agent
    env: dict[str, str] = field(default_factory=dict)
    output_format: str = "text"  # "text" | "json-lines": the agent's stdout is JSON events
    # model agents (kind = "openai")
    base_url: str | None = None
    model: str | None = None
    api_key_env: str | None = None
    max_steps: int = 20
    allow_commands: bool = False
    prices: dict[str, float] = field(default_factory=dict)  # per million tokens: input, output
    rate_limit_wait_max: float | None = None  # None: the plan's `[run] rate_limit_wait_max`
    resources: dict[str, float] = field(default_factory=dict)  # per attempt on a cluster node: CPU, memory bytes, ...
    extra: dict[str, Any] = field(default_factory=dict)
    range: SourceRange | None = None


@dataclass(slots=True)
class TaskSpec:
    id: str
    prompt: str
    agent: str | None = None  # None: the plan's default agent
    depends_on: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    retries: int | None = None  # None: the plan's `[run] retries`
    timeout: float | None = None  # seconds
    lock_timeout: float | None = None
    max_cost: float | None = None  # USD this task may spend; reaching it ends the task `budget-exceeded`
    merge: str | None = None  # "auto" | "review"; None: the plan's `[run] merge`
    check: str | None = None  # shell command ranking candidates in their worktrees; None: `[run] check`
    best_of: int | None = None  # candidates of the same agent
    agents: list[str] = field(default_factory=list)  # one candidate per agent
    context: list[str] = field(default_factory=list)  # files put before the prompt, after `[run] context`
    range: SourceRange | None = None  # the task's `id` line, or its `callN:` line
    field_ranges: dict[str, SourceRange] = field(default_factory=dict)

    def candidate_agents(self, default: str) -> list[str]:
        """The agent of each best-of candidate; one entry for an ordinary task."""
        if self.agents:
            return list(self.agents)
        return [self.agent or default] * (self.best_of or 1)


@dataclass(slots=True)
class RunConfig:
    max_concurrency: int = field(default_factory=lambda: os.cpu_count() or 2)
    isolation: str = "none"  # "none" | "worktree"
    default_agent: str = "shell"
    call_agent: str | None = None  # for `callN:` prompts; None: see plan.call_agent()
    fail_fast: bool = False
    lock_timeout: float | None = None
    copy_files: list[str] = field(default_factory=list)  # worktree: untracked files copied in
    setup: str | None = None  # worktree: a shell command run before the agent
    retries: int = 2  # extra attempts on transient failure for tasks that do not set their own: a rate limit
    # hit during a fan-out is waited out, not turned into failures; permanent failures are never retried
    retry_backoff: float = 1.0  # first backoff delay, seconds; doubles each attempt
    retry_backoff_max: float = 60.0
    kill_grace: float = 5.0  # seconds between SIGTERM and SIGKILL
    allow_dirty: bool = False  # worktree: start even when tracked files have uncommitted changes
    budget: dict[str, float] = field(default_factory=dict)  # {usd?, tokens?}: the run stops when spend reaches one
    rate_limit_wait_max: float = 900.0  # seconds a task may wait out its agent's quota; 0: no shared cooldown
    merge: str = "auto"  # worktree: "auto" merges a succeeded task at once; "review" waits for a reviewer
    verify: str | None = None  # worktree: shell command run in the main checkout after each merge
    check: str | None = None  # worktree: shell command run in each task's worktree when it finishes
    plan_agent: str | None = None  # the model agent that drafts plans (`parex-lsp plan`); None: the first model
    plan_rounds: int = 3  # drafts the planner may make: each one's problems go back to the model
    context: list[str] = field(default_factory=list)  # files put at the start of every task's prompt
    keep_runs: int = 20  # runs kept under .parex/runs; older ones are pruned at the start of a run
    executor: str = "local"  # "local" | "ray": where attempts run (parex_lsp/executors)
    ray_address: str = "auto"  # the Ray cluster: "auto" (the one this machine is part of), ray://host:10001, ...
    env_passthrough: list[str] = field(default_factory=list)  # variables whose values reach remote attempts


@dataclass(slots=True)
class Plan:
    tasks: list[TaskSpec]
    agents: dict[str, AgentSpec]
    run: RunConfig
    workspace: Path
    source: str | None = None  # the plan document's path, or None for inline plans
    kind: str = "inline"  # "toml" | "calls" | "inline"
    config_ranges: dict[str, SourceRange] = field(default_factory=dict)  # `[run]` keys
    # (task index, field) whose problem the parser already reported: validation does not repeat it
    reported: set[tuple[int, str]] = field(default_factory=set)

    def task(self, task_id: str) -> TaskSpec:
        for t in self.tasks:
            if t.id == task_id:
                return t
        raise KeyError(task_id)

    def agent_for(self, task: TaskSpec) -> AgentSpec:
        return self.agents[task.agent or self.run.default_agent]
