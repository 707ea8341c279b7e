"""Semantic checks every plan passes before it runs, whatever its source; every problem at once."""

from __future__ import annotations

import os
import re
from pathlib import Path

from parex_lsp.plan.model import Plan, Problem, TaskSpec

TASK_ID = re.compile(r"^[A-Za-z0-9_.\-]+$")
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


def escape_problem(pattern: str, workspace: Path | RealPaths) -> str | None:
    """Why a `files` pattern leaves the workspace (through an absolute path, `..` or a symlink), or None."""
    if not pattern.strip():
        return "empty `files` pattern"
    if pattern.startswith(("/", "~")) or re.match(r"^[A-Za-z]:[\\/]", pattern):
        return f"`files` pattern {pattern!r} is absolute: write it relative to the workspace"
    if ".." in pattern.replace("\\", "/").split("/"):
        return f"`files` pattern {pattern!r} leaves the workspace through `..`"
    real = workspace if isinstance(workspace, RealPaths) else RealPaths(workspace)
    target = real(literal_prefix(pattern))
    if target != real.root and not target.startswith(real.root.rstrip("/") + "/"):
        return f"`files` pattern {pattern!r} leaves the workspace through a symlink (to {target})"
    return None


def validate(plan: Plan) -> list[Problem]:
    problems: list[Problem] = []
    path = plan.source

    def add(code: str, msg: str, task: TaskSpec | None = None, key: str | None = None) -> None:
        rng = None
        if task is not None:
            rng = task.field_ranges.get(key) if key else None
            rng = rng or task.range
        problems.append(Problem(code, msg, rng, path))

    run = plan.run
    run_at = plan.config_ranges.get
    if run.isolation not in ("none", "worktree"):
        problems.append(Problem("bad-value", f'[run] isolation must be "none" or "worktree", not {run.isolation!r}',
                                run_at("isolation"), path))
    if run.max_concurrency < 1:
        problems.append(Problem("bad-value", "[run] max_concurrency must be at least 1", run_at("max_concurrency"), path))
    if run.retries < 0:
        problems.append(Problem("bad-value", "[run] retries must be 0 or more", run_at("retries"), path))
    if run.default_agent not in plan.agents:
        problems.append(Problem("unknown-agent", f"[run] default_agent {run.default_agent!r} is not defined "
                                f"(known: {', '.join(sorted(plan.agents))})", run_at("default_agent"), path))
    if run.call_agent is not None and run.call_agent not in plan.agents:
        problems.append(Problem("unknown-agent", f"[run] call_agent {run.call_agent!r} is not defined "
                                f"(known: {', '.join(sorted(plan.agents))})", run_at("call_agent"), path))
    for name, agent in plan.agents.items():
        def agent_problem(msg: str) -> None:
            problems.append(Problem("bad-agent", f"agent `{name}`: {msg}", agent.range, path))
        if agent.kind not in ("shell", "command", "openai"):
            agent_problem(f'kind must be "shell", "command" or "openai", not {agent.kind!r}')
        elif agent.kind == "command" and not agent.command:
            agent_problem("a command agent needs `command`, an argv list such as [\"mytool\", \"{prompt}\"]")
        elif agent.kind == "openai" and not (agent.base_url and agent.model):
            agent_problem("an openai agent needs `base_url` and `model`")
        if agent.max_concurrency is not None and agent.max_concurrency < 1:
            agent_problem("max_concurrency must be at least 1")
        if agent.output_format not in ("text", "json-lines"):
            agent_problem('output_format must be "text" or "json-lines"')

    seen: dict[str, TaskSpec] = {}
    real = RealPaths(plan.workspace)
    for t in plan.tasks:
        if not TASK_ID.match(t.id):
            add("bad-id", f"task id {t.id!r} may only contain letters, digits, `_`, `.` and `-`", t, "id")
        if t.id in seen:
            first = seen[t.id].range
            where = f" (first defined at line {first.start_line + 1})" if first else ""
            add("duplicate-id", f"duplicate task id `{t.id}`{where}", t, "id")
        else:
            seen[t.id] = t
        if not t.prompt.strip():
            add("empty-prompt", f"task `{t.id}` has an empty prompt", t, "prompt")
        agent = t.agent or run.default_agent
        if agent not in plan.agents:
            add("unknown-agent", f"task `{t.id}`: unknown agent `{agent}` (known: {', '.join(sorted(plan.agents))})",
                t, "agent")
        if t.retries is not None and t.retries < 0:
            add("bad-value", f"task `{t.id}`: retries must be 0 or more", t, "retries")
        for dep in t.depends_on:
            if dep == t.id:
                add("dependency-cycle", f"task `{t.id}` depends on itself", t, "depends_on")
        for pattern in t.files:
            why = escape_problem(pattern, real)
            if why:
                add("path-escape", f"task `{t.id}`: {why}", t, "files")
    ids = {t.id for t in plan.tasks}
    for t in plan.tasks:
        for dep in t.depends_on:
            if dep not in ids:
                add("unknown-dependency", f"task `{t.id}` depends on unknown task `{dep}`", t, "depends_on")
    for cycle in find_cycles(plan.tasks):
        t = seen[cycle[0]]
        add("dependency-cycle", "dependency cycle: " + " -> ".join(cycle + [cycle[0]]), t, "depends_on")
    return problems


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
