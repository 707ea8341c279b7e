"""Helpers for engine tests: plans written as TOML into a temporary workspace, run with real subprocesses."""

from __future__ import annotations

import textwrap
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import anyio

from parex_lsp.contract import Event
from parex_lsp.engine import Run, RunOptions, RunResult
from parex_lsp.plan import plan_from_text


class Recorder:
    def __init__(self):
        self.events: list[Event] = []

    def __call__(self, e: Event) -> None:
        self.events.append(e)

    def of(self, kind: str) -> list[Event]:
        return [e for e in self.events if e.kind == kind]


async def make_run(workspace: Path, toml: str, options: RunOptions | None = None) -> tuple[Run, Recorder]:
    text = textwrap.dedent(toml)
    (workspace / "parex.toml").write_text(text)
    plan = plan_from_text(text, str(workspace / "parex.toml"), workspace)
    rec = Recorder()
    return await Run.prepare(plan, options, sinks=[rec]), rec


@asynccontextmanager
async def running(run: Run) -> AsyncIterator[list[RunResult]]:
    """The run executing in the background while the block acts on it; after the block (which waits for the
    run to end), the list holds its result."""
    done: list[RunResult] = []

    async def go() -> None:
        done.append(await run.execute())

    async with anyio.create_task_group() as tg:
        tg.start_soon(go)
        yield done


async def until(condition: Callable[[], object], within: float = 60, poll: float = 0.05) -> None:
    """Wait until `condition()` is true; TimeoutError after `within` seconds."""
    with anyio.fail_after(within):
        while not condition():
            await anyio.sleep(poll)


def intervals(folder: Path) -> dict[str, tuple[float, float]]:
    """Start/end times the tasks wrote themselves (`date +%s.%N` into <id>.start / <id>.end)."""
    out = {}
    for start in folder.glob("*.start"):
        end = start.with_suffix(".end")
        out[start.stem] = (float(start.read_text()), float(end.read_text()))
    return out


def max_overlap(spans) -> int:
    points = sorted([(s, 1) for s, _ in spans] + [(e, -1) for _, e in spans], key=lambda p: (p[0], p[1]))
    best = cur = 0
    for _, d in points:
        cur += d
        best = max(best, cur)
    return best


def stamped(task_id: str, body: str) -> str:
    """A shell command that records when it ran (GNU date, ns), for ordering and concurrency assertions."""
    return f"mkdir -p t; date +%s.%N > t/{task_id}.start; {body}; date +%s.%N > t/{task_id}.end"
