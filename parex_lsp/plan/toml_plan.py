"""`parex.toml` → Plan, with the source position of every table and key kept for diagnostics.

Whatever the text, the answer is a plan or problems with positions: TOML syntax errors, nesting too
deep for the parser, numbers too long to convert, wrong types and out-of-range values alike.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import tomli as tomllib  # compiled: parses large plans several times faster than tomllib, same API

from parex_lsp.plan.fields import (
    AGENT_FIELDS,
    EXTRA_AGENT_KEYS,
    RUN_FIELDS,
    TASK_FIELDS,
    Field,
    FieldError,
    did_you_mean,
    read_field,
)
from parex_lsp.plan.model import AgentSpec, Plan, Problem, RunConfig, SourceRange, TaskSpec
from parex_lsp.plan.positions import Positions, deep_nesting, scan
from parex_lsp.plan.presets import builtin_agents

_TOML_ERR_POS = re.compile(r"\(at line (\d+), column (\d+)\)")
_LONG_NUMBER = re.compile(r"[0-9_]{4000,}")
TOML_NESTING = 400  # tomli's own limit on nested inline arrays/tables
TOP_LEVEL = ("run", "agents", "task")

# Kept for callers that list the keys of each table.
RUN_KEYS, AGENT_KEYS, TASK_KEYS = RUN_FIELDS, AGENT_FIELDS, TASK_FIELDS


def _load(text: str, path: str) -> dict[str, Any] | Problem:
    """The TOML document; or, whatever the parser raised, the one problem at its position."""
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        m = _TOML_ERR_POS.search(str(e))
        line, col = (int(m.group(1)) - 1, int(m.group(2)) - 1) if m else (0, 0)
        msg = _TOML_ERR_POS.sub("", str(e)).strip()
        return Problem("toml-syntax", f"invalid TOML: {msg}", SourceRange(line, col, line, col + 1), path)
    except RecursionError:  # tomli refuses 400 levels this way; a deep caller's stack may give out sooner
        where = deep_nesting(text, TOML_NESTING) or deep_nesting(text, 50) or SourceRange(0, 0, 0, 1)
        return Problem("toml-syntax", "invalid TOML: arrays or inline tables nested too deep "
                       f"(at most {TOML_NESTING} levels)", where, path)
    except Exception as e:  # e.g. ValueError: an integer of thousands of digits
        m = _LONG_NUMBER.search(text)
        rng = _offset_range(text, m.start()) if m else SourceRange(0, 0, 0, 1)
        return Problem("toml-syntax", f"invalid TOML: {e}", rng, path)


def _offset_range(text: str, offset: int) -> SourceRange:
    line = text.count("\n", 0, offset)
    col = offset - (text.rfind("\n", 0, offset) + 1)
    return SourceRange(line, col, line, col + 1)


class _Reader:
    """Reads typed fields out of one TOML table, recording a Problem for each bad one."""

    def __init__(self, path: str, pos: Positions, problems: list[Problem]):
        self.path, self.pos, self.problems = path, pos, problems

    def problem(self, code: str, message: str, at: tuple[Any, ...]) -> None:
        # where the scanner lost track (it is lighter than the parser), the problem still has a place
        self.problems.append(Problem(code, message, self.pos.find(at) or SourceRange(0, 0, 0, 0), self.path))

    def fields(self, data: dict[str, Any], table: tuple[Any, ...], schema: dict[str, Field],
               what: str) -> tuple[dict[str, Any], set[str]]:
        """The good fields, and the names of those that were present but bad (already reported)."""
        out: dict[str, Any] = {}
        bad: set[str] = set()
        for key, value in data.items():
            f = schema.get(key)
            if f is None:
                self.problem("unknown-field", f"unknown field `{key}` in {what} ({did_you_mean(key, schema)})",
                             table + (key,))
                continue
            try:
                out[key] = read_field(key, f, value)
            except FieldError as e:
                self.problem(e.code, f"{what}: {e}", table + (key,))
                bad.add(key)
        return out, bad


def parse_toml_plan(text: str, path: str, workspace: Path) -> tuple[Plan | None, list[Problem]]:
    """Parse a plan file; returns the plan (None if it is not TOML) and the problems found so far."""
    data = _load(text, path)
    if isinstance(data, Problem):
        return None, [data]
    problems: list[Problem] = []
    pos = scan(text)
    rd = _Reader(path, pos, problems)
    for key in data:
        if key not in TOP_LEVEL:
            rd.problem("unknown-field", f"unknown top-level field `{key}` ({did_you_mean(key, TOP_LEVEL)})", (key,))

    run = RunConfig()
    run_data = data.get("run", {})
    if isinstance(run_data, dict):
        for key, value in rd.fields(run_data, ("run",), RUN_FIELDS, "[run]")[0].items():
            setattr(run, key, value)
        if run.executor == "ray" and "isolation" not in run_data:
            run.isolation = "worktree"  # a remote attempt works in a worktree of its own
    else:
        rd.problem("wrong-type", "`run` must be a table", ("run",))
    config_ranges = dict(pos.keys.get(("run",), {}))

    agents = builtin_agents()
    agents_data = data.get("agents", {})
    if not isinstance(agents_data, dict):
        rd.problem("wrong-type", "`agents` must be a table of agents", ("agents",))
        agents_data = {}
    for name, spec in agents_data.items():
        table = ("agents", name)
        if not isinstance(spec, dict):
            rd.problem("wrong-type", f"agent `{name}` must be a table", table)
            continue
        fields, _ = rd.fields(spec, table, AGENT_FIELDS, f"[agents.{name}]")
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
        agent.range = pos.find(table)
        agents[name] = agent

    tasks: list[TaskSpec] = []
    reported: set[tuple[int, str]] = set()
    task_data = data.get("task", [])
    if not isinstance(task_data, list):
        rd.problem("wrong-type", "`task` must be an array of tables: write each task as [[task]]", ("task",))
        task_data = []
    for i, spec in enumerate(task_data):
        table = ("task", i)
        if not isinstance(spec, dict):
            rd.problem("wrong-type", f"task #{i + 1} must be a table", table)
            continue
        fields, bad = rd.fields(spec, table, TASK_FIELDS, f"task #{i + 1}")
        reported.update((len(tasks), key) for key in bad)
        task_id = fields.pop("id", None)
        if task_id is None:
            if "id" not in bad:
                rd.problem("missing-field", f"task #{i + 1} has no `id`", table)
            reported.add((len(tasks), "id"))
            task_id = f"#{i + 1}"
        if "prompt" not in spec:
            rd.problem("missing-field", f"task `{task_id}` has no `prompt`", table + ("id",))
            reported.add((len(tasks), "prompt"))
        field_ranges = dict(pos.keys.get(table, {}))
        tasks.append(TaskSpec(
            id=task_id, prompt=fields.get("prompt", ""), agent=fields.get("agent"),
            depends_on=list(fields.get("depends_on", [])), files=list(fields.get("files", [])),
            retries=fields.get("retries"), timeout=fields.get("timeout"),
            lock_timeout=fields.get("lock_timeout"), max_cost=fields.get("max_cost"), merge=fields.get("merge"),
            check=fields.get("check"), best_of=fields.get("best_of"), agents=list(fields.get("agents", [])),
            context=list(fields.get("context", [])),
            range=field_ranges.get("id") or pos.find(table), field_ranges=field_ranges,
        ))
    plan = Plan(tasks=tasks, agents=agents, run=run, workspace=workspace, source=path, kind="toml",
                config_ranges=config_ranges, reported=reported)
    return plan, problems


def _copy_agent(a: AgentSpec) -> AgentSpec:
    return copy.deepcopy(a)  # a preset's lists and tables are never shared with a plan's agent
