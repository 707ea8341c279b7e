"""Containing an agent's whole process tree, whatever it does to its session or process group.

A process group is not a container: `setsid`, a double fork or `nohup ... &` leave it, and such a daemon
outlives the agent, keeps working unseen and may hold the output pipe open forever. So, on Linux:

- where the runner may make cgroups (v2: root, or a delegated user scope), each agent gets one of its own
  (cgroups.py), which no process can leave, whatever it does to its session, group or environment;

- the runner is a child subreaper (`prctl(PR_SET_CHILD_SUBREAPER)`): a process orphaned anywhere under an
  agent is re-parented to the runner instead of to init, so it stays in the runner's process tree;
- every agent process inherits `PAREX_RUN_ID` and `PAREX_TASK_ID`, which `/proc/<pid>/environ` keeps, so an
  adopted orphan is told apart from the runner's other children (git, other tasks' agents);
- a task's tree is its leader's descendants, the leader's process group, and the adopted orphans carrying
  the task's ids with their descendants (walked through `/proc/<pid>/task/<tid>/children`).

Limit, without a cgroup: an orphan that replaced its environment (`env -i`, `execve` with a new one) carries no
ids and cannot be told apart once its parent is gone; while it is a descendant of a live tree member it is
still found.
Elsewhere (no /proc), the process group is all there is.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from parex_lsp.isolation.cgroups import TaskCgroup

PR_SET_CHILD_SUBREAPER = 36
RUN_ID_VAR, TASK_ID_VAR = "PAREX_RUN_ID", "PAREX_TASK_ID"
_PROC = Path("/proc")

_subreaper: bool | None = None
_leaders: set[int] = set()  # live agent leaders of this process: asyncio reaps them, never us
_spawning = 0  # spawns in flight: a child not yet in `_leaders` must not be taken for an adopted orphan
_reap_lock = threading.Lock()


def has_proc() -> bool:
    return (_PROC / "self" / "stat").exists()


def become_subreaper() -> bool:
    """Make this process the subreaper of its descendants (once); whether it is."""
    global _subreaper
    if _subreaper is None:
        libc = _libc()
        _subreaper = libc is not None and libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    return _subreaper


PR_GET_CHILD_SUBREAPER = 37


@contextmanager
def orphans_to_init() -> Iterator[None]:
    """While the block runs, this process is no subreaper: a process orphaned meanwhile (a daemon that
    forked away from what we spawned) goes to init and is no child of ours, so it outlives whatever kills our
    children when we exit. The subreaper state is read from the kernel and restored as it was."""
    libc = _libc()
    state = ctypes.c_int(0)
    if libc is None or libc.prctl(PR_GET_CHILD_SUBREAPER, ctypes.byref(state), 0, 0, 0) != 0 or not state.value:
        yield
        return
    libc.prctl(PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0)
    try:
        yield
    finally:
        libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


@functools.cache
def _libc() -> ctypes.CDLL | None:
    if sys.platform != "linux":
        return None
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    except OSError:
        return None


class Spawning:
    """Around a spawn: until the leader is registered, adopted-zombie reaping waits (reaping runs in worker
    threads; `_reap_lock` keeps a spawn from starting in the middle of one)."""

    def __enter__(self) -> None:
        global _spawning
        with _reap_lock:
            _spawning += 1

    def __exit__(self, *exc: object) -> None:
        global _spawning
        with _reap_lock:
            _spawning -= 1


def add_leader(pid: int) -> None:
    _leaders.add(pid)


def drop_leader(pid: int) -> None:
    _leaders.discard(pid)


# -- reading /proc --------------------------------------------------------------------------------------------

def _children(pid: int) -> list[int]:
    """Direct children of `pid`, over all its threads (an adopted orphan may be any thread's child)."""
    out: list[int] = []
    try:
        tids = os.listdir(_PROC / str(pid) / "task")
    except OSError:
        return out
    for tid in tids:
        try:
            out.extend(int(c) for c in (_PROC / str(pid) / "task" / tid / "children").read_text().split())
        except (OSError, ValueError):
            continue
    return out


def _adopted() -> list[int]:
    """Our children that the kernel re-parented to us as subreaper: it hands orphans to the first live thread
    of the process, the main thread, so only its list is read (the others hold only what they spawned)."""
    me = os.getpid()
    try:
        return [int(c) for c in (_PROC / str(me) / "task" / str(me) / "children").read_text().split()]
    except (OSError, ValueError):
        return []


def _stat(pid: int) -> tuple[str, int, int] | None:
    """(state, ppid, pgid) of a process, or None when it is gone."""
    try:
        text = (_PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    fields = text[text.rfind(")") + 2:].split()
    return fields[0], int(fields[1]), int(fields[2])


def environ_values(pid: int, *names: str) -> dict[str, str]:
    """Those of the environment variables `names` a process was started with (none if unreadable)."""
    try:
        raw = (_PROC / str(pid) / "environ").read_bytes()
    except OSError:
        return {}
    wanted = {f"{name}=".encode(): name for name in names}
    found: dict[str, str] = {}
    for entry in raw.split(b"\0"):
        prefix = entry[:entry.find(b"=") + 1]
        if prefix in wanted:
            found[wanted[prefix]] = entry[len(prefix):].decode(errors="replace")
    return found


def environ_ids(pid: int) -> tuple[str | None, str | None]:
    """The (PAREX_RUN_ID, PAREX_TASK_ID) a process was started with; (None, None) if unreadable or absent."""
    found = environ_values(pid, "PAREX_RUN_ID", "PAREX_TASK_ID")
    return found.get("PAREX_RUN_ID"), found.get("PAREX_TASK_ID")


def _descendants(roots: Iterable[int]) -> set[int]:
    seen: set[int] = set()
    stack = list(roots)
    while stack:
        pid = stack.pop()
        if pid in seen:
            continue
        seen.add(pid)
        stack.extend(_children(pid))
    return seen


def _group_members(pgid: int) -> set[int]:
    """Every process in group `pgid` (a full /proc scan: only where the tree walk cannot be trusted)."""
    found = set()
    for name in os.listdir(_PROC):
        if name.isdigit():
            st = _stat(int(name))
            if st is not None and st[2] == pgid:
                found.add(int(name))
    return found


def tagged_processes(run_ids: set[str]) -> dict[int, tuple[str, str | None]]:
    """Every process of this user started with PAREX_RUN_ID in `run_ids` (a full /proc scan): pid -> (run, task)."""
    me = os.getpid()
    found: dict[int, tuple[str, str | None]] = {}
    for name in os.listdir(_PROC):
        if not name.isdigit() or int(name) == me:
            continue
        run, task = environ_ids(int(name))
        if run in run_ids:
            found[int(name)] = (run, task)
    return found


# -- one task's tree ------------------------------------------------------------------------------------------

class ProcessTree:
    """The processes of one agent attempt: its leader (a process group leader) and all it started."""

    def __init__(self, leader: int, run_id: str, task_id: str, cgroup: TaskCgroup | None = None):
        self.leader, self.run_id, self.task_id = leader, run_id, task_id
        self.reaped = False  # once its waiter has reaped the leader, its pid may name another process
        self.cgroup = cgroup  # the one it was started in (TaskCgroup.wrap), where cgroups can be used
        self.ended = False  # killed after its leader was reaped, and found empty: nothing can come back

    def close(self) -> None:
        """Once the tree is gone: its cgroup is released (kept for reuse when empty)."""
        if self.cgroup is not None:
            self.cgroup.release()
            self.cgroup = None

    def members(self) -> set[int]:
        """Live (non-zombie) processes of the tree, the leader included while it lives."""
        if not has_proc():
            return set()
        roots = set() if self.reaped else {self.leader}
        for child in _adopted():
            if child not in _leaders and environ_ids(child) == (self.run_id, self.task_id):
                roots.add(child)  # an orphan of this task, adopted by us as subreaper
        if self.cgroup is not None:
            roots |= self.cgroup.pids()  # whatever it forked, wherever it went
        found = _descendants(roots)
        if not become_subreaper():
            found |= _tagged_for_task(self.run_id, self.task_id) | _group_members(self.leader)
        return {p for p in found if (st := _stat(p)) is not None and st[0] != "Z"}

    def signal(self, sig: int) -> int:
        """Send `sig` to the whole tree (its group too); how many processes were signalled."""
        try:
            os.killpg(self.leader, sig)
        except (ProcessLookupError, PermissionError):
            pass
        pids = self.members()
        for pid in pids:
            try:
                os.kill(pid, sig)
            except (ProcessLookupError, PermissionError):
                pass
        return len(pids)

    def kill(self, rounds: int = 100) -> None:
        """SIGKILL every member until none is left (a member may fork while it is being killed), then reap
        the adopted ones. The leader is left to its own waiter."""
        for _ in range(rounds):
            if self.cgroup is not None:
                self.cgroup.kill()
            if not self.signal(signal.SIGKILL):
                self.ended = self.reaped  # nothing left that could fork again
                break
            time.sleep(0.001)
        reap_adopted()

    def alive(self) -> bool:
        return bool(self.members())

    def settle(self) -> bool:
        """After the leader was reaped: whether anything of the tree is left (to be killed, off the event
        loop). When not, the tree is ended, and adopted zombies are reaped: all cheap reads of /proc."""
        if self.alive():
            return True
        self.ended = True
        reap_adopted()
        return False


def _tagged_for_task(run_id: str, task_id: str) -> set[int]:
    return {pid for pid, ids in tagged_processes({run_id}).items() if ids == (run_id, task_id)}


def reap_adopted() -> int:
    """Reap zombies of orphans we adopted as subreaper (asyncio waits only for the processes it started).
    Our other children (git, run by subprocess in our own process group; agent leaders, registered) are left
    to their waiters. How many were reaped."""
    if not has_proc():
        return 0
    with _reap_lock:
        return 0 if _spawning else _reap_adopted()


def _reap_adopted() -> int:
    me, ours = os.getpid(), os.getpgrp()
    reaped = 0
    for child in _adopted():
        if child in _leaders:
            continue
        st = _stat(child)
        if st is None or st[0] != "Z" or st[1] != me or st[2] == ours:
            continue
        try:
            if os.waitpid(child, os.WNOHANG)[0] == child:
                reaped += 1
        except ChildProcessError:
            pass
    return reaped


def kill_until_gone(find: Callable[[], Iterable[int]], rounds: int = 100) -> list[int]:
    """SIGKILL what `find` names, again until it names nothing (one may fork while the others are being
    killed); the pids killed, in order."""
    killed: list[int] = []
    for _ in range(rounds):
        found = list(find())
        if not found:
            break
        for pid in found:
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                continue
            if pid not in killed:
                killed.append(pid)
        time.sleep(0.005)
    return killed


def end_tagged(run_ids: set[str]) -> list[tuple[int, str, str | None]]:
    """SIGKILL every process started for one of `run_ids` (runs whose runner died), however it left its group;
    (pid, run, task) of each."""
    if not run_ids or not has_proc():
        return []
    tags: dict[int, tuple[str, str | None]] = {}

    def find() -> Iterable[int]:
        found = tagged_processes(run_ids)
        tags.update(found)
        return found

    ended = [(pid, *tags[pid]) for pid in kill_until_gone(find)]
    reap_adopted()
    return ended
