"""Inline task lists from a request (`{"tasks": [TaskSpec, ...]}`, camelCase on the wire) → TaskSpec."""

from __future__ import annotations

from typing import Any

from parex_lsp.plan.durations import parse_duration
from parex_lsp.plan.model import Problem, TaskSpec

_FIELDS = {"id", "prompt", "agent", "dependsOn", "files", "retries", "timeout", "lockTimeout"}


def parse_inline(tasks: Any, where: str = "<inline>") -> tuple[list[TaskSpec], list[Problem]]:
    problems: list[Problem] = []

    def bad(msg: str, code: str = "wrong-type") -> None:
        problems.append(Problem(code, msg, None, where))

    if not isinstance(tasks, list):
        bad(f"`tasks` must be an array of tasks, not {type(tasks).__name__}")
        return [], problems
    out: list[TaskSpec] = []
    for i, t in enumerate(tasks):
        at = f"tasks[{i}]"
        if not isinstance(t, dict):
            bad(f"{at} must be an object with `id` and `prompt`")
            continue
        for key in t:
            if key not in _FIELDS:
                bad(f"{at}: unknown field `{key}` (known: {', '.join(sorted(_FIELDS))})", "unknown-field")
        task_id, prompt = t.get("id"), t.get("prompt")
        if not isinstance(task_id, str):
            bad(f"{at}.id must be a string", "missing-field" if task_id is None else "wrong-type")
            task_id = f"#{i}"
        if not isinstance(prompt, str):
            bad(f"{at}.prompt must be a string", "missing-field" if prompt is None else "wrong-type")
            prompt = ""
        spec = TaskSpec(id=task_id, prompt=prompt)
        agent = t.get("agent")
        if agent is not None and not isinstance(agent, str):
            bad(f"{at}.agent must be a string")
        else:
            spec.agent = agent
        for key, attr in (("dependsOn", "depends_on"), ("files", "files")):
            value = t.get(key, [])
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                bad(f"{at}.{key} must be an array of strings")
            else:
                setattr(spec, attr, list(value))
        retries = t.get("retries")
        if retries is not None and (not isinstance(retries, int) or isinstance(retries, bool)):
            bad(f"{at}.retries must be an integer")
        else:
            spec.retries = retries
        for key, attr in (("timeout", "timeout"), ("lockTimeout", "lock_timeout")):
            if t.get(key) is not None:
                try:
                    setattr(spec, attr, parse_duration(t[key]))
                except ValueError as e:
                    bad(f"{at}.{key}: {e}", "bad-timeout")
        out.append(spec)
    return out, problems
