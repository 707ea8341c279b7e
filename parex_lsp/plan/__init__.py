"""Plans: parse any of the three forms into one `Plan`, validate it, report problems with positions."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from parex_lsp.plan.calls import parse_calls
from parex_lsp.plan.inline import parse_inline
from parex_lsp.plan.model import AgentSpec, Plan, PlanError, Problem, RunConfig, SourceRange, TaskSpec
from parex_lsp.plan.presets import builtin_agents
from parex_lsp.plan.toml_plan import parse_toml_plan
from parex_lsp.plan.validate import validate

__all__ = ["AgentSpec", "Plan", "PlanError", "Problem", "RunConfig", "SourceRange", "TaskSpec",
           "is_plan_file", "load_calls", "load_plan", "plan_from_text", "plan_from_calls", "plan_from_inline", "check"]

WORKSPACE_PLAN = "parex.toml"


def is_plan_file(path: str | Path) -> bool:
    name = Path(str(path)).name
    return name == WORKSPACE_PLAN or name.endswith(".parex.toml")


def check(plan: Plan | None, problems: list[Problem]) -> Plan:
    """The plan, validated; PlanError with every problem (parse and semantic) if there is any."""
    if plan is not None:
        problems = problems + validate(plan)
    if problems or plan is None:
        raise PlanError(problems)
    return plan


def plan_from_text(text: str, path: str, workspace: Path) -> Plan:
    return check(*parse_toml_plan(text, path, workspace))


def _read(p: Path) -> str:
    try:
        return p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise PlanError([Problem("unreadable", f"cannot read plan: {getattr(e, 'strerror', None) or e}",
                                 None, str(p))]) from e


def load_plan(path: str | Path, workspace: Path | None = None) -> Plan:
    """A plan file from disk; its workspace is the file's folder unless given."""
    p = Path(path)
    return plan_from_text(_read(p), str(p), (workspace or p.resolve().parent))


def load_calls(path: str | Path) -> Plan:
    """The `callN:` lines of a document on disk, in the nearest folder above it holding a parex.toml."""
    p = Path(path)
    text = _read(p)
    folder = p.resolve().parent
    workspace = next((d for d in (folder, *folder.parents) if (d / WORKSPACE_PLAN).is_file()), folder)
    return plan_from_calls(text, str(p), workspace)


def _workspace_base(workspace: Path) -> Plan:
    """The workspace's own parex.toml supplies agents and [run] settings to call and inline plans."""
    base_file = workspace / WORKSPACE_PLAN
    if base_file.is_file():
        try:
            base = load_plan(base_file, workspace)
            return Plan(tasks=[], agents=base.agents, run=base.run, workspace=workspace)
        except PlanError:
            pass  # a broken workspace plan is reported on that file; calls still run with defaults
    return Plan(tasks=[], agents=builtin_agents(), run=RunConfig(), workspace=workspace)


def plan_from_calls(text: str, source: str, workspace: Path, line_range: tuple[int, int] | None = None) -> Plan:
    base = _workspace_base(workspace)
    tasks = parse_calls(text, line_range)
    agent = call_agent(base)
    for t in tasks:
        t.agent = agent
    problems = [] if tasks else [Problem("no-tasks", "no `callN:` lines found (write e.g. `call1: add tests`)",
                                         SourceRange.line(line_range[0] if line_range else 0), source)]
    plan = Plan(tasks=tasks, agents=base.agents, run=base.run, workspace=workspace, source=source, kind="calls")
    return check(plan, problems)


def call_agent(plan: Plan) -> str:
    """`callN:` lines are prompts in prose: `[run] call_agent`, else a default agent other than the shell,
    else the first model agent, else the shell."""
    if plan.run.call_agent:
        return plan.run.call_agent
    if plan.run.default_agent != "shell":
        return plan.run.default_agent
    models = [name for name, a in plan.agents.items() if a.kind == "openai"]
    return models[0] if models else plan.run.default_agent


def plan_from_inline(tasks: Any, workspace: Path) -> Plan:
    base = _workspace_base(workspace)
    specs, problems = parse_inline(tasks)
    plan = Plan(tasks=specs, agents=base.agents, run=base.run, workspace=workspace, source=None, kind="inline")
    return check(plan, problems)
