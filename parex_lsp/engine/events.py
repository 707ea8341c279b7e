"""The one event type that flows from the engine to every consumer (journal, LSP, terminal, tests)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable

# Task kinds are the protocol's; run kinds carry taskId None.
QUEUED, STARTED, OUTPUT, RETRYING = "queued", "started", "output", "retrying"
SUCCEEDED, FAILED, SKIPPED, CANCELLED, LOCK_WAIT = "succeeded", "failed", "skipped", "cancelled", "lockWait"
LOCK_BROKEN, MERGED = "lockBroken", "merged"
ORPHANS_ENDED = "orphansEnded"  # run-level: agents of a runner that died were ended at this run's start
RUN_STARTED, RUN_FINISHED = "runStarted", "runFinished"

TERMINAL = frozenset({SUCCEEDED, FAILED, SKIPPED, CANCELLED})


@dataclass(frozen=True, slots=True)
class Event:
    run_id: str
    task_id: str | None
    kind: str
    attempt: int = 0
    ts: float = field(default_factory=time.time)
    data: dict[str, Any] | None = None

    def to_wire(self) -> dict[str, Any]:
        d: dict[str, Any] = {"runId": self.run_id, "taskId": self.task_id, "kind": self.kind,
                             "attempt": self.attempt, "timestamp": self.ts}
        if self.data is not None:
            d["data"] = self.data
        return d

    @classmethod
    def from_wire(cls, d: dict[str, Any]) -> Event:
        return cls(d["runId"], d.get("taskId"), d["kind"], d.get("attempt", 0), d.get("timestamp", 0.0), d.get("data"))


Sink = Callable[[Event], None]
