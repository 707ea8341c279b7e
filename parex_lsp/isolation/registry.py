"""The cross-process lock registry: `<workspace>/.parex/locks/`, shared by every parex process on a workspace.

One JSON owner file per holder, published and read for granting only under one registry `FileLock`. An owner
whose process is gone, or whose lease has passed, is stale: the next acquirer in its way breaks it.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import socket
import time
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from filelock import FileLock

from parex_lsp import state
from parex_lsp.isolation.keys import first_conflict
from parex_lsp.isolation.processes import pid_alive, process_start

REGISTRY_TIMEOUT = 10.0  # the registry lock is held for microseconds; waiting this long means a stuck process
HOST = socket.gethostname()

Holder = tuple[str, str]  # (run_id, task_id)
OwnerEntry = tuple[Path, "LockOwner", frozenset[str], str | None]  # file, owner, keys, owner's process start
_LIVE: weakref.WeakSet[Registry] = weakref.WeakSet()  # registries of this process: they vouch for our own owners


@dataclass(slots=True)
class LockOwner:
    pid: int
    host: str
    run_id: str
    task_id: str
    acquired_at: float
    expires_at: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"pid": self.pid, "host": self.host, "runId": self.run_id, "taskId": self.task_id,
                "acquiredAt": self.acquired_at, "expiresAt": self.expires_at}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> LockOwner:
        return cls(int(d["pid"]), str(d["host"]), str(d["runId"]), str(d["taskId"]), float(d["acquiredAt"]),
                   None if d.get("expiresAt") is None else float(d["expiresAt"]))

    def __str__(self) -> str:
        return f"task {self.task_id} of run {self.run_id} (pid {self.pid} on {self.host})"


class LockTimeout(Exception):
    """A lock set was not granted in time; names the first key that was in the way and who held it."""

    def __init__(self, key: str, holder: LockOwner, timeout: float | None = None):
        self.key, self.holder, self.timeout = key, holder, timeout
        waited = f" after {timeout:g}s" if timeout is not None else ""
        super().__init__(f"{key} is locked by {holder}{waited}")


_SAFE_NAME = re.compile(r"^[A-Za-z0-9_.\-]+$")


def _owner_file_stem(run_id: str, task_id: str) -> str:
    """`<runId>@<taskId>`, readable for `ls .parex/locks`; a hash when the ids hold unusual characters."""
    if _SAFE_NAME.match(run_id) and _SAFE_NAME.match(task_id) and len(run_id) + len(task_id) < 180:
        return f"{run_id}@{task_id}"
    return hashlib.sha1(f"{run_id}\0{task_id}".encode()).hexdigest()


class Registry:
    """Owner files of one workspace. Callers hold `lock` (a FileLock) around every look that may grant."""

    def __init__(self, workspace: Path):
        self.dir = state.locks_dir(workspace)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.lock = FileLock(self.dir / "registry.lock", timeout=REGISTRY_TIMEOUT, poll_interval=0.001)
        self.pid = os.getpid()
        self._start = process_start(self.pid)
        self._files: dict[Holder, Path] = {}
        self._parsed: dict[str, OwnerEntry] = {}
        _LIVE.add(self)

    def is_stale(self, owner: LockOwner, start: str | None, now: float, path: Path) -> bool:
        if owner.expires_at is not None and owner.expires_at <= now:
            return True
        if owner.host != HOST:
            return False  # another machine's process cannot be checked from here: only its lease ends it
        if owner.pid == self.pid:
            # ours: stale when no registry of this process still publishes it (a table dropped without close())
            return not any(r._files.get((owner.run_id, owner.task_id)) == path for r in list(_LIVE))
        return not pid_alive(owner.pid, start)

    def conflict(self, holder: Holder, keys: frozenset[str],
                 broken: list[tuple[str, LockOwner]] | None) -> tuple[str, LockOwner] | None:
        """The first live owner file in the way. With `broken` (under `lock`) stale owners in the way are
        removed and noted there; without it they are only skipped."""
        now = time.time()
        for path, owner, owner_keys, start in self.read():
            if owner.pid == self.pid and owner.host == HOST and (owner.run_id, owner.task_id) == holder:
                continue  # our own earlier grant: re-entrant
            key = first_conflict(keys, owner_keys)
            if key is None:
                continue
            if self.is_stale(owner, start, now, path):
                if broken is not None:
                    path.unlink(missing_ok=True)
                    broken.extend((k, owner) for k in sorted(owner_keys))
                continue
            return key, owner
        return None

    def live_owners(self) -> list[tuple[LockOwner, frozenset[str]]]:
        now = time.time()
        return [(owner, keys) for path, owner, keys, start in self.read()
                if not self.is_stale(owner, start, now, path)]

    def read(self) -> list[OwnerEntry]:
        """Every owner file, parsed; a file's name is never reused for other content, so parses are cached by name."""
        cache = self._parsed
        seen: dict[str, OwnerEntry] = {}
        with os.scandir(self.dir) as entries:
            for e in entries:
                if not e.name.endswith(".json"):
                    continue
                hit = cache.get(e.name)
                if hit is None:
                    hit = _parse_owner_file(Path(e.path))
                    if hit is None:
                        continue
                    cache[e.name] = hit
                seen[e.name] = hit
        if len(cache) > 4 * len(seen) + 64:
            self._parsed = {k: v for k, v in cache.items() if k in seen}
        return [seen[name] for name in sorted(seen)]

    def publish(self, holder: Holder, owner: LockOwner, keys: frozenset[str]) -> None:
        """Publish the holder's keys in a new owner file, then drop its previous one; always under `lock`,
        which every granting reader holds too, so such a reader never sees a file half written. A reader
        without the lock may, and skips it: it only ever refuses, never grants. Each version gets a name of its
        own, so a parse cached by name can never be stale."""
        d = owner.to_dict()
        d["keys"] = sorted(keys)
        d["pidStart"] = self._start
        path = self.dir / f"{_owner_file_stem(*holder)}.{secrets.token_hex(6)}.json"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)  # plain fds: on the hot path
        try:
            os.write(fd, json.dumps(d, separators=(",", ":")).encode())
        finally:
            os.close(fd)
        previous = self._files.get(holder)
        self._files[holder] = path
        if previous is not None:
            previous.unlink(missing_ok=True)

    def withdraw(self, holder: Holder) -> None:
        # No registry lock needed: removing a file only ever frees keys, and a reader that still saw it
        # merely refuses until its next look.
        path = self._files.pop(holder, None)
        if path is not None:
            path.unlink(missing_ok=True)


def _parse_owner_file(path: Path) -> OwnerEntry | None:
    try:
        d = json.loads(path.read_bytes())
        return path, LockOwner.from_dict(d), frozenset(d.get("keys", ())), d.get("pidStart")
    except FileNotFoundError:
        return None
    except (ValueError, KeyError, TypeError):
        return None  # not an owner file, or one still being written (see publish)
