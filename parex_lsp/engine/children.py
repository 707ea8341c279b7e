"""Reap agent processes with pidfds instead of one waiting thread per process.

Python 3.11's asyncio watches each child from a thread of its own; with thousands of short tasks those
threads cost more than the tasks. Python 3.12 uses pidfds by default, so this only acts on 3.11 (Linux)."""

from __future__ import annotations

import asyncio
import os
import sys
import warnings


def use_pidfd_watcher() -> None:
    if sys.version_info >= (3, 12) or not hasattr(os, "pidfd_open") or sys.platform != "linux":
        return
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        current = asyncio.get_child_watcher()
        if isinstance(current, asyncio.PidfdChildWatcher):
            return
        try:
            os.close(os.pidfd_open(os.getpid()))  # the kernel may lack pidfds (Linux < 5.3)
        except OSError:
            return
        watcher = asyncio.PidfdChildWatcher()
        watcher.attach_loop(loop)
        asyncio.set_child_watcher(watcher)
