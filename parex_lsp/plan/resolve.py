"""The one rule, for every front end, of which documents are plans and which folder is their workspace.

- A file named `parex.toml` or `*.parex.toml` is a plan; any other file is a document whose `callN:`
  lines are the plan; a folder stands for the `parex.toml` in it.
- The workspace is the nearest folder, from the document's own folder upwards, holding `.git` or a
  `parex.toml`. When the document is inside the editor's root folder the search stops there and falls
  back to that root; otherwise it falls back to the document's folder. `files` patterns are relative
  to the workspace, and the workspace's `parex.toml` configures `callN:` and inline plans.

`resolve` never raises: it answers a plan, or problems with positions, or both (warnings).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from parex_lsp.plan.calls import LINE_BREAK, parse_calls
from parex_lsp.plan.inline import parse_inline
from parex_lsp.plan.model import Plan, Problem, RunConfig, SourceRange, in_order
from parex_lsp.plan.presets import builtin_agents
from parex_lsp.plan.toml_plan import parse_toml_plan
from parex_lsp.plan.validate import nothing_to_run, validate

WORKSPACE_PLAN = "parex.toml"
PLAN_SUFFIX = ".parex.toml"
SHELL = "shell"


def is_plan_file(path: str | Path) -> bool:
    name = Path(str(path)).name
    return name == WORKSPACE_PLAN or name.endswith(PLAN_SUFFIX)


@dataclass(slots=True)
class Resolved:
    plan: Plan | None  # None when any problem is an error
    problems: list[Problem]  # errors and warnings, each once, in document order
    workspace: Path
    config: Path | None = None  # the workspace's parex.toml that configured a `callN:` or inline plan
    errors: list[Problem] = field(init=False)

    def __post_init__(self) -> None:
        self.errors = [p for p in self.problems if p.is_error]
        if self.errors:
            self.plan = None


def find_workspace(folder: Path, editor_root: Path | None = None) -> Path:
    """The workspace of a document in `folder` (see the module's rule)."""
    folder = folder.resolve()
    root = editor_root.resolve() if editor_root is not None else None
    inside = root is not None and folder.is_relative_to(root)
    for d in (folder, *folder.parents):
        if (d / ".git").exists() or (d / WORKSPACE_PLAN).is_file():
            return d
        if inside and d == root:
            break
    return root if inside and root is not None else folder


def resolve(document: str | Path, line_range: tuple[int, int] | None = None, editor_root: Path | None = None, *,
            text: str | None = None, running: bool = True, call_agent: str | None = None) -> Resolved:
    """The plan of `document` (a plan file, a folder holding parex.toml, or a `callN:` document).

    text: the document's text when the editor has it (else it is read from disk); line_range: zero-based,
    inclusive lines of a `callN:` document; running: refuse a plan with no tasks (False when linting a
    parex.toml, which may be only `[run]`/`[agents]` configuration); call_agent: the agent the person
    chose for `callN:` prompts in the front end (e.g. "shell"), over the workspace's `[run] call_agent`.
    """
    path = Path(document)
    source = str(path)
    if text is None and path.is_dir():
        path = path / WORKSPACE_PLAN
        source = str(path)
    # A document that is no file on disk (an editor's untitled buffer, given by its text) belongs to the
    # editor's root folder.
    unsaved = text is not None and not path.is_absolute()
    workspace = find_workspace(path.parent if not unsaved else (editor_root or Path.cwd()), editor_root)
    if text is None:
        text_or_problem = _read(path, source)
        if isinstance(text_or_problem, Problem):
            return Resolved(None, [text_or_problem], workspace)
        text = text_or_problem
    if is_plan_file(path):
        plan, problems = parse_toml_plan(text, source, workspace)
        if plan is not None:
            problems = problems + validate(plan)
        return Resolved(plan, in_order(problems + _when_running(plan, problems, running)), workspace)
    return _calls(text, source, workspace, line_range, running, call_agent)


def resolve_inline(tasks: Any, editor_root: Path | None = None, *, running: bool = True) -> Resolved:
    """An inline task list (`{"tasks": [...]}`), in the editor's root folder (else the current one)."""
    workspace = (editor_root or Path.cwd()).resolve()
    base, problems, config = _workspace_config(workspace)
    specs, found, reported = parse_inline(tasks)
    problems += found
    if base is None:
        return Resolved(None, in_order(problems), workspace, config)
    plan = Plan(tasks=specs, agents=base.agents, run=base.run, workspace=workspace, kind="inline", reported=reported)
    problems += validate(plan)
    return Resolved(plan, in_order(problems + _when_running(plan, problems, running)), workspace, config)


def _when_running(plan: Plan | None, problems: list[Problem], running: bool) -> list[Problem]:
    """`nothing_to_run`, unless another error already explains the plan (e.g. `[[tasks]]` for `[[task]]`)."""
    if not running or plan is None or any(p.is_error for p in problems):
        return []
    empty = nothing_to_run(plan)
    return [empty] if empty else []


def _read(path: Path, source: str) -> str | Problem:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return Problem("no-plan", f"no plan at {source}{_plans_near(path)}", None, source)
    except (OSError, UnicodeDecodeError) as e:
        why = getattr(e, "strerror", None) or str(e)
        return Problem("unreadable", f"cannot read plan: {why}", None, source)


def _plans_near(path: Path, limit: int = 20) -> str:
    """`; plans there: ...` for the plans in the missing path's folder and its subfolders' top level."""
    folder = path.parent
    while not folder.is_dir() and folder != folder.parent:
        folder = folder.parent
    try:
        found = [p for pattern in (WORKSPACE_PLAN, "*" + PLAN_SUFFIX, "*/" + WORKSPACE_PLAN, "*/*" + PLAN_SUFFIX)
                 for p in sorted(folder.glob(pattern)) if p.is_file()]
    except OSError:
        found = []
    where = "." if folder == path.parent and str(path.parent) in ("", ".") else str(folder)
    if not found:
        return f" (no {WORKSPACE_PLAN} or *{PLAN_SUFFIX} in {where})"
    names = [str(p.relative_to(folder)) for p in found[:limit]] + (["…"] if len(found) > limit else [])
    return f"; plans in {where}: {', '.join(names)}"


def _workspace_config(workspace: Path) -> tuple[Plan | None, list[Problem], Path | None]:
    """The workspace's parex.toml as configuration (agents, [run]) for `callN:` and inline plans.

    A configuration with errors gives no plan: its problems are reported (on that file) and nothing runs.
    """
    config = workspace / WORKSPACE_PLAN
    if not config.is_file():
        return Plan(tasks=[], agents=builtin_agents(), run=RunConfig(), workspace=workspace), [], None
    got = resolve(config, running=False)
    if got.plan is None:
        return None, got.problems, config
    plan = got.plan
    return Plan(tasks=[], agents=plan.agents, run=plan.run, workspace=workspace, source=str(config),
                config_ranges=plan.config_ranges), got.problems, config


def pick_call_agent(config: Plan, chosen: str | None = None) -> str | None:
    """The agent for `callN:` prompts, which are prose: the front end's choice, else `[run] call_agent`,
    else a `default_agent` other than the shell, else the first model agent; else None. Prose never runs
    as shell commands unless the person chose "shell" for it."""
    if chosen:
        return chosen
    if config.run.call_agent:
        return config.run.call_agent
    if config.run.default_agent != SHELL:
        return config.run.default_agent
    models = [name for name, a in config.agents.items() if a.kind == "openai"]
    return models[0] if models else None


def _calls(text: str, source: str, workspace: Path, line_range: tuple[int, int] | None, running: bool,
           chosen: str | None) -> Resolved:
    base, problems, config = _workspace_config(workspace)
    tasks = parse_calls(text, line_range)
    last = max(len(LINE_BREAK.split(text)) - 1 - (1 if text.endswith(("\n", "\r")) else 0), 0)
    first_line = tasks[0].range if tasks else SourceRange.line(min(max(line_range[0], 0), last) if line_range else 0)
    if base is None:
        where: Path | str = in_order(problems)[0].format() if problems else str(config)
        problems.append(Problem("bad-config", f"the workspace configuration {config} has problems, so no `callN:` "
                                f"line runs (first: {where})", first_line, source))
        return Resolved(None, in_order(problems), workspace, config)
    if not tasks:
        if running:
            problems.append(Problem("no-tasks", "no `callN:` lines found (write e.g. `call1: add tests`)",
                                    first_line, source))
        return Resolved(None if running else Plan([], base.agents, base.run, workspace, source, "calls"),
                        in_order(problems), workspace, config)
    agent = pick_call_agent(base, chosen)
    if agent is None:
        where = config or workspace / WORKSPACE_PLAN
        problems.append(Problem("no-call-agent", (
            f"`{tasks[0].id}:` is a prompt in prose and no agent is set to answer it: in {where} add a model "
            '(`[agents.NAME]` with `kind = "openai"`, `base_url` and `model`), or set `[run] call_agent` to an '
            'agent such as "claude", or `call_agent = "shell"` to run `callN:` lines as shell commands'),
            first_line, source))
        return Resolved(None, in_order(problems), workspace, config)
    if agent not in base.agents:
        known = ", ".join(sorted(base.agents))
        problems.append(Problem("unknown-agent", f"the agent `{agent}` chosen for `callN:` lines is not defined "
                                f"(known: {known})", first_line, source))
        return Resolved(None, in_order(problems), workspace, config)
    for t in tasks:
        t.agent = agent
    plan = Plan(tasks=tasks, agents=base.agents, run=base.run, workspace=workspace, source=source, kind="calls")
    return Resolved(plan, in_order(problems + validate(plan)), workspace, config)
