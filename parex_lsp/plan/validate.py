"""Semantic checks every plan passes before it runs, whatever its source; every problem at once."""

from __future__ import annotations

import os
import re
from pathlib import Path

from parex_lsp.plan.fields import did_you_mean, difflib_close
from parex_lsp.plan.ids import id_problem
from parex_lsp.plan.model import ERROR, WARNING, AgentSpec, Plan, Problem, SourceRange, TaskSpec, in_order

_GLOB_CHARS = set("*?[")


def literal_prefix(pattern: str) -> str:
    """The part of a glob before its first wildcard segment: `api/**/*.py` → `api`."""
    parts = []
    for part in pattern.split("/"):
        if not _GLOB_CHARS.isdisjoint(part):
            break
        if part and part != ".":
            parts.append(part)
    return "/".join(parts)


class RealPaths:
    """`realpath` of workspace-relative paths, resolving each directory once (plans repeat directories)."""

    def __init__(self, workspace: Path):
        self.root = os.path.realpath(workspace)
        self._dirs: dict[str, str] = {"": self.root}

    def __call__(self, rel: str) -> str:
        head, tail = os.path.split(rel)
        if head not in self._dirs:
            self._dirs[head] = self(head)
        full = os.path.join(self._dirs[head], tail) if tail else self._dirs[head]
        return os.path.realpath(full) if os.path.islink(full) else full


def escape_problem(pattern: str, workspace: Path | RealPaths, key: str = "files") -> str | None:
    """Why a `files` (or other path) pattern leaves the workspace (absolute, `..` or a symlink), or None."""
    if not pattern.strip():
        return f"empty `{key}` pattern"
    if "\0" in pattern:
        return f"`{key}` pattern {pattern!r} contains a NUL character"
    if pattern.startswith(("/", "~", "\\")) or re.match(r"^[A-Za-z]:[\\/]", pattern):
        return f"`{key}` pattern {pattern!r} is absolute: write it relative to the workspace"
    if ".." in pattern.replace("\\", "/").split("/"):
        return f"`{key}` pattern {pattern!r} leaves the workspace through `..`"
    real = workspace if isinstance(workspace, RealPaths) else RealPaths(workspace)
    target = real(literal_prefix(pattern))
    if target != real.root and not target.startswith(real.root.rstrip("/") + "/"):
        return f"`{key}` pattern {pattern!r} leaves the workspace through a symlink (to {target})"
    return None


def _transient_free(agent: AgentSpec) -> bool:
    """An agent none of whose failures is ever transient, so `retries` never retries anything."""
    return agent.kind != "openai" and not agent.retry_on and not agent.retry_timeouts


def _unpriced_agents(plan: Plan) -> list[str]:
    """The agents the tasks use that can spend money but report no cost (shell commands spend none)."""
    used = {name for t in plan.tasks for name in t.candidate_agents(plan.run.default_agent)}
    return sorted(name for name in used if (agent := plan.agents.get(name)) is not None and (
        (agent.kind == "openai" and not agent.prices)
        or (agent.kind == "command" and agent.output_format != "json-lines")))


def nothing_to_run(plan: Plan) -> Problem | None:
    """A plan about to run needs a task; a parex.toml holding only `[run]` and `[agents]` is still a valid
    workspace configuration (for `callN:` documents), so this is checked only when running."""
    if plan.tasks:
        return None
    return Problem("no-tasks", "the plan has no tasks: add a [[task]] with `id` and `prompt`",
                   SourceRange(0, 0, 0, 0) if plan.source else None, plan.source or "<inline>")


def validate(plan: Plan) -> list[Problem]:
    """Every problem of `plan`, each once, in document order."""
    problems: list[Problem] = []
    path = plan.source
    known_agents = ", ".join(sorted(plan.agents))

    def add(code: str, msg: str, task: TaskSpec | None = None, key: str | None = None,
            severity: str = ERROR) -> None:
        rng = None
        if task is not None:
            rng = task.field_ranges.get(key) if key else None
            rng = rng or task.range
        problems.append(Problem(code, msg, rng, path, severity))

    def agent_hint(name: str) -> str:
        return did_you_mean(name, plan.agents) if difflib_close(name, plan.agents) else f"known: {known_agents}"

    run = plan.run
    run_at = plan.config_ranges.get
    if run.default_agent not in plan.agents:
        problems.append(Problem("unknown-agent", f"[run] default_agent {run.default_agent!r} is not defined "
                                f"({agent_hint(run.default_agent)})", run_at("default_agent"), path))
    if run.call_agent is not None and run.call_agent not in plan.agents:
        problems.append(Problem("unknown-agent", f"[run] call_agent {run.call_agent!r} is not defined "
                                f"({agent_hint(run.call_agent)})", run_at("call_agent"), path))
    real = RealPaths(plan.workspace)
    for pattern in run.copy_files:
        why = escape_problem(pattern, real, "copy_files")
        if why:
            problems.append(Problem("path-escape", f"[run] {why}", run_at("copy_files"), path))
    for pattern in run.context:
        why = escape_problem(pattern, real, "context")
        if why:
            problems.append(Problem("path-escape", f"[run] {why}", run_at("context"), path))
    if run.executor == "ray" and run.isolation == "none":
        problems.append(Problem("bad-value", '[run] executor = "ray" runs each attempt in a git worktree on a '
                                'cluster node, so it cannot share the workspace: remove isolation = "none" '
                                '(worktree is the default under Ray)', run_at("isolation") or run_at("executor"),
                                path))
    if run.plan_agent is not None and plan.agents.get(run.plan_agent, AgentSpec("")).kind != "openai":
        what = "is not defined" if run.plan_agent not in plan.agents else "is not a model agent (kind \"openai\")"
        problems.append(Problem("unknown-agent", f"[run] plan_agent {run.plan_agent!r} {what}",
                                run_at("plan_agent"), path))
    unpriced = _unpriced_agents(plan)
    if "usd" in run.budget and unpriced:
        problems.append(Problem(
            "budget-unpriced", f"[run] budget usd: {', '.join(f'`{n}`' for n in unpriced)} report(s) no cost, so "
            "their spend never counts toward it (give a model agent `prices = { input = …, output = … }` in USD "
            "per million tokens; of command agents only `output_format = \"json-lines\"` ones report a cost)",
            run_at("budget"), path, WARNING))
    for name, agent in plan.agents.items():
        def agent_problem(msg: str, name: str = name, agent: AgentSpec = agent) -> None:
            problems.append(Problem("bad-agent", f"agent `{name}`: {msg}", agent.range, path))
        if agent.kind == "command" and not agent.command:
            agent_problem("a command agent needs `command`, an argv list such as [\"mytool\", \"{prompt}\"]")
        elif agent.kind == "openai" and not (agent.base_url and agent.model):
            agent_problem("an openai agent needs `base_url` and `model`")

    seen: dict[str, TaskSpec] = {}
    reported: dict[int, set[str]] = {}
    for n, key in plan.reported:
        reported.setdefault(n, set()).add(key)
    for i, t in enumerate(plan.tasks):
        said = reported.get(i, set())
        if "id" not in said:
            why = id_problem(t.id)
            if why:
                add("bad-id", why, t, "id")
        if t.id in seen:
            first = seen[t.id].range
            where = f" (first defined at line {first.start_line + 1})" if first else ""
            add("duplicate-id", f"duplicate task id `{t.id}`{where}", t, "id")
        else:
            seen[t.id] = t
        if "prompt" not in said and not t.prompt.strip():
            add("empty-prompt", f"task `{t.id}` has an empty prompt", t, "prompt")
        agent_name = t.agent or run.default_agent
        task_agent = plan.agents.get(agent_name)
        if task_agent is None:
            if t.agent is not None:  # else [run] default_agent is reported once, above
                add("unknown-agent", f"task `{t.id}`: unknown agent `{agent_name}` ({agent_hint(agent_name)})",
                    t, "agent")
        elif t.retries and _transient_free(task_agent):
            add("retries-unused", f"task `{t.id}`: `retries = {t.retries}` never applies: agent `{agent_name}` "
                "marks no failure as transient (give the agent `retry_on` patterns or `retry_timeouts = true`)",
                t, "retries", WARNING)
        for name in t.agents:
            if name not in plan.agents:
                add("unknown-agent", f"task `{t.id}`: `agents` names unknown agent `{name}` ({agent_hint(name)})",
                    t, "agents")
        if t.agents and t.best_of is not None:
            add("bad-value", f"task `{t.id}`: set `best_of` (candidates of one agent) or `agents` (one candidate "
                "each), not both", t, "best_of")
        for dep in t.depends_on:
            if dep == t.id:
                add("dependency-cycle", f"task `{t.id}` depends on itself", t, "depends_on")
        for pattern in t.files:
            why = escape_problem(pattern, real)
            if why:
                add("path-escape", f"task `{t.id}`: {why}", t, "files")
        for pattern in t.context:
            why = escape_problem(pattern, real, "context")
            if why:
                add("path-escape", f"task `{t.id}`: {why}", t, "context")
    ids = {t.id for t in plan.tasks}
    for t in plan.tasks:
        for dep in t.depends_on:
            if dep not in ids:
                hint = did_you_mean(dep, ids) if difflib_close(dep, ids) else "no task has that id"
                add("unknown-dependency", f"task `{t.id}` depends on unknown task `{dep}` ({hint})", t, "depends_on")
    for cycle in find_cycles(plan.tasks):
        t = seen[cycle[0]]
        add("dependency-cycle", "dependency cycle: " + " -> ".join(cycle + [cycle[0]]), t, "depends_on")
    return in_order(problems)


def find_cycles(tasks: list[TaskSpec]) -> list[list[str]]:
    """One cycle (as a list of ids) per strongly connected group of tasks; iterative, so deep plans are fine."""
    deps = {t.id: [d for d in t.depends_on if d != t.id] for t in tasks}
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    cycles: list[list[str]] = []
    for root in deps:
        if state.get(root):
            continue
        path: list[str] = []
        stack = [(root, iter(deps[root]))]
        state[root] = 1
        path.append(root)
        while stack:
            node, children = stack[-1]
            for child in children:
                if child not in deps:
                    continue
                if state.get(child) == 1:
                    cycles.append(path[path.index(child):])
                elif not state.get(child):
                    state[child] = 1
                    path.append(child)
                    stack.append((child, iter(deps[child])))
                    break
            else:
                stack.pop()
                state[node] = 2
                path.pop()
    return cycles
