"""Per-file locks for tasks that share one workspace.

A task's lock set is its `files` patterns, normalized to workspace-relative posix keys (`lock_keys`). Keys are
literal paths or globs; two sets conflict when some file could be named by both (`keys_conflict`).

`WorkspaceLocks` grants a whole set at once or nothing (so no task ever holds half its files and waits for the
rest: no deadlock), first against an in-memory table (tasks of this process), then against a registry under
`<workspace>/.parex/locks/` shared by every parex process on the workspace: one JSON owner file per holder,
read and written only under one registry `FileLock`. An owner whose process is gone, or whose lease has
passed, is broken by the next acquirer.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import socket
import threading
import time
import weakref
from collections import Counter
from contextlib import asynccontextmanager
from dataclasses import dataclass
from fnmatch import fnmatchcase
from functools import lru_cache
from pathlib import Path, PurePosixPath
from typing import Any, AsyncIterator, Callable, Iterable

import anyio
from filelock import FileLock

from parex_lsp.engine.processes import pid_alive, process_start
from parex_lsp.engine.journal import state_dir

_GLOB_CHARS = frozenset("*?[")
REGISTRY_TIMEOUT = 10.0  # the registry lock is held for microseconds; waiting this long means a stuck process
_HOST = socket.gethostname()

Holder = tuple[str, str]  # (run_id, task_id)
_LIVE_TABLES: weakref.WeakSet[WorkspaceLocks] = weakref.WeakSet()  # cross-process tables of this process


def locks_dir(workspace: Path) -> Path:
    return state_dir(workspace) / "locks"


# ---------------------------------------------------------------------------------------------------------
# Keys


def _is_glob(text: str) -> bool:
    return not _GLOB_CHARS.isdisjoint(text)


def _escape_error(pattern: str, why: str) -> ValueError:
    return ValueError(f"`files` pattern {pattern!r} {why}")


def lock_keys(workspace: Path, patterns: list[str]) -> frozenset[str]:
    """Normalize `files` patterns to workspace-relative posix keys.

    Literal paths are resolved (symlinks followed) and made relative; an existing directory becomes `dir/**`
    (it locks everything below it). Globs keep their wildcard part; only their literal prefix is resolved.
    Absolute paths are accepted when they lie inside the workspace. Raises ValueError naming a pattern
    that leaves the workspace.
    """
    root = workspace.resolve()
    keys: set[str] = set()
    for pattern in patterns:
        text = pattern.strip().replace("\\", "/")
        if not text:
            raise ValueError("empty `files` pattern")
        parts = [p for p in PurePosixPath(text).parts if p not in (".", "")]
        if text.startswith("/"):
            parts = parts[1:]
            prefix_root = Path("/")
        else:
            prefix_root = root
        if ".." in parts:
            # `..` is only acceptable inside the literal part, where resolving it shows whether it escapes
            first_glob = next((i for i, p in enumerate(parts) if _is_glob(p)), len(parts))
            if ".." in parts[first_glob:]:
                raise _escape_error(pattern, "leaves the workspace through `..` after a wildcard")
        split = next((i for i, p in enumerate(parts) if _is_glob(p)), len(parts))
        literal, wild = parts[:split], parts[split:]
        target = prefix_root.joinpath(*literal).resolve()
        if target != root and root not in target.parents:
            raise _escape_error(pattern, f"leaves the workspace (it names {target})")
        rel = target.relative_to(root).as_posix()
        rel = "" if rel == "." else rel
        if not wild:
            if not rel:
                keys.add("**")  # the whole workspace
            elif target.is_dir():
                keys.add(rel + "/**")
            else:
                keys.add(rel)
            continue
        wild = _collapse_double_star(wild)
        keys.add("/".join([rel, *wild]) if rel else "/".join(wild))
    return frozenset(keys)


def _collapse_double_star(parts: list[str]) -> list[str]:
    out: list[str] = []
    for p in parts:
        if p == "**" and out and out[-1] == "**":
            continue
        out.append(p)
    return out


@dataclass(frozen=True, slots=True)
class _Key:
    text: str
    glob: bool
    segments: tuple[str, ...]
    regex: re.Pattern[str] | None


@lru_cache(maxsize=65536)
def _parse(key: str) -> _Key:
    if not _is_glob(key):
        return _Key(key, False, (), None)
    segments = tuple(key.split("/"))
    return _Key(key, True, segments, re.compile(_glob_regex(segments)))


def _glob_regex(segments: tuple[str, ...]) -> str:
    """`**` is any number of whole segments (zero included); `*`, `?`, `[...]` stay inside one segment."""
    out = ""
    for i, seg in enumerate(segments):
        last = i == len(segments) - 1
        if seg == "**":
            out += ".*" if last else "(?:[^/]+/)*"
            continue
        out += _segment_regex(seg) + ("" if last else "/")
    return out + r"\Z"


def _segment_regex(seg: str) -> str:
    out, i = "", 0
    while i < len(seg):
        c = seg[i]
        i += 1
        if c == "*":
            out += "[^/]*"
        elif c == "?":
            out += "[^/]"
        elif c == "[":
            j = seg.find("]", i + 1 if i < len(seg) and seg[i] in "!^" else i)
            if j < 0:
                out += r"\["
                continue
            body = seg[i:j]
            i = j + 1
            if body[:1] in ("!", "^"):
                body = "^" + body[1:]
            out += "[" + body.replace("\\", "\\\\") + "]"
        else:
            out += re.escape(c)
    return out


def _segment_matches(literal: str, pattern: str) -> bool:
    return fnmatchcase(literal, pattern)


def _globs_may_overlap(a: tuple[str, ...], b: tuple[str, ...]) -> bool:
    """Conservative: False only when no path can match both. Segments are compared from both ends
    up to the first `**`; anything that a wildcard segment might match counts as overlap."""

    def diverge(x: str, y: str) -> bool:
        xw, yw = _is_glob(x), _is_glob(y)
        if not xw and not yw:
            return x != y
        if not xw:
            return not _segment_matches(x, y)
        if not yw:
            return not _segment_matches(y, x)
        return False  # two wildcard segments: assume they may meet

    for x, y in zip(a, b):
        if x == "**" or y == "**":
            break
        if diverge(x, y):
            return False
    else:
        return len(a) == len(b)  # neither has `**`: same depth is required
    for x, y in zip(reversed(a), reversed(b)):
        if x == "**" or y == "**":
            return True
        if diverge(x, y):
            return False
    return True


def _pair_conflicts(a: _Key, b: _Key) -> bool:
    if not a.glob and not b.glob:
        return a.text == b.text
    if not a.glob:
        return b.regex.match(a.text) is not None  # type: ignore[union-attr]
    if not b.glob:
        return a.regex.match(b.text) is not None  # type: ignore[union-attr]
    return _globs_may_overlap(a.segments, b.segments)


@lru_cache(maxsize=4096)
def _split(keys: frozenset[str]) -> tuple[frozenset[str], tuple[_Key, ...]]:
    """(literal keys, parsed glob keys) of a key set; cached because the same sets are checked again and again."""
    parsed = [_parse(k) for k in keys]
    return frozenset(k.text for k in parsed if not k.glob), tuple(k for k in parsed if k.glob)


def _as_frozen(keys: Iterable[str]) -> frozenset[str]:
    return keys if isinstance(keys, frozenset) else frozenset(keys)


def keys_conflict(a: Iterable[str], b: Iterable[str]) -> bool:
    """True when some key of `a` may name the same file as some key of `b`."""
    return _first_conflict(_as_frozen(a), _as_frozen(b)) is not None


@lru_cache(maxsize=65536)
def _first_conflict(a: frozenset[str], b: frozenset[str]) -> str | None:
    """A key of `a` (the smallest, so the answer is stable) that may name a file of `b`, or None."""
    if not a or not b:
        return None
    a_lit, a_glob = _split(a)
    b_lit, b_glob = _split(b)
    if not a_glob and not b_glob:
        common = a_lit & b_lit
        return min(common) if common else None
    hits = [k for k in a_lit & b_lit]
    for x in a_glob:
        if any(_pair_conflicts(x, _parse(y)) for y in b_lit) or any(_pair_conflicts(x, y) for y in b_glob):
            hits.append(x.text)
    for y in b_glob:
        hits.extend(x for x in a_lit if _pair_conflicts(_parse(x), y))
    return min(hits) if hits else None


def _covered(key: str, held: frozenset[str]) -> bool:
    """Whether holding `held` already grants `key` (a literal inside a held glob, or a key held as such)."""
    if key in held:
        return True
    k = _parse(key)
    if k.glob:
        return False
    return any(h.regex.match(key) is not None for h in _split(held)[1])  # type: ignore[union-attr]


# ---------------------------------------------------------------------------------------------------------
# Owners


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


def _is_stale(owner: LockOwner, start: str | None, now: float, path: Path) -> bool:
    if owner.expires_at is not None and owner.expires_at <= now:
        return True
    if owner.host != _HOST:
        return False  # another machine's process cannot be checked from here: only its lease ends it
    if owner.pid == os.getpid():
        # ours: stale when no lock table of this process still holds it (one dropped without close())
        return not any(t._files.get((owner.run_id, owner.task_id)) == path for t in list(_LIVE_TABLES))
    return not pid_alive(owner.pid, start)


_SAFE_NAME = re.compile(r"^[A-Za-z0-9_.\-]+$")


def _owner_file_stem(run_id: str, task_id: str) -> str:
    """`<runId>@<taskId>`, readable for `ls .parex/locks`; a hash when the ids hold unusual characters."""
    if _SAFE_NAME.match(run_id) and _SAFE_NAME.match(task_id):
        return f"{run_id}@{task_id}"
    return hashlib.sha1(f"{run_id}\0{task_id}".encode()).hexdigest()


# ---------------------------------------------------------------------------------------------------------
# The lock table


class WorkspaceLocks:
    """All-or-nothing lock sets for the tasks of one workspace, in this process and (optionally) across processes.

    Thread-safe. Callbacks (`on_broken`, `on_wait`) run outside every internal lock.
    """

    def __init__(self, workspace: Path, on_broken: Callable[[str, LockOwner], None] | None = None,
                 cross_process: bool = True):
        self.workspace = workspace
        self.on_broken = on_broken
        self.cross_process = cross_process
        self._mutex = threading.Lock()
        self._held: dict[Holder, Counter[str]] = {}
        self._keys: dict[Holder, frozenset[str]] = {}
        self._owners: dict[Holder, LockOwner] = {}
        self._pid = os.getpid()
        self._start = process_start(self._pid)
        if cross_process:
            self.dir = locks_dir(workspace)
            self.dir.mkdir(parents=True, exist_ok=True)
            self._registry = FileLock(self.dir / "registry.lock", timeout=REGISTRY_TIMEOUT, poll_interval=0.001)
            self._files: dict[Holder, Path] = {}
            self._parsed: dict[str, tuple[Path, LockOwner, frozenset[str], str | None]] = {}
            self._refused: set[Holder] = set()  # holders whose last try was refused: they poll
            _LIVE_TABLES.add(self)

    # -- granting ------------------------------------------------------------------------------------------

    def try_acquire(self, run_id: str, task_id: str, keys: frozenset[str],
                    lease: float | None = None) -> tuple[str, LockOwner] | None:
        """Take every key or none, without waiting. None when granted; else (blocking key, its holder).
        Re-entrant: keys the same (run_id, task_id) already holds are granted again (and counted)."""
        keys = _as_frozen(keys)
        holder = (run_id, task_id)
        broken: list[tuple[str, LockOwner]] = []
        try:
            with self._mutex:
                blocked = self._memory_conflict(holder, keys)
                if blocked is not None:
                    return blocked
                if self.cross_process:
                    blocked = self._registry_grant(holder, keys, lease, broken)
                    if blocked is not None:
                        return blocked
                else:
                    self._grant(holder, keys, lease)
                return None
        finally:
            self._report_broken(broken)

    def _memory_conflict(self, holder: Holder, keys: frozenset[str]) -> tuple[str, LockOwner] | None:
        for other, held in self._keys.items():
            if other == holder:
                continue
            key = _first_conflict(keys, held)
            if key is not None:
                return key, self._owners[other]
        return None

    def _grant(self, holder: Holder, keys: frozenset[str], lease: float | None) -> LockOwner:
        now = time.time()
        owner = self._owners.get(holder)
        if owner is None:
            owner = LockOwner(self._pid, _HOST, holder[0], holder[1], now)
            self._owners[holder] = owner
            self._held[holder] = Counter()
        if lease is not None:
            owner.expires_at = now + lease
        self._held[holder].update(keys)
        self._keys[holder] = frozenset(self._held[holder])
        return owner

    def _registry_grant(self, holder: Holder, keys: frozenset[str], lease: float | None,
                        broken: list[tuple[str, LockOwner]]) -> tuple[str, LockOwner] | None:
        # A holder that was refused before first looks without the registry lock: an owner file that is there
        # now conflicts now (a refusal on a view a moment old only delays a waiting task to its next poll), so
        # polling waiters do not queue on the registry lock. A first try goes straight to the locked look.
        if holder in self._refused:
            blocked = self._registry_conflict(holder, keys, None)
            if blocked is not None:
                return blocked
        with self._registry:
            blocked = self._registry_conflict(holder, keys, broken)
            if blocked is not None:
                self._refused.add(holder)
                return blocked
            self._refused.discard(holder)
            before = (Counter(self._held[holder]), self._owners[holder].expires_at) if holder in self._held else None
            owner = self._grant(holder, keys, lease)
            try:
                self._write_owner(holder, owner)
            except BaseException:
                self._undo_grant(holder, before)  # not published: not held
                raise
        return None

    def _undo_grant(self, holder: Holder, before: tuple[Counter[str], float | None] | None) -> None:
        if before is None:
            self._forget(holder)
            return
        self._held[holder], self._owners[holder].expires_at = before
        self._keys[holder] = frozenset(before[0])

    def _registry_conflict(self, holder: Holder, keys: frozenset[str],
                           broken: list[tuple[str, LockOwner]] | None) -> tuple[str, LockOwner] | None:
        """The first live owner file in the way. With `broken` (under the registry lock) stale owners in the way
        are removed and noted there; without it they are only skipped."""
        now = time.time()
        for path, owner, owner_keys, start in self._read_registry():
            if owner.pid == self._pid and owner.host == _HOST and (owner.run_id, owner.task_id) == holder:
                continue  # our own earlier grant: re-entrant
            key = _first_conflict(keys, owner_keys)
            if key is None:
                continue
            if _is_stale(owner, start, now, path):
                if broken is not None:
                    path.unlink(missing_ok=True)
                    broken.extend((k, owner) for k in sorted(owner_keys))
                continue
            return key, owner
        return None

    def _read_registry(self) -> Iterable[tuple[Path, LockOwner, frozenset[str], str | None]]:
        """Every owner file, parsed; a file's name is never reused for other content, so parses are cached by name."""
        cache = self._parsed
        seen: dict[str, tuple[Path, LockOwner, frozenset[str], str | None]] = {}  # by file name
        with os.scandir(self.dir) as entries:
            for e in entries:
                if not e.name.endswith(".json"):
                    continue
                stamp = e.name
                hit = cache.get(stamp)
                if hit is None:
                    hit = self._parse_owner_file(Path(e.path))
                    if hit is None:
                        continue
                    cache[stamp] = hit
                seen[e.name] = hit
        if len(cache) > 4 * len(seen) + 64:
            self._parsed = {k: v for k, v in cache.items() if k in seen}
        return [seen[name] for name in sorted(seen)]

    @staticmethod
    def _parse_owner_file(path: Path) -> tuple[Path, LockOwner, frozenset[str], str | None] | None:
        try:
            d = json.loads(path.read_bytes())
            return path, LockOwner.from_dict(d), frozenset(d.get("keys", ())), d.get("pidStart")
        except FileNotFoundError:
            return None
        except (ValueError, KeyError, TypeError):
            return None  # not an owner file, or one still being written (see _write_owner)

    def _write_owner(self, holder: Holder, owner: LockOwner) -> None:
        """Publish the holder's keys in a new owner file, then drop its previous one; always under the registry
        lock, which every granting reader holds too, so such a reader never sees a file half written. A reader
        without the lock may, and skips it: it only ever refuses, never grants. Each version gets a name of its
        own, so a parse cached by name can never be stale."""
        d = owner.to_dict()
        d["keys"] = sorted(self._keys[holder])
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

    def _drop_owner_file(self, holder: Holder) -> None:
        # No registry lock needed: removing a file only ever frees keys, and a reader that still saw it
        # merely refuses until its next look.
        path = self._files.pop(holder, None)
        if path is not None:
            path.unlink(missing_ok=True)

    def _report_broken(self, broken: list[tuple[str, LockOwner]]) -> None:
        if self.on_broken:
            for key, owner in broken:
                self.on_broken(key, owner)

    # -- releasing -----------------------------------------------------------------------------------------

    def release(self, run_id: str, task_id: str) -> None:
        """Release every key the task holds (whatever the re-entrant count)."""
        holder = (run_id, task_id)
        with self._mutex:
            if self.cross_process:
                self._refused.discard(holder)
            if holder not in self._held:
                return
            self._forget(holder)
            if self.cross_process:
                self._drop_owner_file(holder)

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
                if self.cross_process:
                    self._drop_owner_file(holder)
                return
            self._keys[holder] = frozenset(counts)
            if self.cross_process:
                with self._registry:  # a granting reader must never see neither the old version nor the new
                    self._write_owner(holder, self._owners[holder])

    def renew(self, run_id: str, task_id: str, lease: float) -> None:
        """Push a held lease `lease` seconds into the future (a long task keeps its locks)."""
        holder = (run_id, task_id)
        with self._mutex:
            owner = self._owners.get(holder)
            if owner is None:
                return
            owner.expires_at = time.time() + lease
            if self.cross_process:
                with self._registry:
                    self._write_owner(holder, owner)

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
        if self.cross_process:
            now = time.time()
            with self._registry:
                for path, owner, keys, start in self._read_registry():
                    if not _is_stale(owner, start, now, path):
                        for k in keys:
                            out.setdefault(k, owner)
        return out

    def held_by(self, run_id: str, task_id: str) -> frozenset[str]:
        with self._mutex:
            return self._keys.get((run_id, task_id), frozenset())

    # -- waiting -------------------------------------------------------------------------------------------

    async def acquire(self, run_id: str, task_id: str, keys: frozenset[str], timeout: float | None,
                      on_wait: Callable[[str, LockOwner], None] | None = None, poll: float = 0.05,
                      lease: float | None = None) -> None:
        """Wait until the whole set is granted. `on_wait(key, holder)` is called whenever the blocker changes.
        Raises LockTimeout after `timeout` seconds (None: wait as long as it takes). Cancellable."""
        deadline = None if timeout is None else anyio.current_time() + timeout
        last: tuple[str, Holder] | None = None
        while True:
            blocked = self.try_acquire(run_id, task_id, keys, lease)
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
    async def hold(self, run_id: str, task_id: str, paths: list[str] | list[Path], timeout: float | None = None,
                   on_wait: Callable[[str, LockOwner], None] | None = None) -> AsyncIterator[frozenset[str]]:
        """Hold the files `paths` for one write. Keys the task already holds (through its declared `files`)
        are not taken again; the rest are taken for the duration of the block and released after it."""
        keys = lock_keys(self.workspace, [str(p) for p in paths])
        held = self.held_by(run_id, task_id)
        extra = frozenset(k for k in keys if not _covered(k, held))
        if not extra:
            yield keys
            return
        await self.acquire(run_id, task_id, extra, timeout, on_wait)
        try:
            yield keys
        finally:
            self._release_some((run_id, task_id), extra)
