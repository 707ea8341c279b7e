"""`parex.toml` → Plan, with the source position of every table and key kept for diagnostics.

tomllib gives values but no positions, so a light line scanner finds where each table and key
was written; values still come from tomllib, which stays the one judge of TOML syntax.
"""

from __future__ import annotations

import re
try:  # the compiled tomli parses large plans several times faster; same API and messages as tomllib
    import tomli as tomllib
except ImportError:  # pragma: no cover
    import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from parex_lsp.plan.durations import parse_duration
from parex_lsp.plan.model import AgentSpec, Plan, Problem, RunConfig, SourceRange, TaskSpec
from parex_lsp.plan.presets import builtin_agents

# A table header (`[run]`, `[[task]]`) or a key (`id = ...`) at the start of a line, and the rest of that line.
_ENTRY = re.compile(r"""^[ \t]*(?:(?P<open>\[\[?)[ \t]*(?P<name>[^\]\n]+?)[ \t]*\]\]?"""
                    r"""|(?P<key>"[^"\n]*"|'[^'\n]*'|[A-Za-z0-9_\-]+)[ \t]*=)[^\n]*""", re.M)
_TOML_ERR_POS = re.compile(r"\(at line (\d+), column (\d+)\)")

RUN_KEYS = {
    "max_concurrency": int, "isolation": str, "default_agent": str, "fail_fast": bool,
    "lock_timeout": "duration", "call_agent": str, "copy_files": list, "setup": str, "retry_backoff": (int, float),
    "retry_backoff_max": (int, float), "kill_grace": (int, float), "allow_dirty": bool, "retries": int,
}
AGENT_KEYS = {
    "kind": str, "command": list, "max_concurrency": int, "retry_on": list, "retry_timeouts": bool,
    "env": dict, "output_format": str, "base_url": str, "model": str, "api_key_env": str,
    "max_steps": int, "allow_commands": bool, "prices": dict,
    # model agents' finer settings, kept in AgentSpec.extra
    "system_prompt": str, "temperature": (int, float), "request_timeout": (int, float), "command_timeout": (int, float),
    "on_truncated": str, "tool_call_content": str, "strict_tools": bool, "max_response_bytes": int,
    "max_line_bytes": int,
}
EXTRA_AGENT_KEYS = {"system_prompt", "temperature", "request_timeout", "command_timeout", "on_truncated",
                    "tool_call_content", "strict_tools", "max_response_bytes", "max_line_bytes"}
TASK_KEYS = {
    "id": str, "prompt": str, "agent": str, "depends_on": list, "files": list, "retries": int,
    "timeout": "duration", "lock_timeout": "duration",
}
_TYPE_NAMES = {int: "an integer", str: "a string", bool: "true or false", list: "an array",
               dict: "a table", (int, float): "a number", "duration": 'a duration ("90s", "10m", "1h") or seconds'}


@dataclass
class _Positions:
    """Where each table header and key stands: table path → (header range, {key: range})."""

    tables: dict[tuple, SourceRange] = field(default_factory=dict)
    keys: dict[tuple, dict[str, SourceRange]] = field(default_factory=dict)

    def key(self, table: tuple, key: str) -> SourceRange | None:
        return self.keys.get(table, {}).get(key) or self.tables.get(table)


def _scan(text: str) -> _Positions:
    """One regex pass over the text (plans of 10,000 tasks are 60,000 lines): each header and key, with its line."""
    pos = _Positions()
    current: tuple = ()
    counts: dict[str, int] = {}
    line_no, counted_to, skip_until = 0, 0, -1
    for m in _ENTRY.finditer(text):
        start = m.start()
        if start < skip_until:
            continue  # inside a multi-line string
        line_no += text.count("\n", counted_to, start)
        counted_to = start
        line = m.group(0)
        end_col = len(line.rstrip())
        if m.group("open"):
            name = m.group("name").strip()
            parts = tuple(p.strip().strip("\"'") for p in name.split("."))
            if m.group("open") == "[[":
                idx = counts.get(name, 0)
                counts[name] = idx + 1
                current = parts + (idx,)
            else:
                current = parts
            pos.tables[current] = SourceRange(line_no, m.start("name") - start - 1, line_no, end_col)
            pos.keys.setdefault(current, {})
            continue
        key = m.group("key").strip("\"'")
        pos.keys.setdefault(current, {})[key] = SourceRange(line_no, m.start("key") - start, line_no, end_col)
        for quote in ('"""', "'''"):
            if quote in line and line.count(quote) % 2 == 1:
                close = text.find(quote, m.end())
                skip_until = len(text) if close < 0 else close + len(quote)
    return pos


class _Reader:
    """Reads typed fields out of one TOML table, recording a Problem for each bad one."""

    def __init__(self, path: str, pos: _Positions, problems: list[Problem]):
        self.path, self.pos, self.problems = path, pos, problems

    def problem(self, code: str, message: str, table: tuple, key: str | None = None) -> None:
        rng = self.pos.key(table, key) if key else self.pos.tables.get(table)
        self.problems.append(Problem(code, message, rng, self.path))

    def fields(self, data: dict, table: tuple, schema: dict, what: str) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in data.items():
            expected = schema.get(key)
            if expected is None:
                known = ", ".join(sorted(schema))
                self.problem("unknown-field", f"unknown field `{key}` in {what} (known: {known})", table, key)
                continue
            if expected == "duration":
                try:
                    out[key] = parse_duration(value)
                except ValueError as e:
                    self.problem("bad-timeout", f"{what}: `{key}`: {e}", table, key)
                continue
            ok = isinstance(value, expected) and not (expected in (int, (int, float)) and isinstance(value, bool))
            if not ok:
                self.problem("wrong-type", f"{what}: `{key}` must be {_TYPE_NAMES[expected]}, "
                             f"not {type(value).__name__} {value!r}", table, key)
                continue
            if expected is list and not all(isinstance(v, str) for v in value):
                self.problem("wrong-type", f"{what}: `{key}` must be an array of strings", table, key)
                continue
            out[key] = value
        return out


def parse_toml_plan(text: str, path: str, workspace: Path) -> tuple[Plan | None, list[Problem]]:
    """Parse a plan file; returns the plan (None if unreadable) and the problems found so far."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        m = _TOML_ERR_POS.search(str(e))
        line, col = (int(m.group(1)) - 1, int(m.group(2)) - 1) if m else (0, 0)
        msg = _TOML_ERR_POS.sub("", str(e)).strip()
        return None, [Problem("toml-syntax", f"invalid TOML: {msg}", SourceRange(line, col, line, col + 1), path)]

    problems: list[Problem] = []
    pos = _scan(text)
    rd = _Reader(path, pos, problems)
    for key in data:
        if key not in ("run", "agents", "task"):
            rd.problem("unknown-field", f"unknown top-level field `{key}` (known: run, agents, task)", (), key)

    run = RunConfig()
    config_ranges: dict[str, SourceRange] = {}
    run_data = data.get("run", {})
    if isinstance(run_data, dict):
        for key, value in rd.fields(run_data, ("run",), RUN_KEYS, "[run]").items():
            setattr(run, key, value)
        config_ranges = {k: r for k, r in pos.keys.get(("run",), {}).items()}
    else:
        rd.problem("wrong-type", "`run` must be a table", (), "run")

    agents = builtin_agents()
    agents_data = data.get("agents", {})
    if not isinstance(agents_data, dict):
        rd.problem("wrong-type", "`agents` must be a table of agents", (), "agents")
        agents_data = {}
    for name, spec in agents_data.items():
        table = ("agents", name)
        if not isinstance(spec, dict):
            rd.problem("wrong-type", f"agent `{name}` must be a table", ("agents",), name)
            continue
        fields = rd.fields(spec, table, AGENT_KEYS, f"[agents.{name}]")
        base = agents.get(name)
        agent = AgentSpec(name=name) if base is None else _copy_agent(base)
        for key, value in fields.items():
            if key in EXTRA_AGENT_KEYS:
                agent.extra[key] = value
            else:
                setattr(agent, key, value)
        if "command" in fields and "kind" not in fields and agent.kind == "shell":
            agent.kind = "command"
        if "base_url" in fields and "kind" not in fields:
            agent.kind = "openai"
        agent.range = pos.tables.get(table) or pos.key(("agents",), name)
        agents[name] = agent

    tasks: list[TaskSpec] = []
    task_data = data.get("task", [])
    if not isinstance(task_data, list):
        rd.problem("wrong-type", "`task` must be an array of tables: write each task as [[task]]", (), "task")
        task_data = []
    for i, spec in enumerate(task_data):
        table = ("task", i)
        if not isinstance(spec, dict):
            rd.problem("wrong-type", f"task #{i + 1} must be a table", table)
            continue
        fields = rd.fields(spec, table, TASK_KEYS, f"task #{i + 1}")
        task_id = fields.pop("id", None)
        if task_id is None:
            rd.problem("missing-field", f"task #{i + 1} has no `id`", table)
            task_id = f"#{i + 1}"
        if "prompt" not in fields:
            rd.problem("missing-field", f"task `{task_id}` has no `prompt`", table, "id")
        field_ranges = dict(pos.keys.get(table, {}))
        tasks.append(TaskSpec(
            id=task_id, prompt=fields.get("prompt", ""), agent=fields.get("agent"),
            depends_on=list(fields.get("depends_on", [])), files=list(fields.get("files", [])),
            retries=fields.get("retries"), timeout=fields.get("timeout"),
            lock_timeout=fields.get("lock_timeout"),
            range=field_ranges.get("id") or pos.tables.get(table), field_ranges=field_ranges,
        ))
    plan = Plan(tasks=tasks, agents=agents, run=run, workspace=workspace, source=path, kind="toml",
                config_ranges=config_ranges)
    return plan, problems


def _copy_agent(a: AgentSpec) -> AgentSpec:
    return AgentSpec(**{f: (list(v) if isinstance(v, list) else dict(v) if isinstance(v, dict) else v)
                        for f in AgentSpec.__slots__ for v in [getattr(a, f)]})
