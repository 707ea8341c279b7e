"""The engine: runs a Plan's tasks concurrently and reports everything as one stream of Events.

It knows nothing of LSP or terminals; every front end is a consumer of its events."""

from parex_lsp.engine.events import Event, Sink
from parex_lsp.engine.result import RunResult, TaskResult
from parex_lsp.engine.run import Run, RunError, RunOptions

__all__ = ["Event", "Run", "RunError", "RunOptions", "RunResult", "Sink", "TaskResult"]
