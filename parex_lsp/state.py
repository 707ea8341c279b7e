"""The `.parex/` layout, in one place: every path parex keeps state under is built here.

    <workspace>/.parex/
        runs/<runId>/journal.jsonl      one event a line, flushed before it is shown
        runs/<runId>/<taskId>.log       a task's full output
        runs/<runId>/cancel-requests    `parex-lsp cancel RUN TASK`: task ids, one a line, for the runner
        locks/                          cross-process lock owner files and the registry lock
        worktrees/<runId>/<taskId>      worktree isolation

Clients never build these paths: the server sends them (`logPath`, `logUri`).
"""

from __future__ import annotations

import secrets
import time
from pathlib import Path

STATE_DIR = ".parex"
EXCLUDE_LINE = "/.parex/"  # in the repository's .git/info/exclude: parex never edits a file of the repository


def state_dir(workspace: Path) -> Path:
    return workspace / STATE_DIR


def runs_dir(workspace: Path) -> Path:
    return state_dir(workspace) / "runs"


def run_dir(workspace: Path, run_id: str) -> Path:
    return runs_dir(workspace) / run_id


def journal_path(workspace: Path, run_id: str) -> Path:
    return run_dir(workspace, run_id) / "journal.jsonl"


def log_path(workspace: Path, run_id: str, task_id: str) -> Path:
    return run_dir(workspace, run_id) / f"{task_id}.log"


def cancel_requests_path(workspace: Path, run_id: str) -> Path:
    return run_dir(workspace, run_id) / "cancel-requests"


def locks_dir(workspace: Path) -> Path:
    return state_dir(workspace) / "locks"


def worktrees_dir(workspace: Path) -> Path:
    return state_dir(workspace) / "worktrees"


def is_task_id(text: str) -> bool:
    """Whether `text` can name a file in a run folder (the plan's id rule is stricter)."""
    return bool(text) and "/" not in text and "\\" not in text and "\0" not in text and text not in (".", "..")


def is_state_path(workspace: Path, path: Path) -> bool:
    return path == state_dir(workspace) or path.is_relative_to(state_dir(workspace))


def new_run_id() -> str:
    """Sortable by start time to the millisecond (so `last` is the latest), unique across processes."""
    now = time.time()
    return time.strftime("%Y%m%d-%H%M%S", time.localtime(now)) + f"-{int(now * 1000) % 1000:03d}-" + secrets.token_hex(3)


def ensure_state_dir(workspace: Path) -> Path:
    """Create `.parex/`, ignored by git: a `*` rule inside it, and the repository's `.git/info/exclude`
    (never its `.gitignore`: parex creates and edits no file of the person's repository)."""
    d = state_dir(workspace)
    d.mkdir(parents=True, exist_ok=True)
    inner = d / ".gitignore"
    if not inner.exists():
        inner.write_text("*\n")
    exclude = _info_exclude(workspace)
    if exclude is not None:
        try:
            rule = "/" + d.resolve().relative_to(exclude.parent.parent.parent.resolve()).as_posix() + "/"
            text = exclude.read_text() if exclude.exists() else ""
            if rule not in text.splitlines():
                exclude.parent.mkdir(parents=True, exist_ok=True)
                with exclude.open("a") as f:
                    f.write(("" if not text or text.endswith("\n") else "\n") + rule + "\n")
        except (OSError, ValueError):
            pass  # a read-only repository: the `*` rule inside .parex/ still keeps git away
    return d


def _info_exclude(workspace: Path) -> Path | None:
    """`<repo>/.git/info/exclude` of the checkout that holds `workspace` (a plain `.git` folder only: a linked
    worktree's `.git` file points at its main repository, whose exclude file it shares)."""
    for folder in [workspace, *workspace.parents]:
        dot_git = folder / ".git"
        if dot_git.is_dir():
            return dot_git / "info" / "exclude"
        if dot_git.is_file():
            return None
    return None
