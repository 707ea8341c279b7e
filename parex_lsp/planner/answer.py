"""A model's answer → a plan document, and every problem parex finds in it.

The document is the workspace's configuration (its parex.toml without tasks) followed by the model's
[[task]] tables, so a drafted plan runs with the workspace's agents wherever it is saved.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import tomli as tomllib
import tomli_w

from parex_lsp.isolation.keys import first_conflict, lock_keys
from parex_lsp.plan.model import Plan, Problem, SourceRange, TaskSpec, in_order
from parex_lsp.plan.toml_plan import parse_toml_plan
from parex_lsp.plan.validate import nothing_to_run, validate

_FENCE = re.compile(r"```[ \t]*(toml)?[ \t]*\r?\n(.*?)^[ \t]*```", re.S | re.M | re.I)
SERIALIZED_SHARE = 0.5  # more than this share of the tasks waiting on each other's files is a problem


def toml_block(answer: str) -> str | None:
    """The first ```toml block (else the first fenced block) of the answer."""
    blocks = list(_FENCE.finditer(answer))
    tagged = [m for m in blocks if m.group(1)]
    chosen = tagged or blocks
    return chosen[0].group(2) if chosen else None


def without_tasks(config_text: str) -> str:
    """The workspace's parex.toml without its [[task]] tables, written anew from what the parser read (its
    comments do not carry over): scanning the text itself cannot be right for every multi-line string."""
    try:
        data = tomllib.loads(config_text)
    except tomllib.TOMLDecodeError:
        return ""  # an unreadable configuration is the validator's to report, on the drafted plan
    data.pop("task", None)
    return tomli_w.dumps(data).rstrip("\n")


@dataclass(slots=True)
class Document:
    text: str
    offset: int  # the line where the model's block starts


def compose(config_text: str, request: str, block: str) -> Document:
    head = without_tasks(config_text)
    note = "# Drafted by `parex-lsp plan` for: " + " ".join(request.split())[:200]
    prefix = (head + "\n\n" if head else "") + note + "\n"
    return Document(prefix + block.strip("\n") + "\n", prefix.count("\n"))


def check(text: str, source: str, workspace: Path) -> list[Problem]:
    """Every problem parex's validator finds, plus files that would run most of the plan one task at a time."""
    plan, problems = parse_toml_plan(text, source, workspace)
    if plan is None:
        return in_order(problems)
    problems = problems + validate(plan)
    if not any(p.is_error for p in problems):
        problems += [p for p in (nothing_to_run(plan), serialized(plan)) if p]
    return in_order(problems)


def serialized(plan: Plan) -> Problem | None:
    """A problem when most tasks could run together by their dependencies but share files, so the locks
    would run them one at a time (a plan that gains nothing from parex)."""
    tasks = plan.tasks
    if len(tasks) < 3:
        return None
    try:
        keys = {t.id: lock_keys(plan.workspace, t.files) for t in tasks if t.files}
    except ValueError:  # an escaping pattern: validate reported it
        return None
    before = _ancestors(tasks)
    involved: dict[str, str] = {}
    locked = [t for t in tasks if t.id in keys]
    for i, a in enumerate(locked):
        for b in locked[i + 1:]:
            if a.id in before[b.id] or b.id in before[a.id]:
                continue
            key = first_conflict(keys[a.id], keys[b.id])
            if key is not None:
                involved.setdefault(a.id, key)
                involved.setdefault(b.id, key)
    if len(involved) <= SERIALIZED_SHARE * len(tasks):
        return None
    first = next(t for t in tasks if t.id in involved)
    names = ", ".join(f"`{t}`" for t in involved)
    rng: SourceRange | None = first.field_ranges.get("files") or first.range
    return Problem("serialized-files", f"{len(involved)} of {len(tasks)} tasks ({names}) may write the same files "
                   f"(e.g. {involved[first.id]}), so they would run one at a time: give parallel tasks distinct "
                   "`files`, or make one depend on the other", rng, plan.source)


def _ancestors(tasks: list[TaskSpec]) -> dict[str, set[str]]:
    deps = {t.id: [d for d in t.depends_on if d != t.id] for t in tasks}
    out: dict[str, set[str]] = {}
    for tid in deps:  # iterative DFS; validated plans are acyclic, a visited set guards the rest
        seen: set[str] = set()
        stack = list(deps[tid])
        while stack:
            d = stack.pop()
            if d in seen or d not in deps:
                continue
            seen.add(d)
            stack.extend(deps[d])
        out[tid] = seen
    return out
