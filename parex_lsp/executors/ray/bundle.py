"""Commits moved between machines as git bundles: the run's history once per node, then thin bundles of
only what a node (or parex) lacks. Every git command runs with parex's identity and settings (GIT_ENV)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import git

from parex_lsp.isolation.worktree import GIT_ENV


def git_in(path: Path) -> git.Git:
    g = git.Git(str(path))
    g.update_environment(**GIT_ENV)
    return g


def head(path: Path) -> str:
    return str(git_in(path).rev_parse("HEAD"))


def create(path: Path, *revisions: str) -> bytes | None:
    """A bundle of `revisions` (e.g. `HEAD`, `^<commit>`) of the repository at `path`; None when it would hold no
    commit (git refuses an empty bundle)."""
    g = git_in(path)
    if not g.rev_list("--max-count=1", *revisions):
        return None
    with tempfile.TemporaryDirectory(prefix="parex-bundle-") as tmp:
        out = Path(tmp, "b.bundle")
        g.bundle("create", "--quiet", str(out), *revisions)
        return out.read_bytes()


def fetch(path: Path, data: bytes, ref: str = "HEAD") -> None:
    """Fetch the commits of a bundle (its `ref`) into the repository at `path` (objects; FETCH_HEAD)."""
    with tempfile.TemporaryDirectory(prefix="parex-bundle-") as tmp:
        src = Path(tmp, "b.bundle")
        src.write_bytes(data)
        git_in(path).fetch("--quiet", "--no-tags", str(src), ref)
