"""Inline task lists from a request (`{"tasks": [TaskSpec, ...]}`, camelCase on the wire) → TaskSpec."""

from __future__ import annotations

from typing import Any

from parex_lsp.plan.fields import TASK_FIELDS, WIRE_TASK_NAMES, FieldError, did_you_mean, read_field
from parex_lsp.plan.model import Problem, TaskSpec


def parse_inline(tasks: Any, where: str = "<inline>") -> tuple[list[TaskSpec], list[Problem], set[tuple[int, str]]]:
    """The tasks, the problems, and the (task index, field) pairs already reported (see Plan.reported)."""
    problems: list[Problem] = []
    reported: set[tuple[int, str]] = set()

    def bad(msg: str, code: str = "wrong-type") -> None:
        problems.append(Problem(code, msg, None, where))

    if not isinstance(tasks, list):
        bad(f"`tasks` must be an array of tasks, not {type(tasks).__name__}")
        return [], problems, reported
    out: list[TaskSpec] = []
    for i, t in enumerate(tasks):
        at = f"tasks[{i}]"
        if not isinstance(t, dict):
            bad(f"{at} must be an object with `id` and `prompt`")
            continue
        fields: dict[str, Any] = {}
        for key, value in t.items():
            name = WIRE_TASK_NAMES.get(key) if isinstance(key, str) else None
            if name is None:
                bad(f"{at}: unknown field `{key}` ({did_you_mean(str(key), WIRE_TASK_NAMES)})", "unknown-field")
                continue
            if value is None and name not in ("id", "prompt"):
                continue  # JSON null: the default
            try:
                fields[name] = read_field(key, TASK_FIELDS[name], value)
            except FieldError as e:
                bad(f"{at}: {e}", e.code)
                reported.add((len(out), name))
        for key in ("id", "prompt"):
            if key not in t or t[key] is None:
                bad(f"{at}: `{key}` is missing: every task needs a string `{key}`", "missing-field")
                reported.add((len(out), key))
        out.append(TaskSpec(id=fields.get("id", f"#{i}"), prompt=fields.get("prompt", ""), agent=fields.get("agent"),
                            depends_on=fields.get("depends_on", []), files=fields.get("files", []),
                            retries=fields.get("retries"), timeout=fields.get("timeout"),
                            lock_timeout=fields.get("lock_timeout"), max_cost=fields.get("max_cost"),
                            merge=fields.get("merge"), check=fields.get("check"), best_of=fields.get("best_of"),
                            agents=fields.get("agents", []),
                            context=fields.get("context", [])))
    return out, problems, reported
