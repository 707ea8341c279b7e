"""Every key a plan may set, with its type and range, in one table read by the TOML and inline forms alike.

`read_field` turns a raw value into the value the plan keeps, or raises FieldError saying what is wrong
in words a person can act on. Cross-field rules (an agent's `command`, unknown agents, paths leaving the
workspace) are in validate.py; everything about one value is here.
"""

from __future__ import annotations

import difflib
import math
import re
from dataclasses import dataclass
from typing import Any

from parex_lsp.plan.durations import parse_duration
from parex_lsp.plan.resources import ResourceError, parse_resources

MAX_RETRIES = 100
MAX_CONCURRENCY = 100_000
MAX_STEPS = 10_000
MAX_BUDGET = 1e15  # USD or tokens: far beyond any real run, so a typo's extra zeros still read as a number
MAX_PLAN_ROUNDS = 20  # drafts a planner may send back for fixing
MAX_CANDIDATES = 20  # best_of: each candidate is a worktree and an agent run
MAX_KEEP_RUNS = 100_000


class FieldError(ValueError):
    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


@dataclass(frozen=True, slots=True)
class Field:
    """kind: string, bool, int, number, duration, strings (array of strings), patterns (workspace-relative
    globs), string-table, number-table, env-names (variable names), resources (plan/resources.py); `low`/`high` bound numbers (inclusive; `low_open`: exclusive)."""

    kind: str
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    choices: tuple[str, ...] = ()
    keys: tuple[str, ...] = ()  # number-table: the keys it may hold (empty: any)


_NAME = Field("string")
_DURATION = Field("duration", low=0, low_open=True)  # a timeout: positive
_DELAY = Field("duration", low=0)  # a wait that may be zero
_BUDGET = Field("number-table", low=0, low_open=True, high=MAX_BUDGET, keys=("usd", "tokens"))

RUN_FIELDS: dict[str, Field] = {
    "max_concurrency": Field("int", low=1, high=MAX_CONCURRENCY),
    "isolation": Field("string", choices=("none", "worktree")),
    "default_agent": _NAME,
    "call_agent": _NAME,
    "fail_fast": Field("bool"),
    "lock_timeout": _DURATION,
    "copy_files": Field("patterns"),
    "setup": Field("string"),
    "retries": Field("int", low=0, high=MAX_RETRIES),
    "retry_backoff": _DELAY,
    "retry_backoff_max": _DELAY,
    "kill_grace": _DELAY,
    "allow_dirty": Field("bool"),
    # spend and quota (engine/spend.py, engine/quota.py)
    "budget": _BUDGET,
    "rate_limit_wait_max": _DELAY,
    "merge": Field("string", choices=("auto", "review")),
    "verify": Field("string"),
    "check": Field("string"),
    # drafting plans (planner/) and the context every prompt starts with (engine/shared_context.py)
    "plan_agent": _NAME,
    "plan_rounds": Field("int", low=1, high=MAX_PLAN_ROUNDS),
    "context": Field("patterns"),
    "keep_runs": Field("int", low=1, high=MAX_KEEP_RUNS),  # runs kept under .parex/runs (cli/gc.py)
    # where attempts run (parex_lsp/executors): this machine, or a Ray cluster
    "executor": Field("string", choices=("local", "ray")),
    "ray_address": Field("string"),
    "env_passthrough": Field("env-names"),  # variables whose values reach remote attempts
}
AGENT_FIELDS: dict[str, Field] = {
    "kind": Field("string", choices=("shell", "command", "openai")),
    "command": Field("strings"),
    "max_concurrency": Field("int", low=1, high=MAX_CONCURRENCY),
    "retry_on": Field("strings"),
    "retry_timeouts": Field("bool"),
    "env": Field("string-table"),
    "output_format": Field("string", choices=("text", "json-lines")),
    "base_url": Field("string"),
    "model": Field("string"),
    "api_key_env": Field("string"),
    "max_steps": Field("int", low=1, high=MAX_STEPS),
    "allow_commands": Field("bool"),
    "prices": Field("number-table", low=0, high=1_000_000),
    "rate_limit_wait_max": _DELAY,
    "resources": Field("resources"),  # what one attempt needs on a cluster node (executor = "ray")
    # model agents' finer settings, kept in AgentSpec.extra
    "system_prompt": Field("string"),
    "temperature": Field("number", low=0, high=2),
    "request_timeout": _DURATION,
    "command_timeout": _DURATION,
    "on_truncated": Field("string", choices=("warn", "fail")),
    "tool_call_content": Field("string", choices=("empty", "null", "omit")),
    "strict_tools": Field("bool"),
    "max_response_bytes": Field("int", low=1, high=1 << 34),
    "max_line_bytes": Field("int", low=1, high=1 << 34),
}
EXTRA_AGENT_KEYS = {"system_prompt", "temperature", "request_timeout", "command_timeout", "on_truncated",
                    "tool_call_content", "strict_tools", "max_response_bytes", "max_line_bytes"}
TASK_FIELDS: dict[str, Field] = {
    "id": Field("string"),
    "prompt": Field("string"),
    "agent": _NAME,
    "depends_on": Field("strings"),
    "files": Field("patterns"),
    "retries": Field("int", low=0, high=MAX_RETRIES),
    "timeout": _DURATION,
    "lock_timeout": _DURATION,
    "max_cost": Field("number", low=0, low_open=True, high=MAX_BUDGET),  # USD
    "merge": Field("string", choices=("auto", "review")),
    "check": Field("string"),
    "best_of": Field("int", low=1, high=MAX_CANDIDATES),
    "agents": Field("strings"),
    "context": Field("patterns"),
}
# Inline task lists use the wire's camelCase names for the same fields.
WIRE_TASK_NAMES = {"id": "id", "prompt": "prompt", "agent": "agent", "dependsOn": "depends_on", "files": "files",
                   "retries": "retries", "timeout": "timeout", "lockTimeout": "lock_timeout",
                   "maxCost": "max_cost", "merge": "merge", "check": "check", "bestOf": "best_of",
                   "agents": "agents", "context": "context"}

_WHAT = {"string": "a string", "bool": "true or false", "int": "an integer", "number": "a number",
         "duration": 'a duration ("90s", "10m", "1h") or seconds', "strings": "an array of strings",
         "patterns": "an array of file patterns (strings)", "string-table": "a table of strings",
         "number-table": "a table of numbers", "env-names": "an array of environment variable names",
         "resources": 'a table of resources such as { CPU = 1, memory = "2GB" }'}
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def difflib_close(key: str, known: object) -> bool:
    return bool(difflib.get_close_matches(key, [str(k) for k in known], n=1, cutoff=0.6))  # type: ignore[attr-defined]


def did_you_mean(key: str, known: object) -> str:
    """` (did you mean `x`?)` for a near miss, else the list of known keys."""
    names = sorted(str(k) for k in known)  # type: ignore[attr-defined]
    close = difflib.get_close_matches(key, names, n=1, cutoff=0.6)
    return f"did you mean `{close[0]}`?" if close else f"known: {', '.join(names)}"


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _string(value: Any, what: str) -> str:
    if "\0" in value:
        raise FieldError("bad-value", f"{what} contains a NUL character")
    return str(value)


def _range(value: int | float, f: Field, name: str) -> None:
    # ints compare exactly with float bounds; float() of a 400-digit TOML integer would overflow
    if isinstance(value, float) and not math.isfinite(value):
        raise FieldError("bad-value", f"`{name}` must be a finite number, not {value!r}")
    if f.low is not None and (value <= f.low if f.low_open else value < f.low):
        bound = f"more than {f.low:g}" if f.low_open else f"at least {f.low:g}"
        raise FieldError("bad-value", f"`{name}` must be {bound}, not {_shown(value)}")
    if f.high is not None and value > f.high:
        raise FieldError("bad-value", f"`{name}` must be at most {f.high:g}, not {_shown(value)}")


def read_field(name: str, f: Field, value: Any) -> Any:
    """The value a plan keeps for key `name`; FieldError naming the problem."""
    def wrong() -> FieldError:
        return FieldError("wrong-type", f"`{name}` must be {_WHAT[f.kind]}, not {type(value).__name__} {_shown(value)}")

    kind = f.kind
    if kind == "duration":
        try:
            return parse_duration(value, allow_zero=not f.low_open)
        except ValueError as e:
            raise FieldError("bad-duration", f"`{name}`: {e}") from None
    if kind == "bool":
        if not isinstance(value, bool):
            raise wrong()
        return value
    if kind in ("int", "number"):
        ok = isinstance(value, int) or (kind == "number" and isinstance(value, float))
        if not ok or isinstance(value, bool):
            raise wrong()
        _range(value, f, name)
        return value
    if kind == "string":
        if not isinstance(value, str):
            raise wrong()
        _string(value, f"`{name}`")
        if f.choices and value not in f.choices:
            options = " or ".join(f'"{c}"' for c in f.choices)
            raise FieldError("bad-value", f"`{name}` must be {options}, not {_shown(value)}")
        return value
    if kind in ("strings", "patterns"):
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise wrong()
        for v in value:
            _string(v, f"`{name}` entry {_shown(v)}")
        return list(value)
    if kind == "resources":
        try:
            return parse_resources(value, name)
        except ResourceError as e:
            raise FieldError("bad-value", str(e)) from None
    if kind == "env-names":
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise wrong()
        for v in value:
            if not _ENV_NAME.fullmatch(v):
                raise FieldError("bad-value", f"`{name}`: {_shown(v)} is not an environment variable name")
        return list(value)
    if kind == "string-table":
        if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
            raise wrong()
        for k, v in value.items():
            if not k or "=" in k or "\0" in k:
                raise FieldError("bad-value", f"`{name}`: {_shown(k)} is not a usable variable name")
            _string(v, f"`{name}.{k}`")
        return dict(value)
    if kind == "number-table":
        if not isinstance(value, dict):
            raise wrong()
        out: dict[str, float] = {}
        for k, v in value.items():
            if f.keys and k not in f.keys:
                raise FieldError("unknown-field", f"`{name}` has no key `{k}` ({did_you_mean(k, f.keys)})")
            if not isinstance(v, (int, float)) or isinstance(v, bool):
                raise FieldError("wrong-type", f"`{name}.{k}` must be a number, not {type(v).__name__} {_shown(v)}")
            _range(v, f, f"{name}.{k}")
            out[k] = float(v)
        return out
    raise AssertionError(f"unknown field kind {kind!r}")  # pragma: no cover - the table above is closed
