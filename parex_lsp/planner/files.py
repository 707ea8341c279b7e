"""What the planner shows the model of the workspace: its file list and the files the person named."""

from __future__ import annotations

import os
from pathlib import Path

import git

from parex_lsp.plan.validate import escape_problem

MAX_LISTED = 2000  # paths in the file list; a bigger tree is cut with a note
MAX_NAMED_BYTES = 200_000  # of one named file
SKIPPED_DIRS = {".git", ".parex", "node_modules", "__pycache__", ".venv", "venv"}


class NamedFileError(ValueError):
    """A file the person named cannot be sent: outside the workspace, missing, or not text."""


def workspace_files(workspace: Path, limit: int = MAX_LISTED) -> tuple[list[str], bool]:
    """The workspace's files, relative and sorted (git's tracked and untracked-but-not-ignored files in a
    repository, else a walk that skips hidden and build folders), and whether the list was cut at `limit`."""
    try:
        repo = git.Repo(workspace, search_parent_directories=False)
        out = repo.git.ls_files("--cached", "--others", "--exclude-standard")
        names = sorted(set(out.splitlines()))
    except (git.InvalidGitRepositoryError, git.NoSuchPathError, git.GitCommandError):
        names = _walk(workspace, limit + 1)
    return names[:limit], len(names) > limit


def _walk(workspace: Path, limit: int) -> list[str]:
    found: list[str] = []
    for root, dirs, files in os.walk(workspace):
        dirs[:] = sorted(d for d in dirs if d not in SKIPPED_DIRS and not d.startswith("."))
        rel = os.path.relpath(root, workspace)
        for name in sorted(files):
            found.append(name if rel == "." else f"{rel}/{name}")
            if len(found) >= limit:
                return sorted(found)
    return sorted(found)


def read_named(workspace: Path, names: list[str], max_bytes: int = MAX_NAMED_BYTES) -> list[tuple[str, str]]:
    """(relative path, text) of each named file; NamedFileError naming the first that cannot be sent."""
    out: list[tuple[str, str]] = []
    for name in names:
        path = Path(name)
        rel = os.path.relpath(path.resolve(), workspace.resolve()) if path.is_absolute() else name
        why = escape_problem(rel, workspace, "--file")
        if why:
            raise NamedFileError(why)
        full = workspace / rel
        try:
            data = full.read_bytes()
        except FileNotFoundError:
            raise NamedFileError(f"--file {name}: no such file in {workspace}") from None
        except OSError as e:
            raise NamedFileError(f"--file {name}: cannot read it ({e.strerror or e})") from None
        if len(data) > max_bytes:
            raise NamedFileError(f"--file {name}: {len(data)} bytes, more than the {max_bytes} a request may carry")
        try:
            out.append((rel, data.decode("utf-8")))
        except UnicodeDecodeError:
            raise NamedFileError(f"--file {name}: not UTF-8 text") from None
    return out
