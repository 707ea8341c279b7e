"""The lock table: all-or-nothing lock sets for the tasks of one workspace, in this process and across processes.

A whole set is granted at once or nothing (so no task ever holds half its files and waits for the rest: no
deadlock), first against an in-memory table (tasks of this process), then against the cross-process registry
(registry.py), whose owner files every parex process on the workspace reads.
"""

from __future__ import annotations

import os
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import filelock

from parex_lsp.isolation.keys import as_frozen, covered, first_conflict, lock_keys
from parex_lsp.isolation.registry import HOST, REGISTRY_TIMEOUT, Holder, LockOwner, LockTimeout, Registry

OnBroken = Callable[[str, LockOwner], None]


class WorkspaceLocks:
    """Thread-safe. Callbacks (`on_broken`, `on_wait`) run outside every internal lock."""

    def __init__(self, workspace: Path, on_broken: OnBroken | None = None, cross_process: bool = True):
        self.workspace = workspace
        self.on_broken = on_broken
        self._mutex = threading.Lock()
        self._held: dict[Holder, Counter[str]] = {}
        self._keys: dict[Holder, frozenset[str]] = {}
        self._owners: dict[Holder, LockOwner] = {}
        self._registry = Registry(workspace) if cross_process else None
        self._refused: set[Holder] = set()  # holders whose last try was refused: they poll

    # -- granting ------------------------------------------------------------------------------------------

    def try_acquire(self, run_id: str, task_id: str, keys: frozenset[str],
                    registry_wait: float = REGISTRY_TIMEOUT) -> tuple[str, LockOwner] | None:
        """Take every key or none, without waiting for holders. None when granted; else (blocking key, its
        holder). Re-entrant: keys the same (run_id, task_id) already holds are granted again (and counted).
        The registry lock is waited for at most `registry_wait` seconds (filelock.Timeout after that)."""
        keys = as_frozen(keys)
        holder = (run_id, task_id)
        broken: list[tuple[str, LockOwner]] = []
        try:
            with self._mutex:
                blocked = self._memory_conflict(holder, keys)
                if blocked is not None:
                    return blocked
                if self._registry is None:
                    self._grant(holder, keys)
                    return None
                return self._registry_grant(self._registry, holder, keys, broken, registry_wait)
        finally:
            if self.on_broken:
                for key, owner in broken:
                    self.on_broken(key, owner)

    def _memory_conflict(self, holder: Holder, keys: frozenset[str]) -> tuple[str, LockOwner] | None:
        for other, held in self._keys.items():
            if other == holder:
                continue
            key = first_conflict(keys, held)
            if key is not None:
                return key, self._owners[other]
        return None

    def _grant(self, holder: Holder, keys: frozenset[str]) -> LockOwner:
        owner = self._owners.get(holder)
        if owner is None:
            owner = LockOwner(os.getpid(), HOST, holder[0], holder[1], time.time())
            self._owners[holder] = owner
            self._held[holder] = Counter()
        self._held[holder].update(keys)
        self._keys[holder] = frozenset(self._held[holder])
        return owner

    def _registry_grant(self, registry: Registry, holder: Holder, keys: frozenset[str],
                        broken: list[tuple[str, LockOwner]], wait: float) -> tuple[str, LockOwner] | None:
        # A holder that was refused before first looks without the registry lock: an owner file that is there
        # now conflicts now (a refusal on a view a moment old only delays a waiting task to its next poll), so
        # polling waiters do not queue on the registry lock. A first try goes straight to the locked look.
        if holder in self._refused:
            blocked = registry.conflict(holder, keys, None)
            if blocked is not None:
                return blocked
        with registry.lock.acquire(timeout=wait):
            blocked = registry.conflict(holder, keys, broken)
            if blocked is not None:
                self._refused.add(holder)
                return blocked
            self._refused.discard(holder)
            before = Counter(self._held[holder]) if holder in self._held else None
            owner = self._grant(holder, keys)
            try:
                registry.publish(holder, owner, self._keys[holder])
            except BaseException:
                self._undo_grant(holder, before)  # not published: not held
                raise
        return None

    def _undo_grant(self, holder: Holder, before: Counter[str] | None) -> None:
        if before is None:
            self._forget(holder)
            return
        self._held[holder] = before
        self._keys[holder] = frozenset(before)

    # -- releasing -----------------------------------------------------------------------------------------

    def release(self, run_id: str, task_id: str) -> None:
        """Release every key the task holds (whatever the re-entrant count)."""
        holder = (run_id, task_id)
        with self._mutex:
            self._refused.discard(holder)
            if holder not in self._held:
                return
            self._forget(holder)
            if self._registry is not None:
                self._registry.withdraw(holder)

    def _forget(self, holder: Holder) -> None:
        del self._held[holder], self._keys[holder], self._owners[holder]

    def _release_some(self, holder: Holder, keys: frozenset[str]) -> None:
        """Undo one grant of `keys` (from `hold`), keeping the task's other keys."""
        with self._mutex:
            counts = self._held.get(holder)
            if counts is None:
                return
            counts.subtract(keys)
            for k in [k for k, n in counts.items() if n <= 0]:
                del counts[k]
            if not counts:
                self._forget(holder)
                if self._registry is not None:
                    self._registry.withdraw(holder)
                return
            self._keys[holder] = frozenset(counts)
            if self._registry is not None:
                with self._registry.lock:  # a granting reader must never see neither the old version nor the new
                    self._registry.publish(holder, self._owners[holder], self._keys[holder])

    def close(self) -> None:
        """Release everything this instance holds."""
        with self._mutex:
            holders = list(self._held)
        for run_id, task_id in holders:
            self.release(run_id, task_id)

    # -- looking -------------------------------------------------------------------------------------------

    def holders(self) -> dict[str, LockOwner]:
        """key -> owner for every live holder, of this process and of others (stale owners are left out)."""
        with self._mutex:
            out = {k: self._owners[h] for h, keys in self._keys.items() for k in keys}
        if self._registry is not None:
            # Without the registry lock: a view for people, never for granting (an owner file half written
            # is skipped), and a process stuck holding that lock must not freeze `status`.
            for owner, keys in self._registry.live_owners():
                for k in keys:
                    out.setdefault(k, owner)
        return out

    def held_by(self, run_id: str, task_id: str) -> frozenset[str]:
        with self._mutex:
            return self._keys.get((run_id, task_id), frozenset())

    # -- waiting -------------------------------------------------------------------------------------------

    async def acquire(self, run_id: str, task_id: str, keys: frozenset[str], timeout: float | None,
                      on_wait: Callable[[str, LockOwner], None] | None = None, poll: float = 0.05) -> None:
        """Wait until the whole set is granted. `on_wait(key, holder)` is called whenever the blocker changes.
        Raises LockTimeout after `timeout` seconds (None: wait as long as it takes). Cancellable."""
        deadline = None if timeout is None else anyio.current_time() + timeout
        last: tuple[str, Holder] | None = None
        stuck_since: float | None = None
        while True:
            # The registry lock is only tried: a process stuck holding it must not freeze the event loop.
            try:
                blocked = self.try_acquire(run_id, task_id, keys, registry_wait=0)
            except filelock.Timeout:
                now = anyio.current_time()
                stuck_since = now if stuck_since is None else stuck_since
                if now - stuck_since >= REGISTRY_TIMEOUT:
                    raise
                await anyio.sleep(poll)
                continue
            stuck_since = None
            if blocked is None:
                return
            key, owner = blocked
            who = (key, (owner.run_id, owner.task_id))
            if who != last:
                last = who
                if on_wait:
                    on_wait(key, owner)
            if deadline is not None and anyio.current_time() >= deadline:
                raise LockTimeout(key, owner, timeout)
            delay = poll if deadline is None else min(poll, max(0.0, deadline - anyio.current_time()))
            await anyio.sleep(delay)

    @asynccontextmanager
    async def hold(self, run_id: str, task_id: str, paths: Sequence[str | Path], timeout: float | None = None,
                   on_wait: Callable[[str, LockOwner], None] | None = None) -> AsyncIterator[frozenset[str]]:
        """Hold the files `paths` for one write. Keys the task already holds (through its declared `files`)
        are not taken again; the rest are taken for the duration of the block and released after it."""
        keys = lock_keys(self.workspace, [str(p) for p in paths])
        held = self.held_by(run_id, task_id)
        extra = frozenset(k for k in keys if not covered(k, held))
        if not extra:
            yield keys
            return
        await self.acquire(run_id, task_id, extra, timeout, on_wait)
        try:
            yield keys
        finally:
            self._release_some((run_id, task_id), extra)
