"""Telling a live process from a gone one, or from a reused pid (Linux /proc; elsewhere, signal 0 only)."""

from __future__ import annotations

import os
from pathlib import Path


def process_start(pid: int) -> str | None:
    """The process's start time in clock ticks (from /proc), telling a live process from a reused pid;
    None when it is gone or a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rfind(")") + 2:].split()
    return None if fields[0] == "Z" else fields[19]


def pid_alive(pid: int, start: str | None = None) -> bool:
    """Whether `pid` still runs (not a zombie) and, when `start` is given, is still the same process."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    if Path("/proc/self/stat").exists():
        now_start = process_start(pid)
        if now_start is None:
            return False  # gone, or a zombie
        if start is not None and now_start != start:
            return False  # the pid was reused by another process
    return True
