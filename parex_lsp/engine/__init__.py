"""The engine: runs a Plan's tasks concurrently and reports everything as one stream of Events.

It knows nothing of LSP or terminals; every front end is a consumer of its events (checked in CI)."""

from typing import TYPE_CHECKING

from parex_lsp.contract import Event, Sink
from parex_lsp.engine.result import RunResult, TaskResult
from parex_lsp.engine.selection import PlanBusy, RunError

if TYPE_CHECKING:
    from parex_lsp.engine.run import Run, RunOptions

__all__ = ["Event", "PlanBusy", "Run", "RunError", "RunOptions", "RunResult", "Sink", "TaskResult"]


def __getattr__(name: str) -> object:
    # The scheduler (and gitpython under it) loads on first use: reading journals (`status`, `log`) needs neither.
    if name in ("Run", "RunOptions"):
        from parex_lsp.engine import run

        return getattr(run, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
