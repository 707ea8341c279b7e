"""A plan runs once at a time per workspace, across processes: the run holds the plan's claim (an flock, so a
runner that dies drops it) from `Run.prepare` to its end. A second process that cannot take it is told which
run holds it from the owner note beside the lock. The journals' live runs are the check for runners that do
not take claims; this closes the window between two runs' prepare and their first journal line."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from filelock import FileLock, Timeout

from parex_lsp import state


class PlanClaim:
    def __init__(self, workspace: Path, plan_key: str):
        stem = "plan-" + hashlib.sha1(plan_key.encode()).hexdigest()[:16]
        folder = state.locks_dir(workspace)
        # not `.json`: the lock registry reads every `.json` file of this folder as a lock owner
        self._lock = FileLock(folder / f"{stem}.lock", timeout=0, thread_local=False)
        self._owner = folder / f"{stem}.owner"

    def take(self, run_id: str) -> bool:
        """Take the claim for `run_id` without waiting; False when another run holds it. Raises OSError when
        the locks folder cannot be written."""
        self._owner.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._lock.acquire()
        except Timeout:
            return False
        self._owner.write_text(json.dumps({"runId": run_id, "pid": os.getpid()}))
        return True

    def holder(self) -> tuple[str | None, int | None]:
        """(run id, pid) of the holder, as far as its note says (None while it is still being written)."""
        try:
            d = json.loads(self._owner.read_text())
            return str(d["runId"]), int(d["pid"])
        except (OSError, ValueError, KeyError, TypeError):
            return None, None

    def release(self) -> None:
        if self._lock.is_locked:
            self._owner.unlink(missing_ok=True)
            self._lock.release(force=True)
