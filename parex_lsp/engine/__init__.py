"""The engine: runs a Plan's tasks concurrently and reports everything as one stream of Events.

It knows nothing of LSP or terminals; every front end is a consumer of its events (checked in CI)."""

from parex_lsp.contract import Event, Sink
from parex_lsp.engine.result import RunResult, TaskResult
from parex_lsp.engine.run import Run, RunOptions
from parex_lsp.engine.selection import PlanBusy, RunError

__all__ = ["Event", "PlanBusy", "Run", "RunError", "RunOptions", "RunResult", "Sink", "TaskResult"]
