"""A cgroup (v2) per agent, where the runner may make them: the one container a process cannot leave.

Used when the runner's own cgroup is on a cgroup2 mount and it can create cgroups beneath it (root, or a
systemd-delegated user scope). The agent is moved into `<runner's cgroup>/parex-<runner pid>-<agent pid>`
right after it starts; all it forks from then on stays there, whatever it does to its session, process group
or environment, and `cgroup.kill` ends them all at once. Anything it forked in the instant before the move is
still found as the subreaper's (containment.py). Elsewhere, `base()` is None and nothing here is used.
"""

from __future__ import annotations

import atexit
import itertools
import os
import re
import time
from pathlib import Path

_base: Path | None = None
_probed = False


def base() -> Path | None:
    """The folder task cgroups are made in, or None when cgroups cannot be used here (probed once)."""
    global _base, _probed
    if not _probed:
        _probed = True
        _base = _probe()
        if _base is not None:
            _clear_stale(_base)
    return _base


def _probe() -> Path | None:
    try:
        rel = next((line[3:] for line in Path("/proc/self/cgroup").read_text().splitlines()
                    if line.startswith("0::")), None)
        mount = None
        for line in Path("/proc/self/mountinfo").read_text().splitlines():
            left, _, right = line.partition(" - ")
            fields = left.split()
            if right.split()[:1] == ["cgroup2"] and fields[3] == "/":
                mount = Path(fields[4])
                break
        if rel is None or mount is None:
            return None
        here = mount / rel.lstrip("/")
        probe = here / f"parex-probe-{os.getpid()}"
        probe.mkdir()
        try:
            usable = (probe / "cgroup.procs").exists()
        finally:
            probe.rmdir()
        return here if usable else None
    except (OSError, ValueError, IndexError):
        return None


_STALE = re.compile(r"^parex-(\d+)-\d+$")


def _clear_stale(folder: Path) -> None:
    """Remove empty task cgroups left by runners that are gone."""
    try:
        entries = list(folder.iterdir())
    except OSError:
        return
    for entry in entries:
        m = _STALE.match(entry.name)
        if m and not Path(f"/proc/{m.group(1)}").exists():
            try:
                entry.rmdir()
            except OSError:
                pass


_ENTER = '{ echo 0 > "$0"; } 2>/dev/null; exec "$@"'  # the shell moves itself in, then becomes the agent
_count = itertools.count(1)
_KEEP = 64  # empty cgroups kept for reuse
_free: list[TaskCgroup] = []


@atexit.register
def _remove_free() -> None:
    while _free:
        _free.pop().remove(wait=0)


class TaskCgroup:
    def __init__(self, path: Path):
        self.path = path

    @classmethod
    def create(cls) -> TaskCgroup | None:
        """An empty cgroup for one agent (a new one, or one an ended agent left empty); None when cgroups are
        not usable here."""
        while _free:
            cgroup = _free.pop()
            if not cgroup.pids() and cgroup.path.is_dir():
                return cgroup
        folder = base()
        if folder is None:
            return None
        path = folder / f"parex-{os.getpid()}-{next(_count)}"
        try:
            path.mkdir()
        except OSError:
            return None
        return cls(path)

    def release(self) -> None:
        """The agent's tree is gone: keep the cgroup for the next agent when it is empty (making and removing
        one costs more than a short task), else try to remove it."""
        if not self.pids() and len(_free) < _KEEP:
            _free.append(self)
        else:
            self.remove(wait=0)

    def wrap(self, argv: list[str], shell: str = "/bin/sh") -> list[str]:
        """`argv`, started inside this cgroup before its first instruction: a process moved in after it
        started may already have forked children that stay outside."""
        return [shell, "-c", _ENTER, str(self.path / "cgroup.procs"), *argv]

    def pids(self) -> set[int]:
        try:
            return {int(p) for p in (self.path / "cgroup.procs").read_text().split()}
        except (OSError, ValueError):
            return set()

    def kill(self) -> None:
        """SIGKILL everything in the cgroup at once (cgroup.kill, Linux 5.14+; else each process)."""
        try:
            (self.path / "cgroup.kill").write_text("1")
            return
        except OSError:
            pass
        for pid in self.pids():
            try:
                os.kill(pid, 9)
            except OSError:
                pass

    def remove(self, wait: float = 1.0) -> None:
        """Remove the (emptied) cgroup; an empty one left behind is cleared by a later runner."""
        deadline = time.monotonic() + wait
        while True:
            try:
                self.path.rmdir()
                return
            except FileNotFoundError:
                return
            except OSError:
                if time.monotonic() > deadline:
                    return
                time.sleep(0.005)
