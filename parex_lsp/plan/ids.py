"""Task ids: the one rule every plan form (TOML, inline, `callN:`) is held to.

An id becomes a file name (`.parex/runs/<run>/<id>.log`) and a git ref component (`parex/<run>/<id>`
for worktree isolation), so it must be safe as both: letters, digits, `_`, `.` and `-`; not starting
with `.` or `-` (hidden files, command-line options); no `..`, no trailing `.` and no `.lock` ending
(git refuses such refs); at most MAX_ID_LENGTH characters (file names are limited to 255 bytes).
"""

from __future__ import annotations

import re

MAX_ID_LENGTH = 100
_ALLOWED = re.compile(r"[A-Za-z0-9_.\-]+")


def id_problem(task_id: str) -> str | None:
    """Why `task_id` cannot be used as a task id, or None when it can."""
    shown = repr(task_id) if len(task_id) <= 40 else repr(task_id[:40] + "…")
    if not task_id:
        return "task id is empty"
    if len(task_id) > MAX_ID_LENGTH:
        return f"task id {shown} is {len(task_id)} characters long; the limit is {MAX_ID_LENGTH}"
    if not _ALLOWED.fullmatch(task_id):
        return f"task id {shown} may only contain letters, digits, `_`, `.` and `-`"
    if task_id[0] in ".-":
        return f"task id {shown} must not start with `{task_id[0]}`"
    if ".." in task_id:
        return f"task id {shown} must not contain `..`"
    if task_id.endswith("."):
        return f"task id {shown} must not end with `.`"
    if task_id.endswith(".lock"):
        return f"task id {shown} must not end with `.lock` (git reserves it)"
    return None


def is_valid_id(task_id: object) -> bool:
    return isinstance(task_id, str) and id_problem(task_id) is None
