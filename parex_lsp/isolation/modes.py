"""Where a task's attempts run: the `Isolation` seam, and its two local implementations.

`SharedWorkspace`: every task works in the workspace itself; tasks with overlapping `files` never run at once
(the scheduler takes their lock sets), and agents that write files themselves lock each write.
`WorktreeIsolation`: every task works in a git worktree of its own, merged back when it succeeds.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol

import anyio

from parex_lsp.isolation.table import WorkspaceLocks
from parex_lsp.isolation.worktree import MergeOutcome, Worktrees


class Isolation(Protocol):
    @property
    def name(self) -> str: ...  # "none" | "worktree": the plan's word for it

    @property
    def fresh_checkout(self) -> bool: ...  # each task starts in a new checkout (`[run] setup` runs there)

    @property
    def file_locks(self) -> WorkspaceLocks | None: ...  # per-write locks for file tools; None: nothing shared

    async def open(self) -> None: ...
    async def workdir(self, task_id: str) -> Path: ...
    async def finish(self, task_id: str, succeeded: bool, merge: bool = True) -> MergeOutcome | None: ...
    async def close(self) -> None: ...


class SharedWorkspace:
    name = "none"
    fresh_checkout = False

    def __init__(self, workspace: Path, locks: WorkspaceLocks):
        self.workspace, self.file_locks = workspace, locks

    async def open(self) -> None:
        return None

    async def workdir(self, task_id: str) -> Path:
        return self.workspace

    async def finish(self, task_id: str, succeeded: bool, merge: bool = True) -> MergeOutcome | None:
        return None

    async def close(self) -> None:
        return None


class WorktreeIsolation:
    name = "worktree"
    fresh_checkout = True
    file_locks = None

    def __init__(self, workspace: Path, run_id: str, is_live_run: Callable[[str], bool],
                 copy_files: Sequence[str] = (), allow_dirty: bool = False):
        self.trees = Worktrees(workspace, run_id, is_live_run, copy_files, allow_dirty)

    async def open(self) -> None:
        """Raises WorktreeError (with what to do) when worktrees cannot be used here."""
        await anyio.to_thread.run_sync(self.trees.prepare)

    async def workdir(self, task_id: str, from_branch: str | None = None) -> Path:
        return await anyio.to_thread.run_sync(self.trees.create, task_id, from_branch)

    async def finish(self, task_id: str, succeeded: bool, merge: bool = True) -> MergeOutcome | None:
        return await anyio.to_thread.run_sync(self.trees.finish, task_id, succeeded, merge)

    async def close(self) -> None:
        await anyio.to_thread.run_sync(self.trees.close)
