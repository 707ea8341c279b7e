"""Plans: parse any of the three forms into one `Plan`, validate it, report problems with positions.

`resolve` (resolve.py) is the entry point for front ends: a document → plan or problems, and its workspace.
The `plan_from_*`/`load_*` functions below are the same checks for callers that already know the form
and the workspace; they raise PlanError carrying every problem.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from parex_lsp.plan.ids import MAX_ID_LENGTH, id_problem, is_valid_id
from parex_lsp.plan.model import AgentSpec, Plan, PlanError, Problem, RunConfig, SourceRange, TaskSpec, in_order
from parex_lsp.plan.resolve import (
    WORKSPACE_PLAN,
    Resolved,
    _calls,
    find_workspace,
    is_plan_file,
    pick_call_agent,
    resolve,
    resolve_inline,
)
from parex_lsp.plan.toml_plan import parse_toml_plan
from parex_lsp.plan.validate import nothing_to_run, validate

__all__ = ["AgentSpec", "MAX_ID_LENGTH", "Plan", "PlanError", "Problem", "Resolved", "RunConfig", "SourceRange",
           "TaskSpec", "WORKSPACE_PLAN", "check", "find_workspace", "id_problem", "is_plan_file", "is_valid_id",
           "lint", "load_calls", "load_plan", "pick_call_agent", "plan_from_calls", "plan_from_inline",
           "plan_from_text", "resolve", "resolve_inline"]


def check(plan: Plan | None, problems: list[Problem], running: bool = False) -> Plan:
    """The plan, validated; PlanError with every error (parse and semantic) if there is any."""
    if plan is not None:
        problems = problems + validate(plan)
        if running and not any(p.is_error for p in problems):
            problems += [p for p in [nothing_to_run(plan)] if p]
    return _plan_or_raise(Resolved(plan, problems, plan.workspace if plan else Path.cwd()))


def _plan_or_raise(got: Resolved) -> Plan:
    if got.errors or got.plan is None:
        raise PlanError(got.errors or got.problems)
    return got.plan


def lint(text: str, path: str, workspace: Path) -> list[Problem]:
    """Every problem (errors and warnings) of a plan file as the editor shows it: a parex.toml holding
    only configuration is fine."""
    plan, problems = parse_toml_plan(text, path, workspace)
    return in_order(problems + (validate(plan) if plan is not None else []))


def plan_from_text(text: str, path: str, workspace: Path, running: bool = False) -> Plan:
    return check(*parse_toml_plan(text, path, workspace), running=running)


def load_plan(path: str | Path, workspace: Path | None = None) -> Plan:
    """A plan file (or a folder holding parex.toml) from disk, to run; in the workspace given, else the rule's
    (resolve.py)."""
    got = resolve(path)
    if workspace is None or got.plan is None:
        return _plan_or_raise(got)
    return plan_from_text(Path(got.plan.source or path).read_text(encoding="utf-8"), got.plan.source or str(path),
                          Path(workspace), running=True)


def load_calls(path: str | Path) -> Plan:
    """The `callN:` lines of a document on disk, to run, in its workspace (resolve.py)."""
    return _plan_or_raise(resolve(path))


def plan_from_calls(text: str, source: str, workspace: Path, line_range: tuple[int, int] | None = None,
                    call_agent: str | None = None) -> Plan:
    return _plan_or_raise(_calls(text, source, Path(workspace), line_range, True, call_agent))


def plan_from_inline(tasks: Any, workspace: Path) -> Plan:
    return _plan_or_raise(resolve_inline(tasks, Path(workspace)))
