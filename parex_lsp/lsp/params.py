"""Params of parex's own methods: plain JSON in, checked once at the edge, typed values out.

pygls turns the params of methods it does not know into namedtuples, which lose keys that are not
Python identifiers; `plain_converter` keeps them as the dicts the JSON decoder made. Every checker
collects all problems and raises one `InvalidParams` naming each of them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from pygls.exceptions import JsonRpcInvalidParams
from pygls.protocol import JsonRPCNotification, JsonRPCRequestMessage, default_converter

TASK_ID = re.compile(r"^[A-Za-z0-9_.-]+$")
RUN_ID = re.compile(r"^[A-Za-z0-9_.-]+$")
ISOLATIONS = ("none", "worktree")
MAX_TASKS = 10_000  # tasks one request may run (docs/lsp.md): beyond it, InvalidParams
MAX_LINE = 2**31 - 1  # LSP positions are uint32 on the wire; editors' lines fit in int32
RUN_KEYS = {"plan", "maxConcurrency", "isolation", "only", "resume", "detach", "workDoneToken", "merge", "executor",
            "rayAddress"}
EXECUTORS = ("local", "ray")
MERGES = ("auto", "review")


def plain_converter() -> Any:
    """pygls' converter, except that params of non-LSP methods stay plain dicts and lists."""
    converter = default_converter()  # type: ignore[no-untyped-call]  # pygls' factory is unannotated

    def keep(obj: dict[str, Any], cls: type) -> Any:
        return cls(**{"params": None, **obj})

    converter.register_structure_hook(JsonRPCRequestMessage, keep)
    converter.register_structure_hook(JsonRPCNotification, keep)
    return converter


def invalid(problems: list[str]) -> JsonRpcInvalidParams:
    return JsonRpcInvalidParams(message="; ".join(problems))


@dataclass(slots=True)
class PlanRef:
    """Where a plan comes from: a document (`uri`, optional line range) or an inline task list."""

    uri: str | None = None
    lines: tuple[int, int] | None = None  # zero-based, inclusive
    tasks: list[Any] | None = None


@dataclass(slots=True)
class RunRequest:
    plan: PlanRef
    max_concurrency: int | None = None
    isolation: str | None = None
    only: list[str] | None = None
    resume: str | None = None
    merge: str | None = None  # "auto" | "review": overrides the plan's merge mode for this run
    executor: str | None = None  # "local" | "ray": overrides `[run] executor`
    ray_address: str | None = None  # overrides `[run] ray_address`
    detach: bool = False
    work_done_token: int | str | None = None
    raw: dict[str, Any] = field(default_factory=dict)


def _object(params: Any, what: str) -> dict[str, Any]:
    if params is None:
        return {}
    if isinstance(params, dict):
        return params
    if isinstance(params, (list, tuple)) and len(params) == 1 and isinstance(params[0], dict):
        return params[0]  # executeCommand arguments: [params]
    raise invalid([f"{what} params must be an object, not {_type(params)}"])


def _type(value: Any) -> str:
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean", int: "a number",
            float: "a number", type(None): "null"}.get(type(value), type(value).__name__)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _plan_ref(plan: Any, problems: list[str]) -> PlanRef:
    if not isinstance(plan, dict):
        problems.append("`plan` must be an object: {uri}, {uri, range} or {tasks: [...]}"
                        + ("" if plan is None else f", not {_type(plan)}"))
        return PlanRef()
    unknown = set(plan) - {"uri", "range", "tasks"}
    if unknown:
        problems.append(f"`plan` has unknown field(s) {', '.join(sorted(unknown))}")
    if "tasks" in plan:
        if "uri" in plan:
            problems.append("`plan` takes either `uri` or `tasks`, not both")
        tasks = plan["tasks"]
        if isinstance(tasks, list) and len(tasks) > MAX_TASKS:
            problems.append(too_many(len(tasks)))
            return PlanRef()
        return PlanRef(tasks=tasks)  # the task list itself is checked by the plan parser
    uri = plan.get("uri")
    if not isinstance(uri, str) or not uri:
        problems.append("`plan.uri` must be a document uri (string)" if "uri" in plan
                        else "`plan` needs `uri` or `tasks`")
        return PlanRef()
    ref = PlanRef(uri=uri)
    if "range" in plan:
        ref.lines = _line_range(plan["range"], problems)
    return ref


def _line_range(rng: Any, problems: list[str]) -> tuple[int, int] | None:
    try:
        start, end = rng["start"], rng["end"]
        first, last = start["line"], end["line"]
        if not (_is_int(first) and _is_int(last)) or first < 0 or last < first:
            raise ValueError
        if last > MAX_LINE:
            problems.append(f"`plan.range` line {last} is beyond the largest line an editor sends ({MAX_LINE})")
            return None
        # an LSP range is end-exclusive: a selection ending at character 0 does not take that line
        if last > first and end.get("character", 1) == 0:
            last -= 1
        return first, last
    except (TypeError, KeyError, ValueError, AttributeError):
        problems.append("`plan.range` must be an LSP range {start: {line, character}, end: {line, character}}")
        return None


def too_many(n: int) -> str:
    return f"the plan has {n:,} tasks; one request runs at most {MAX_TASKS:,} (split the plan)"


def _id_list(value: Any, name: str, problems: list[str]) -> list[str] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        problems.append(f"`{name}` must be an array of task ids")
        return None
    return list(value)


def run_request(params: Any) -> RunRequest:
    """`RunParams` (PROTOCOL §2), every problem reported at once."""
    p = _object(params, "parex/run")
    problems: list[str] = []
    unknown = set(p) - RUN_KEYS
    if unknown:
        problems.append(f"unknown field(s) {', '.join(sorted(unknown))} (known: {', '.join(sorted(RUN_KEYS))})")
    req = RunRequest(plan=_plan_ref(p.get("plan"), problems), raw=p)
    mc = p.get("maxConcurrency")
    if mc is not None and (not _is_int(mc) or mc < 1):
        problems.append("`maxConcurrency` must be a positive integer")
    else:
        req.max_concurrency = mc
    iso = p.get("isolation")
    if iso is not None and iso not in ISOLATIONS:
        problems.append(f"`isolation` must be one of {', '.join(repr(i) for i in ISOLATIONS)}")
    else:
        req.isolation = iso
    req.only = _id_list(p.get("only"), "only", problems)
    executor = p.get("executor")
    if executor is not None and executor not in EXECUTORS:
        problems.append(f"`executor` must be one of {', '.join(repr(e) for e in EXECUTORS)}")
    else:
        req.executor = executor
    address = p.get("rayAddress")
    if address is not None and not (isinstance(address, str) and address.strip()):
        problems.append("`rayAddress` must be a non-empty string (auto, ray://host:10001, host:6379)")
    else:
        req.ray_address = address
    resume = p.get("resume")
    if resume is not None and not (isinstance(resume, str) and RUN_ID.match(resume)):
        problems.append('`resume` must be a run id or "last"')
    else:
        req.resume = resume
    merge = p.get("merge")
    if merge is not None and merge not in MERGES:
        problems.append(f"`merge` must be one of {', '.join(repr(m) for m in MERGES)}")
    else:
        req.merge = merge
    detach = p.get("detach", False)
    if not isinstance(detach, bool):
        problems.append("`detach` must be true or false")
    else:
        req.detach = detach
    token = p.get("workDoneToken")
    if token is not None and not (isinstance(token, str) or _is_int(token)):
        problems.append("`workDoneToken` must be a string or an integer")
    else:
        req.work_done_token = token
    if problems:
        raise invalid(problems)
    return req


@dataclass(slots=True)
class TaskRef:
    run_id: str | None
    task_id: str | None


def task_ref(params: Any, what: str, need_run: bool = True, need_task: bool = False) -> TaskRef:
    """`{runId, taskId?}` for cancel, status, retryTask and showLog."""
    p = _object(params, what)
    problems: list[str] = []
    unknown = set(p) - {"runId", "taskId"}
    if unknown:
        problems.append(f"unknown field(s) {', '.join(sorted(unknown))} (known: runId, taskId)")
    run_id, task_id = p.get("runId"), p.get("taskId")
    if run_id is None and need_run:
        problems.append("`runId` is required")
    elif run_id is not None and not (isinstance(run_id, str) and RUN_ID.match(run_id) and run_id.strip(".")):
        problems.append("`runId` must be a run id (string)")
    if task_id is None and need_task:
        problems.append("`taskId` is required")
    elif task_id is not None and not (isinstance(task_id, str) and TASK_ID.match(task_id) and task_id.strip(".")):
        problems.append("`taskId` must be a task id (string of letters, digits, _ . -)")
    if problems:
        raise invalid([f"{what}: {m}" for m in problems])
    return TaskRef(run_id, task_id)
